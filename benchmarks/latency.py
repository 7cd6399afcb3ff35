"""Figures 1-4: what one request or one round costs on top of the kernel and the model."""

from __future__ import annotations

import time

import httpx
import model_path
from api import BareKernel, Stream
from context import Bench
from model import task_message
from report import Row, pct

from dsagent_ext.engine.llm import load_litellm
from dsagent_ext.engine.prompt import build_system_prompt

WARMUP = 3
CELL = "print(1)"


async def run(b: Bench) -> None:
    sid = await b.api.create()
    await b.api.ready(sid)
    b.sessions.append(sid)
    samples = await _kernel_floor(b)
    b.floors["kernel"] = pct(samples, 50)
    b.rows.append(Row.of("1", "kernel floor: print(1) round trip, bare kernel client", samples))
    await _execute(b, sid)
    for tokens in (0, b.config.stream_tokens):  # 16-character chunks, then one token per chunk
        await _model_floor(b, tokens)
        streams = await _tasks(b, sid, tokens)
        if not tokens:
            await _first_events(b, sid, streams)


async def _kernel_floor(b: Bench) -> list[float]:
    """Figure 1: ``print(1)`` on the session's own kernel through a client of our own, no server code."""
    [connection] = list(b.runtime.glob("kernel-*.json"))  # the only kernel so far
    async with BareKernel(connection) as kernel:
        for _ in range(WARMUP):
            await kernel.execute(CELL)
        return [await kernel.execute(CELL) for _ in range(b.config.samples)]


async def _execute(b: Bench, sid: str) -> None:
    """Figure 4: POST .../kernel/execute of the same cell."""
    for _ in range(WARMUP):
        await b.api.execute(sid, CELL)
    samples = []
    for _ in range(b.config.samples):
        began = time.perf_counter()
        result = await b.api.execute(sid, CELL)
        samples.append((time.perf_counter() - began) * 1000)
        assert result["stdout"] == "1\n", result
    floor = b.floors["kernel"]
    row = Row.of("4", "POST kernel/execute print(1)", samples, floor=floor, floor_name="kernel",
                 target=f"<= floor + 3 ms ({floor + 3:.1f})")
    row.ok = row.p50 is not None and row.p50 <= floor + 3
    b.rows.append(row)


def _chunks(tokens: int) -> str:
    return f"{tokens} one-token chunks" if tokens else "16-character chunks"


async def _model_floor(b: Bench, tokens: int) -> None:
    """The model's share of a round: the same streamed request, sent straight to the model server."""
    system = {"role": "system", "content": build_system_prompt("The kernel is empty.")}
    first = [system, {"role": "user", "content": task_message(1, 0, tokens)}]
    second = [*first, {"role": "assistant", "content": "<code>\nprint(1)\n"},
              {"role": "user", "content": "The code ran successfully.\nOutput:\n1"}]
    samples = []
    async with httpx.AsyncClient(base_url=b.model.url, timeout=60) as http:
        for i in range(WARMUP + 2 * b.config.samples):
            ms = await _model_call(http, first if i % 2 else second)
            if i >= WARMUP:
                samples.append(ms)
    b.floors[f"model {tokens}"] = pct(samples, 50)
    b.rows.append(Row.of("2", f"model floor: one streamed reply, straight to the model [{_chunks(tokens)}]", samples))
    samples = await _litellm_calls(b, first, second)
    b.floors[f"litellm {tokens}"] = pct(samples, 50)
    b.rows.append(Row.of("2", "the same reply through litellm.acompletion (its own cost, in this process)", samples,
                         floor=b.floors[f"model {tokens}"], floor_name="model"))
    await model_path.run(b, first, second, tokens)


async def _litellm_calls(b: Bench, first: list[dict], second: list[dict]) -> list[float]:
    """litellm is the product's only way to a model: what one streamed call costs on its own, so the
    agent overhead can be split into litellm's share and ours."""
    litellm = await load_litellm()  # configured as the server configures it
    samples = []
    for i in range(WARMUP + 2 * b.config.samples):
        began = time.perf_counter()
        response = await litellm.acompletion(
            model="openai/scripted", api_base=f"{b.model.url}/v1", api_key="sk-no-key-needed",
            messages=first if i % 2 else second, stream=True, stream_options={"include_usage": True},
            stop=["</code>", "</answer>"], temperature=0.3, max_tokens=4096, max_retries=0,
        )
        async for _ in response:
            pass
        if i >= WARMUP:
            samples.append((time.perf_counter() - began) * 1000)
    return samples


async def _model_call(http: httpx.AsyncClient, messages: list[dict]) -> float:
    body = {"model": "scripted", "messages": messages, "stream": True, "stream_options": {"include_usage": True},
            "stop": ["</code>", "</answer>"], "temperature": 0.3, "max_tokens": 4096}
    began = time.perf_counter()
    async with http.stream("POST", "/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                break
    return (time.perf_counter() - began) * 1000


async def _tasks(b: Bench, sid: str, tokens: int) -> list[Stream]:
    """Figure 2: a one-round task (print(1), then the answer: 2 model calls, 1 cell); its SSE streams."""
    floor = 2 * b.floors[f"model {tokens}"] + b.floors["kernel"]
    with_litellm = 2 * b.floors[f"litellm {tokens}"] + b.floors["kernel"]
    n = b.config.samples
    message = task_message(1, 0, tokens)
    for _ in range(WARMUP):
        await b.api.chat(sid, message)
    sync = []
    for _ in range(n):
        began = time.perf_counter()
        reply = await b.api.chat(sid, message)
        sync.append((time.perf_counter() - began) * 1000)
        assert reply["answer"] == "All done.", reply
    streams = [await _stream(b, sid, message) for _ in range(n)]
    totals = [(s.events[-1][0] - s.started) * 1000 for s in streams]
    for name, samples in (("sync POST chat", sync), ("SSE POST chat/stream", totals)):
        row = Row.of("2", f"one-round task, {name} [{_chunks(tokens)}]: total", samples, floor=floor,
                     floor_name="2 model + kernel")
        b.rows.append(row)
        over = Row.of("2", f"  agent overhead ({name.split()[0]}) = total - floor", [t - floor for t in samples],
                      target="<= 10 ms")
        over.ok = over.p50 is not None and over.p50 <= 10
        b.rows.append(over)
        ours = Row.of("2", f"  of which not litellm ({name.split()[0]}) = total - 2 litellm calls - kernel",
                      [t - with_litellm for t in samples])
        b.rows.append(ours)
    return streams


async def _first_events(b: Bench, sid: str, streams: list[Stream]) -> None:
    """Figure 3: how soon a stream shows something, after the request and after the model's first chunk."""
    n = b.config.samples
    first = [(s.events[0][0] - s.started) * 1000 for s in streams]
    row = Row.of("3", "SSE: first event after the request", first, target="<= 5 ms")
    row.ok = row.p50 is not None and row.p50 <= 5
    b.rows.append(row)
    lags = []
    async with httpx.AsyncClient(base_url=b.model.url) as model:
        for _ in range(n):
            await model.delete("/first-chunks")
            stream = await _stream(b, sid, task_message(1, b.config.chunk_delay_ms))
            sent = (await model.get("/first-chunks")).json()
            for number, at in enumerate(sent, start=1):
                arrived = stream.first("llm_delta", round=number)
                if arrived is not None:
                    lags.append((arrived - at) * 1000)
    row = Row.of("3", "SSE: first llm_delta after the model's first chunk", lags, target="<= 5 ms",
                 note=f"{b.config.chunk_delay_ms:g} ms/chunk")
    row.ok = row.p50 is not None and row.p50 <= 5
    b.rows.append(row)


async def _stream(b: Bench, sid: str, message: str) -> Stream:
    stream = await b.api.stream(sid, message)
    assert stream.ok, stream
    return stream
