"""Figure 2's model rows: one streamed reply through DSAgent's model client, next to its floors.

The same request as the model floor goes through ``LLMClient`` in this process (the fast path, or
litellm's stream when the run says ``--no-fast-path``), then through a model worker process, as the
server makes its calls: the difference is the worker -> server hop of one model call.
"""

from __future__ import annotations

import logging
import time

from context import Bench
from report import Row

from dsagent_ext.engine.llm import LLMClient
from dsagent_ext.engine.model_workers import ModelWorkers, WorkerLLMClient

WARMUP = 3
STOP = ["</code>", "</answer>"]


def _client(b: Bench, workers: ModelWorkers | None = None) -> LLMClient:
    options = {"api_base": f"{b.model.url}/v1", "temperature": 0.3, "max_tokens": 4096,
               "fast_path": b.config.fast_path}
    return LLMClient(**options) if workers is None else WorkerLLMClient(workers, **options)


async def _call(llm: LLMClient, messages: list[dict]) -> float:
    began = time.perf_counter()
    async for chunk in llm.stream("scripted", messages, stop=STOP):
        pass
    assert chunk.usage is not None
    return (time.perf_counter() - began) * 1000


async def run(b: Bench, first: list[dict], second: list[dict], tokens: int) -> None:
    """Rows: the client in this process, through a worker, and the hop between them."""
    path = "fast path" if b.config.fast_path else "litellm stream"
    here, there, hops = [], [], []
    workers = ModelWorkers(1, logging.getLogger("bench"))
    try:
        local, remote = _client(b), _client(b, workers)
        for i in range(WARMUP + 2 * b.config.samples):
            messages = first if i % 2 else second
            a, c = await _call(local, messages), await _call(remote, messages)
            if i >= WARMUP:
                here.append(a)
                there.append(c)
                hops.append(c - a)
    finally:
        await workers.stop()
    model = b.floors[f"model {tokens}"]
    b.rows.append(Row.of("2", f"the same reply through DSAgent's model client ({path}, in this process)", here,
                         floor=model, floor_name="model"))
    b.rows.append(Row.of("2", f"  the same through a model worker process ({path})", there,
                         floor=model, floor_name="model"))
    row = Row.of("2", "  worker -> server hop per model call = worker - in process", hops, target="<= 2 ms")
    row.ok = row.p50 is not None and row.p50 <= 2
    b.rows.append(row)


async def cpu_per_chunk(b: Bench, body: dict, chunks: int) -> float:
    """Microseconds of this process's CPU per chunk for ``LLMClient`` reading the raw floor's reply."""
    llm = _client(b)
    cpu = 0.0
    for i in range(3 + b.config.samples):
        began = time.process_time()
        async for _ in llm.stream("scripted", body["messages"]):
            pass
        if i >= 3:
            cpu += time.process_time() - began
    return cpu / (chunks * b.config.samples) * 1e6
