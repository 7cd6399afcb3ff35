"""Figures 5, 6, 9 and 10: creating sessions, many sessions at once, memory, and a flood of output."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path

from api import Poller, Stream
from context import Bench
from jupyter_client.manager import AsyncKernelManager
from model import task_message
from procs import rss_mb
from report import Row, pct

HEALTH_TARGET = 50.0  # ms, /health p95 under load
LOAD_TIMEOUT = 600.0  # s, for one load level


async def run(b: Bench) -> None:
    idle, existing = b.server.rss_mb(), len(b.sessions)
    await _creates(b)
    await _pool(b, max(b.config.loads))
    await _memory(b, idle, len(b.sessions) - existing)
    for count in b.config.loads:
        await _load(b, count)
    await _flood(b)


async def _timed_create(b: Bench) -> tuple[float, float]:
    """Milliseconds to the POST's answer and to a running kernel."""
    began = time.perf_counter()
    sid = await b.api.create()
    answered = time.perf_counter()
    await b.api.ready(sid)
    b.sessions.append(sid)
    return (answered - began) * 1000, (time.perf_counter() - began) * 1000


async def _raw_start(cwd: Path) -> float:
    """Milliseconds for jupyter_client alone to start a kernel and get its kernel_info reply."""
    km = AsyncKernelManager(kernel_name="python3")
    began = time.perf_counter()
    await km.start_kernel(cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=120)
        return (time.perf_counter() - began) * 1000
    finally:
        client.stop_channels()
        await km.shutdown_kernel(now=True)


async def _creates(b: Bench) -> None:
    """Figure 5: one create at a time, then ``concurrent`` at once, each next to a bare kernel start."""
    singles = [await _timed_create(b) for _ in range(b.config.creates)]
    raw = [await _raw_start(b.workdir) for _ in range(b.config.creates)]
    posts = [post for post, _ in singles]
    b.rows.append(Row.of("5", "POST /api/sessions (kernel boots in the background)", posts))
    b.rows.append(Row.of("5", "create -> kernel ready (incl. setup imports)", [r for _, r in singles],
                         floor=pct(raw, 50), floor_name="raw kernel start"))
    n = b.config.concurrent
    health = [await _burst(b, n) for _ in range(5)]  # the HTTP floor of n at once: requests that do nothing
    began = time.perf_counter()
    both = await asyncio.gather(*(_timed_create(b) for _ in range(n)))
    ready_total = (time.perf_counter() - began) * 1000
    post_total = max(post for post, _ in both)
    began = time.perf_counter()
    await asyncio.gather(*(_raw_start(b.workdir) for _ in range(n)))
    raw_total = (time.perf_counter() - began) * 1000
    one = pct(posts, 50)
    row = Row("5", f"{n} concurrent POST /api/sessions: total", post_total, n=n, floor=one,
              floor_name="one POST", target=f"<= 2x one ({2 * one:.1f} ms)", ok=post_total <= 2 * one)
    b.rows.append(row)
    b.rows.append(Row.of("5", f"  {n} concurrent GET /health: total (the HTTP floor of {n} at once)", health))
    b.rows.append(Row("5", f"{n} concurrent creates -> all kernels ready", ready_total, n=n, floor=raw_total,
                      floor_name=f"{n} raw starts"))


async def _burst(b: Bench, n: int) -> float:
    """Milliseconds for ``n`` concurrent ``GET /health``: what n requests at once cost this client and tornado."""
    began = time.perf_counter()
    await asyncio.gather(*(b.api.http.get("/health") for _ in range(n)))
    return (time.perf_counter() - began) * 1000


async def _pool(b: Bench, size: int) -> None:
    """Sessions up to ``size``, created ``concurrent`` at a time, their kernels running."""
    while len(b.sessions) < size:
        batch = min(b.config.concurrent, size - len(b.sessions))
        await asyncio.gather(*(_timed_create(b) for _ in range(batch)))


async def _memory(b: Bench, before: float, created: int) -> None:
    """Figure 9: the server idle, what each idle session added to it (kernels are other processes), a kernel."""
    await asyncio.sleep(1)  # let the last boots settle
    per = (b.server.rss_mb() - before) / created
    b.rows.append(Row("9", "server RSS, idle after the first chats (litellm loaded)", before, unit="MB"))
    b.rows.append(Row("9", f"server RSS per idle session (excl. kernel), {created} sessions", per, unit="MB",
                      n=created, target="<= 1 MB", ok=per <= 1))
    kernels = [rss_mb(pid) for pid in b.server.kernel_pids()]
    b.rows.append(Row.of("9", "kernel RSS (after setup imports)", kernels, unit="MB"))


async def _load(b: Bench, count: int) -> None:
    """Figure 6: ``count`` sessions stream a 3-round task at once while /health is polled."""
    sessions = b.sessions[:count]
    async with Poller(b.server.url) as health:
        began = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(b.api.stream(sid, task_message(3)) for sid in sessions), return_exceptions=True),
            LOAD_TIMEOUT,
        )
        wall = (time.perf_counter() - began) * 1000
    streams = [r for r in results if isinstance(r, Stream) and r.ok]
    failures = len(results) - len(streams)
    done = [(s.events[-1][0] - began) * 1000 for s in streams]
    name = f"{count} sessions x 3-round task at once"
    row = Row.of("6", f"{name}: done time", done, target="0 failures", ok=failures == 0,
                 note=f"{failures} failed, all done in {wall / 1000:.1f} s")
    row.extra = {"failures": failures, "wall_ms": wall}
    b.rows.append(row)
    row = Row.of("6", f"  /health during {count} streams", health.samples, target=f"p95 <= {HEALTH_TARGET:g} ms")
    row.ok = row.p95 is not None and row.p95 <= HEALTH_TARGET
    b.rows.append(row)


class PeakRss:
    """Samples a process's RSS every few ms in a thread: the highest seen, in MB."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _flood(b: Bench) -> None:
    """Figure 10: a cell printing ``big_mb`` MB while another session streams a task."""
    sid, other = b.sessions[-1], b.sessions[-2]  # not sessions[0]: its last task is the history template
    mb = b.config.big_mb
    code = f"print(('x' * 99 + '\\n') * {int(mb * 10_000)})"
    base = b.server.rss_mb()
    with PeakRss(b.server.pid) as peak:
        async with Poller(b.server.url) as health:
            flood = asyncio.ensure_future(b.api.execute(sid, code))
            stream = await b.api.stream(other, task_message(1, b.config.chunk_delay_ms))
            result = await flood
    growth = peak.peak - base
    b.rows.append(Row("10", f"cell printing {mb:g} MB: server peak RSS growth", growth, unit="MB",
                      target="<= 100 MB", ok=growth <= 100))
    row = Row.of("10", "  /health during the cell", health.samples, target=f"p95 <= {HEALTH_TARGET:g} ms")
    row.ok = row.p95 is not None and row.p95 <= HEALTH_TARGET
    b.rows.append(row)
    gaps = [(t2 - t1) * 1000 for (t1, _, _), (t2, _, _) in zip(stream.events, stream.events[1:])]
    capped = result["truncated"] and len(result["stdout"]) <= 1_100_000
    b.rows.append(Row.of("10", "  other session's stream: gap between events", gaps, ok=stream.ok and capped,
                         target="stream completes; output capped",
                         note=f"stdout kept {len(result['stdout']) / 1e6:.2f} MB, truncated={result['truncated']}"))
