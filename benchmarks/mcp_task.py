"""Figure 13: a one-round task over MCP (``run_task`` with progress, the official SDK client over
Streamable HTTP) against the same task over REST (``POST .../chat``) in the same run, same session."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from context import Bench
from model import task_message
from report import Row

WARMUP = 3
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class RawMCP:
    """A Streamable HTTP client reduced to the wire: JSON-RPC POSTs, SSE answers read line by line.

    The Python SDK client re-checks every result against its tool's output schema with ``jsonschema``
    (the schema itself included, on each call): hundreds of milliseconds of the client's own CPU on a
    loaded machine, which no server change can remove and the TypeScript clients do not spend. The
    wire client times what the server does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60, read=330))
        self.headers = dict(HEADERS)
        self.ids = 0
        self.notified = 0

    async def open(self) -> None:
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
        r = await self.http.post(self.url, json=self._message("initialize", params), headers=self.headers)
        r.raise_for_status()
        self.headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
        self.headers["Mcp-Protocol-Version"] = "2025-06-18"
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        (await self.http.post(self.url, json=note, headers=self.headers)).raise_for_status()

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tool call with a progress token; its result once the response arrives."""
        body = self._message("tools/call", {"name": name, "arguments": arguments, "_meta": {"progressToken": self.ids}})
        async with self.http.stream("POST", self.url, json=body, headers=self.headers) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                message = json.loads(line[6:])
                if message.get("method") == "notifications/progress":
                    self.notified += 1
                elif message.get("id") == body["id"]:
                    return message["result"]
        raise RuntimeError("the stream ended without the call's result")

    def _message(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.ids += 1
        return {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}

    async def close(self) -> None:
        await self.http.delete(self.url, headers=self.headers)
        await self.http.aclose()


async def run(b: Bench) -> None:
    sid = await b.api.create()
    await b.api.ready(sid)
    message = task_message(1)
    client = RawMCP(f"{b.server.url}/mcp")
    await client.open()

    async def over_mcp() -> float:
        began = time.perf_counter()
        result = await client.call("run_task", {"session_id": sid, "message": message})
        elapsed = (time.perf_counter() - began) * 1000
        assert not result.get("isError") and result["structuredContent"]["answer"] == "All done.", result
        return elapsed

    async def over_rest() -> float:
        began = time.perf_counter()
        reply = await b.api.chat(sid, message)
        elapsed = (time.perf_counter() - began) * 1000
        assert reply["answer"] == "All done.", reply
        return elapsed

    try:
        for _ in range(WARMUP):
            await over_rest()
            await over_mcp()
        rest, mcp = [], []
        for _ in range(b.config.samples):  # interleaved: both see the same machine load
            rest.append(await over_rest())
            mcp.append(await over_mcp())
    finally:
        await client.close()
    b.rows.append(Row.of("13", "one-round task over REST: sync POST chat", rest))
    floor = b.rows[-1].p50
    per_call = client.notified / (WARMUP + b.config.samples)
    b.rows.append(Row.of("13", "the same task over MCP: run_task (Streamable HTTP, SSE with progress)", mcp, floor=floor,
                         floor_name="REST", note=f"{per_call:.1f} progress notifications per call"))
    over = Row.of("13", "  MCP overhead = MCP - REST (pairwise)", [m - r for m, r in zip(mcp, rest)], target="<= 10 ms")
    over.ok = over.p50 is not None and over.p50 <= 10
    b.rows.append(over)
