"""Figures 11 and 12: realistic model streams, and what the user's side of the server feels meanwhile.

The model sends one token (4 characters) per chunk, ``stream_tokens`` per reply, at ``token_rate``
tokens/s per stream and once as fast as it can. While 1/5/20/50 sessions stream a 3-round task, the
user's own requests are timed next to their idle figures: ``GET /api/contents`` and an
``execute_request`` round trip on a notebook kernel over JupyterLab's kernel websocket
(``/api/kernels/{id}/channels``), and ``/health``. The server process's CPU time per streamed chunk
(psutil), measured in runs of its own (1 and 5 sessions, no other requests), is set against
the raw floor: httpx reading the same reply, CPU of this process per chunk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import model_path
import psutil
from api import Poller, Stream
from context import Bench
from model import task_message
from report import Row, pct
from scale import HEALTH_TARGET, LOAD_TIMEOUT, _pool
from tornado.websocket import websocket_connect

from dsagent_ext.engine.prompt import build_system_prompt

PAUSE = 0.02  # s between a probe's requests
WORKER = "dsagent_ext.engine.llm_worker"
IDLE_CPU_SECONDS = 5.0  # the server's idle CPU is measured this long before each CPU run...
SETTLE_SECONDS = 2.0  # ...after this long without load


async def run(b: Bench) -> None:
    cfg = b.config
    rates = ((f"{cfg.token_rate:g} tok/s", 1000 / cfg.token_rate), ("as fast as possible", 0.0))
    await _pool(b, max(cfg.stream_loads))
    await b.api.stream(b.sessions[0], task_message(1))  # the model worker is started and warm
    floor, body, chunks = await _raw_floor(b)
    b.rows.append(Row("12", f"raw floor: httpx reading a {cfg.stream_tokens}-chunk reply, CPU per chunk", floor,
                      unit="µs"))
    # paced, every chunk arrives alone and costs a wake-up of whoever reads it: the floor pays it too
    paced, _, _ = await _raw_floor(b, 1000 / cfg.token_rate, samples=2)
    b.rows.append(Row("12", f"raw floor: the same reply at {cfg.token_rate:g} tok/s, CPU per chunk", paced, unit="µs"))
    floors = {rate: paced if delay_ms else floor for rate, delay_ms in rates}
    ours = await model_path.cpu_per_chunk(b, body, chunks)
    path = "fast path" if cfg.fast_path else "litellm stream"
    b.rows.append(Row("12", f"  DSAgent's model client reading it ({path}), CPU per chunk, this process", ours,
                      unit="µs", floor=floor, floor_name="raw httpx", target="<= 2x floor", ok=ours <= 2 * floor))
    async with httpx.AsyncClient(base_url=b.server.url, timeout=60) as http:
        kernel = (await http.post("/api/kernels", json={"name": "python3"})).json()["id"]
        try:
            async with UserProbe(b.server.url, kernel) as user:
                await asyncio.sleep(cfg.idle_seconds)
                idle = user.take()
                for name, samples in idle.items():
                    b.rows.append(Row.of("11", f"user {name}, idle", samples))
                for rate, delay_ms in rates:
                    for count in cfg.stream_loads:
                        await _load(b, user, idle, count, rate, delay_ms)
        finally:
            await http.delete(f"/api/kernels/{kernel}")
    for rate, delay_ms in rates:
        for count in cfg.cpu_streams:
            await _cpu_load(b, count, rate, delay_ms, floors[rate])


async def _raw_floor(b: Bench, delay_ms: float = 0, samples: int | None = None) -> tuple[float, dict, int]:
    """Microseconds of this process's CPU per chunk for httpx reading the same reply line by line, its
    chunks ``delay_ms`` apart; the request, and its chunks per reply."""
    system = {"role": "system", "content": build_system_prompt("The kernel is empty.")}
    body = {"model": "scripted", "stream": True, "stream_options": {"include_usage": True},
            "messages": [system, {"role": "user", "content": task_message(1, delay_ms, b.config.stream_tokens)}]}
    cpu, chunks = 0.0, 0
    async with httpx.AsyncClient(base_url=b.model.url, timeout=60) as http:
        for i in range(3 + (b.config.samples if samples is None else samples)):
            began = time.process_time()
            n = 0
            async with http.stream("POST", "/v1/chat/completions", json=body) as r:
                async for line in r.aiter_lines():
                    n += line.startswith("data: ")
            if i >= 3:
                cpu, chunks = cpu + time.process_time() - began, chunks + n
    return cpu / chunks * 1e6, body, n


async def _load(b: Bench, user: UserProbe, idle: dict[str, list[float]], count: int, rate: str,
                delay_ms: float) -> None:
    """Figure 11: ``count`` sessions stream a 3-round task at once; the user's latencies meanwhile."""
    user.take()
    async with Poller(b.server.url) as health:
        began = time.perf_counter()
        results = await _streams(b, count, delay_ms)
        wall = (time.perf_counter() - began) * 1000
    during = user.take()
    streams = [r for r in results if isinstance(r, Stream) and r.ok]
    failures = len(results) - len(streams)
    label = f"{count} x 3-round task, {b.config.stream_tokens}-token replies, {rate}"
    done = Row.of("11", f"{label}: done time", [(s.events[-1][0] - began) * 1000 for s in streams],
                  target="0 failures", ok=failures == 0, note=f"{failures} failed, all in {wall / 1000:.1f} s")
    b.rows.append(done)
    alone = b.floors.setdefault(f"done {rate}", done.p50 or 0) if count == 1 else b.floors.get(f"done {rate}")
    if count >= 20 and alone and done.p50 is not None:
        row = Row("11", f"  done time of {count} streams against one stream's [{rate}]", done.p50, floor=alone,
                  floor_name="1 stream", target="<= 1.2x" if delay_ms else "", ok=done.p50 <= 1.2 * alone if delay_ms else None)
        b.rows.append(row)
    for name, samples in during.items():
        base = pct(idle[name], 95)
        bound = 1.2 * base + 10
        row = Row.of("11", f"  user {name} during {count} streams", samples, floor=base, floor_name="idle p95",
                     target=f"p95 <= 1.2x idle + 10 ({bound:.1f})")
        row.ok = row.p95 is not None and row.p95 <= bound
        b.rows.append(row)
    row = Row.of("11", f"  /health during {count} streams", health.samples,
                 target=f"p95 <= {HEALTH_TARGET:g} ms" if count >= 50 else "")
    if count >= 50:
        row.ok = row.p95 is not None and row.p95 <= HEALTH_TARGET
    b.rows.append(row)


async def _streams(b: Bench, count: int, delay_ms: float) -> list[Any]:
    """``count`` sessions stream a 3-round task of realistic replies at once: their streams (or exceptions)."""
    message = task_message(3, delay_ms, b.config.stream_tokens)
    results = await asyncio.wait_for(
        asyncio.gather(*(b.api.stream(sid, message) for sid in b.sessions[:count]), return_exceptions=True),
        LOAD_TIMEOUT,
    )
    if any(not (isinstance(r, Stream) and r.ok) for r in results):
        print(f"{count} streams, {delay_ms:g} ms/token: first failure: {_failure(results)}", file=sys.stderr)
    return results


async def _cpu_load(b: Bench, count: int, rate: str, delay_ms: float, floor: float) -> None:
    """Figure 12: the server's CPU per streamed chunk, nothing else asking it anything meanwhile."""
    count = min(count, len(b.sessions))
    server = psutil.Process(b.server.pid)
    workers = [p for p in server.children() if WORKER in " ".join(p.cmdline())]
    await asyncio.sleep(SETTLE_SECONDS)  # what the previous load left behind (notebook writes) is done
    idle = _cpu([server])
    await asyncio.sleep(IDLE_CPU_SECONDS)
    idle = (_cpu([server]) - idle) / IDLE_CPU_SECONDS  # the Jupyter server's own timers, kernel polling
    async with httpx.AsyncClient(base_url=b.model.url) as model:
        sent = int((await model.get("/chunks")).text)
        cpu, worker_cpu, began = _cpu([server]), _cpu(workers), time.perf_counter()
        results = await _streams(b, count, delay_ms)
        await asyncio.sleep(SETTLE_SECONDS)  # this load's own trailing work counts
        cpu = _cpu([server]) - cpu - idle * (time.perf_counter() - began)
        worker_cpu = _cpu(workers) - worker_cpu
        chunks = int((await model.get("/chunks")).text) - sent
    failed = sum(not (isinstance(r, Stream) and r.ok) for r in results)
    per_chunk = cpu / max(chunks, 1) * 1e6
    floor_name = f"raw httpx, {rate}"
    b.rows.append(Row("12", f"server CPU per chunk, above idle [{count} streams, {rate}, {chunks} chunks, "
                      f"{failed} failed, idle {idle * 1000:.0f} ms/s]", per_chunk, unit="µs", floor=floor,
                      floor_name=floor_name, target="<= 50 µs", ok=per_chunk <= 50 and not failed))
    if workers:
        per_chunk = worker_cpu / max(chunks, 1) * 1e6
        b.rows.append(Row("12", f"  model worker CPU per chunk [{count} streams, {rate}]", per_chunk, unit="µs",
                          floor=floor, floor_name=floor_name, target="<= 2x floor", ok=per_chunk <= 2 * floor))


def _failure(results: list[Any]) -> str:
    """What the first failed task said (its ``error`` event, status or exception)."""
    for r in results:
        if not isinstance(r, Stream):
            return repr(r)
        if not r.ok:
            errors = [data.get("error") for _, name, data in r.events if name == "error"]
            return errors[0] if errors else f"status {r.status}, events {[name for _, name, _ in r.events][-3:]}"
    return ""


def _cpu(procs: list[psutil.Process]) -> float:
    """Seconds of CPU (user + system) these processes have used."""
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


class UserProbe:
    """A JupyterLab user's requests, back to back: the file browser's listing and a cell on their own
    notebook kernel over its websocket, each timed in ms."""

    def __init__(self, url: str, kernel_id: str) -> None:
        self.url, self.kernel_id = url, kernel_id
        self.samples: dict[str, list[float]] = {"GET /api/contents": [], "kernel ws execute_request": []}
        self._tasks: list[asyncio.Task[None]] = []

    def take(self) -> dict[str, list[float]]:
        """The samples since the last take."""
        taken = self.samples
        self.samples = {name: [] for name in taken}
        return taken

    async def _contents(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            while True:
                began = time.perf_counter()
                (await http.get("/api/contents")).raise_for_status()
                self.samples["GET /api/contents"].append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(PAUSE)

    async def _kernel(self, ws) -> None:
        session = uuid.uuid4().hex
        while True:
            began = time.perf_counter()
            await _execute(ws, session, "1 + 1")
            self.samples["kernel ws execute_request"].append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(PAUSE)

    async def __aenter__(self) -> UserProbe:
        ws_url = self.url.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels"
        self._ws = await websocket_connect(ws_url)
        for _ in range(3):  # the kernel is up and warm
            await asyncio.wait_for(_execute(self._ws, "warm-up", "1 + 1"), 120)
        self._tasks = [asyncio.ensure_future(self._contents()), asyncio.ensure_future(self._kernel(self._ws))]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._ws.close()


async def _execute(ws, session: str, code: str) -> None:
    """Send an ``execute_request`` on the shell channel and wait for its ``execute_reply``."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "bench", "session": session,
              "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False,
               "stop_on_error": True}
    await ws.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                       "channel": "shell", "buffers": []}))
    while True:
        raw = await ws.read_message()
        if raw is None:
            raise ConnectionError("the kernel websocket closed")
        if not isinstance(raw, str):
            continue  # binary frames: not the reply's format here
        msg = json.loads(raw)
        if msg.get("msg_type") == "execute_reply" and msg["parent_header"].get("msg_id") == msg_id:
            return
