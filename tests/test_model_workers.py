"""Model calls in worker processes: the same results as in process, cancel, dead workers, no leaks.

Real worker processes running real litellm against the scripted model server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
import pytest

from dsagent_ext.engine.llm import LLMChunk, LLMClient, LLMError
from dsagent_ext.engine.model_workers import ModelWorkers, WorkerLLMClient

from fake_llm import FakeLLM, FakeReply, _usage

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
LOG = logging.getLogger("test")
TOKENS = "".join(f"w{n:02d} " for n in range(100))  # 100 one-token chunks of 4 characters


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeLLM() as server:
        yield server


def options(fake: FakeLLM, **kwargs: Any) -> dict[str, Any]:
    return {"temperature": 0.3, "max_tokens": 256, "backoff": 0.01, "timeout": 10, **kwargs}


def with_pool(body: Callable[[ModelWorkers], Awaitable[Any]], size: int = 1) -> Any:
    """Run ``body`` with a fresh pool on a fresh loop; the pool is stopped afterwards."""

    async def main() -> Any:
        pool = ModelWorkers(size, LOG)
        try:
            return await body(pool)
        finally:
            await pool.stop()

    return asyncio.run(main())


async def outcome(llm: LLMClient, model: str = "gpt-4o") -> tuple[str, Any, str | None]:
    """Text, usage and error message (or None) of one streamed call."""
    chunks: list[LLMChunk] = []
    try:
        async for chunk in llm.stream(model, MESSAGES, stop=["</code>"]):
            chunks.append(chunk)
    except LLMError as e:
        return "".join(c.text for c in chunks), None, str(e)
    return "".join(c.text for c in chunks), chunks[-1].usage, None


def worker_pids() -> list[int]:
    return [p.pid for p in psutil.Process().children() if "dsagent_ext.engine.llm_worker" in " ".join(p.cmdline())]


@pytest.mark.parametrize("model", ["gpt-4o", "my-local-model"])
def test_worker_reply_equals_the_in_process_reply(fake: FakeLLM, model: str) -> None:
    reply = FakeReply(text=TOKENS + "<code>print(1)</code>", chunk_size=4)
    fake.script(reply, reply)
    here = asyncio.run(outcome(LLMClient(fake.api_base, **options(fake)), model))

    async def body(pool: ModelWorkers) -> tuple[Any, int]:
        llm = WorkerLLMClient(pool, fake.api_base, **options(fake))
        pieces = [c async for c in llm.stream(model, MESSAGES, stop=["</code>"]) if c.text]
        return "".join(c.text for c in pieces), len(pieces)

    text, pieces = with_pool(body)
    assert text == here[0] == TOKENS + "<code>print(1)"
    assert pieces < len(TOKENS) // 4  # coalesced: fewer messages than chunks
    fake.script(reply)
    there = with_pool(lambda pool: outcome(WorkerLLMClient(pool, fake.api_base, **options(fake)), model))
    assert there == here and here[2] is None
    assert (here[1].cost_usd is None) == (model == "my-local-model")
    first, *others = fake.requests
    assert all(body == first for body in others)  # the same request, whichever process sends it



def test_calls_in_flight_share_ticks_and_each_gets_its_own_text(fake: FakeLLM) -> None:
    """Five replies at once arrive whole and unmixed, in fewer, larger pieces than one reply alone:
    the worker's tick grows with the calls in flight, so the server's messages do not grow with them."""
    texts = ["".join(f"{letter}{n:02d} " for n in range(60)) for letter in "abcdef"]
    slow = [FakeReply(text=text, chunk_size=4, chunk_delay=0.02) for text in texts]

    async def pieces(llm: LLMClient) -> tuple[str, int]:
        parts = [c.text async for c in llm.stream("gpt-4o", MESSAGES) if c.text]
        return "".join(parts), len(parts)

    async def body(pool: ModelWorkers) -> tuple[tuple[str, int], list[tuple[str, int]]]:
        llm = WorkerLLMClient(pool, fake.api_base, **options(fake))
        fake.script("warm-up")  # a worker's first call sets litellm up: its chunks would pile up meanwhile
        await pieces(llm)
        fake.script(slow[0])
        alone = await pieces(llm)
        fake.script(*slow[1:])
        together = await asyncio.gather(*(pieces(llm) for _ in slow[1:]))
        return alone, together

    alone, together = with_pool(body)
    assert alone[0] == texts[0]
    assert sorted(text for text, _ in together) == texts[1:]
    assert max(n for _, n in together) < alone[1]


SCRIPTS = {
    "500 then ok": [FakeReply(status=500), "recovered"],
    "500 always": [FakeReply(status=500)] * 3,
    "timeout then ok": [FakeReply(text="late", delay=2), "on time"],
    "cut after text": [FakeReply(text="x" * 40, chunk_size=4, cut_after=3)],
    "refused": [FakeReply(status=401)],
}


@pytest.mark.parametrize("case", SCRIPTS, ids=list(SCRIPTS))
def test_retries_timeouts_and_errors_as_in_process(fake: FakeLLM, case: str) -> None:
    settings = options(fake, retries=2, timeout=0.5)
    fake.script(*SCRIPTS[case])
    here = asyncio.run(outcome(LLMClient(fake.api_base, **settings)))
    calls = len(fake.requests)
    fake.script(*SCRIPTS[case])
    there = with_pool(lambda pool: outcome(WorkerLLMClient(pool, fake.api_base, **settings)))
    assert there == here
    assert len(fake.requests) == 2 * calls


def test_complete_runs_in_the_worker(fake: FakeLLM) -> None:
    fake.script(FakeReply(status=502), "a short summary")
    reply = with_pool(lambda pool: WorkerLLMClient(pool, fake.api_base, **options(fake)).complete("gpt-4o", MESSAGES))
    assert reply.text == "a short summary"
    assert len(fake.requests) == 2 and not fake.requests[1].get("stream")
    assert reply.usage.model_dump(exclude={"cost_usd"}) == _usage(fake.requests[1], "a short summary")
    assert reply.usage.cost_usd > 0


def test_missing_key_fails_without_a_worker(fake: FakeLLM) -> None:
    async def body(pool: ModelWorkers) -> None:
        with pytest.raises(LLMError, match="^no API key for model gpt-4o: set OPENAI_API_KEY"):
            async for _ in WorkerLLMClient(pool, None, **options(fake)).stream("gpt-4o", MESSAGES):
                pass
        assert pool.workers == []

    with_pool(body)



def test_tokens_are_counted_in_the_worker_as_in_process(fake: FakeLLM) -> None:
    history = [*MESSAGES, {"role": "assistant", "content": TOKENS * 20}]
    here = LLMClient(fake.api_base, **options(fake)).count_tokens("gpt-4o", history)

    async def body(pool: ModelWorkers) -> tuple[int, int, int]:
        there = await WorkerLLMClient(pool, fake.api_base, **options(fake)).count("gpt-4o", history)
        workers = len(pool.workers)
        keyless = await WorkerLLMClient(pool, None, **options(fake)).count("gpt-4o", history)  # no key: estimated
        return there, workers, keyless

    there, workers, keyless = with_pool(body)
    assert there == here and workers == 1
    assert keyless == len(TOKENS * 20 + "be brief" + "hi") // 4 != here
    assert fake.requests == []  # counting asks no model


async def first_text_then(llm: LLMClient, action: Callable[[], Any]) -> asyncio.Task[None]:
    """Start a slow stream, wait for its first text, run ``action``; the consuming task is returned."""
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream("gpt-4o", MESSAGES):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 60)
    action()
    return task


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def test_cancel_closes_the_model_stream(fake: FakeLLM) -> None:
    fake.script(FakeReply(text="y" * 100, chunk_size=1, chunk_delay=0.2))

    async def body(pool: ModelWorkers) -> None:
        llm = WorkerLLMClient(pool, fake.api_base, **options(fake))
        task = await first_text_then(llm, lambda: None)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: fake.dropped == 1)  # the reply would take 20 s more
        assert fake.dropped == 1
        [worker] = pool.workers
        assert worker.alive and worker.calls == {}
        fake.script("next")
        assert (await outcome(llm))[0] == "next"

    with_pool(body)


def test_killed_worker_fails_its_call_and_the_next_call_gets_a_new_one(fake: FakeLLM) -> None:
    fake.script(FakeReply(text="z" * 100, chunk_size=1, chunk_delay=0.1))

    async def body(pool: ModelWorkers) -> None:
        llm = WorkerLLMClient(pool, fake.api_base, **options(fake))
        killed = 0

        def kill() -> None:
            nonlocal killed
            killed = pool.workers[0].proc.pid
            os.kill(killed, signal.SIGKILL)

        task = await first_text_then(llm, kill)
        with pytest.raises(LLMError, match=r"worker process ended \(killed by SIGKILL\)"):
            await task
        fake.script("after")
        text, usage, error = await outcome(llm)
        assert (text, error) == ("after", None) and usage is not None
        assert [w.proc.pid for w in pool.workers] != [killed]
        assert killed not in worker_pids()  # reaped, not a zombie

    with_pool(body)


def test_pool_grows_to_its_size_under_concurrent_calls(fake: FakeLLM) -> None:
    fake.script(*[FakeReply(text="a" * 20, chunk_size=1, chunk_delay=0.05)] * 3)

    async def body(pool: ModelWorkers) -> None:
        llm = WorkerLLMClient(pool, fake.api_base, **options(fake))
        results = await asyncio.gather(*(outcome(llm) for _ in range(3)))
        assert [r[0] for r in results] == ["a" * 20] * 3
        assert len(pool.workers) == 2 and len(set(worker_pids())) == 2

    with_pool(body, size=2)
    assert worker_pids() == []  # stopped with the pool


def test_worker_exits_when_its_input_closes(fake: FakeLLM) -> None:
    """What happens when the server dies: the pipe closes, the worker cancels its call and exits."""
    fake.script(FakeReply(text="q" * 100, chunk_size=1, chunk_delay=0.2))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsagent_ext.engine.llm_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        request = {"id": 1, "op": "stream", "client": {"api_base": fake.api_base, **options(fake)},
                   "model": "gpt-4o", "messages": MESSAGES, "stop": None}  # fmt: skip
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["text"].startswith("q")
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert fake.dropped == 1


@pytest.mark.timeout(600)
def test_two_hundred_calls_leak_no_process_or_descriptor(fake: FakeLLM) -> None:
    """Finished, failed, cancelled calls and killed workers: afterwards one worker and the same fds."""

    async def body(pool: ModelWorkers) -> None:
        llm = WorkerLLMClient(pool, fake.api_base, **options(fake, retries=0))
        fake.script("warm-up")
        await outcome(llm)
        fds, children = len(os.listdir("/proc/self/fd")), len(psutil.Process().children())
        for n in range(200):
            if n % 10 == 3:  # cancelled mid-stream
                fake.script(FakeReply(text="c" * 50, chunk_size=1, chunk_delay=0.05))
                task = await first_text_then(llm, lambda: None)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif n % 100 == 50:  # the worker killed mid-stream
                fake.script(FakeReply(text="k" * 50, chunk_size=1, chunk_delay=0.05))
                task = await first_text_then(llm, lambda: os.kill(pool.workers[0].proc.pid, signal.SIGKILL))
                assert isinstance((await asyncio.gather(task, return_exceptions=True))[0], LLMError)
            elif n % 10 == 7:  # a failed call
                fake.script(FakeReply(status=400))
                assert (await outcome(llm))[2] is not None
            else:
                fake.script(f"reply {n}")
                assert (await outcome(llm))[0] == f"reply {n}"
        await until(lambda: fake.dropped == 22)
        assert fake.dropped == 22  # every cancelled or killed call closed its stream
        assert len(psutil.Process().children()) == children
        assert len(os.listdir("/proc/self/fd")) == fds
        assert len(pool.workers) == 1

    with_pool(body)
