"""What the benchmark drives the server with: its HTTP API, an SSE reader, and a bare kernel client."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jupyter_client.asynchronous import AsyncKernelClient

TIMEOUT = httpx.Timeout(300, connect=30)


@dataclass
class Stream:
    """One streamed task: when it was asked, and each event with its arrival time."""

    started: float
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    status: int = 0

    def first(self, name: str | None = None, **match: Any) -> float | None:
        return next(
            (t for t, event, data in self.events
             if (name is None or event == name) and all(data.get(k) == v for k, v in match.items())),
            None,
        )

    @property
    def ok(self) -> bool:
        names = [event for _, event, _ in self.events]
        return self.status == 200 and bool(names) and names[-1] == "done" and "error" not in names


class Api:
    """The DSAgent API of one server (mounted at the root, as ``dsagent serve`` does)."""

    def __init__(self, url: str, connections: int = 100) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits)

    async def close(self) -> None:
        await self.http.aclose()

    async def create(self) -> str:
        r = await self.http.post("/api/sessions", json={"name": "bench", "hitl_mode": "none"})
        r.raise_for_status()
        return r.json()["id"]

    async def ready(self, sid: str) -> None:
        """Wait for the session's kernel (GET .../kernel waits for a boot in progress)."""
        r = await self.http.get(f"/api/sessions/{sid}/kernel")
        r.raise_for_status()
        if not r.json()["is_running"]:
            raise RuntimeError(f"kernel of session {sid} did not start")

    async def delete(self, sid: str) -> None:
        (await self.http.delete(f"/api/sessions/{sid}")).raise_for_status()

    async def execute(self, sid: str, code: str) -> dict[str, Any]:
        r = await self.http.post(f"/api/sessions/{sid}/kernel/execute", json={"code": code})
        r.raise_for_status()
        return r.json()

    async def chat(self, sid: str, message: str) -> dict[str, Any]:
        r = await self.http.post(f"/api/sessions/{sid}/chat", json={"message": message})
        r.raise_for_status()
        return r.json()

    async def stream(self, sid: str, message: str) -> Stream:
        """POST .../chat/stream and read it to ``done``, timing each event's arrival."""
        out = Stream(time.perf_counter())
        async with self.http.stream("POST", f"/api/sessions/{sid}/chat/stream", json={"message": message}) as r:
            out.status = r.status_code
            if r.status_code != 200:
                return out
            name = ""
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    out.events.append((time.perf_counter(), name, json.loads(line[6:])))
                    if name == "done":
                        break
        return out

    async def timed_get(self, path: str) -> float:
        """Milliseconds for one GET that must answer 200."""
        began = time.perf_counter()
        r = await self.http.get(path)
        r.raise_for_status()
        return (time.perf_counter() - began) * 1000


class Poller:
    """GETs ``/health`` back to back (with a short pause) while a load runs: its latencies, in ms."""

    def __init__(self, url: str, pause: float = 0.02) -> None:
        self.url, self.pause = url, pause
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=TIMEOUT) as http:
            while True:
                began = time.perf_counter()
                (await http.get("/health")).raise_for_status()
                self.samples.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(self.pause)

    async def __aenter__(self) -> Poller:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class BareKernel:
    """A kernel client of its own on a session's kernel: the same round trip, without the agent."""

    def __init__(self, connection_file: Path) -> None:
        self.client = AsyncKernelClient()
        self.client.load_connection_file(str(connection_file))

    async def __aenter__(self) -> BareKernel:
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.stop_channels()

    async def execute(self, code: str) -> float:
        """Milliseconds from sending ``code`` to its shell reply, output read up to idle as the agent does."""
        client = self.client
        began = time.perf_counter()
        msg_id = client.execute(code, allow_stdin=False, stop_on_error=False)
        while True:
            msg = await client.get_iopub_msg(timeout=30)
            if (
                msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id
            ):
                break
        while (await client.get_shell_msg(timeout=30))["parent_header"].get("msg_id") != msg_id:
            pass
        return (time.perf_counter() - began) * 1000
