"""A small DSAgent client for tests: JSON calls and a Server-Sent Events reader (httpx)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


class SSEReader:
    """Turns Server-Sent Events lines into ``{"event", "id", "data"}`` frames (comments: ``event: comment``)."""

    def __init__(self) -> None:
        self.frame: dict[str, Any] = {}

    def feed(self, line: str) -> dict[str, Any] | None:
        """The frame this line completes, if any."""
        if line.startswith(":"):
            return {"event": "comment", "id": None, "data": line[1:].strip()}
        if line.startswith("event: "):
            self.frame["event"] = line[7:]
        elif line.startswith("id: "):
            self.frame["id"] = int(line[4:])
        elif line.startswith("data: "):
            self.frame["data"] = json.loads(line[6:])
        elif line == "" and self.frame:
            frame, self.frame = {"id": None, **self.frame}, {}
            return frame
        return None


class Client:
    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base.rstrip("/")
        self.headers = dict(headers)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=60)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with self.http() as http:
            return await http.request(method, path, **kwargs)

    async def session(self, **body: Any) -> str:
        r = await self.call("POST", "/api/sessions", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def events(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Parse an SSE response into ``{"event", "id", "data"}`` dicts (comments as ``event: comment``)."""
        async with self.http() as http, http.stream(method, path, **kwargs) as r:
            assert r.status_code == 200, (await r.aread()).decode()
            assert r.headers["content-type"].startswith("text/event-stream")
            reader = SSEReader()
            async for line in r.aiter_lines():
                if (frame := reader.feed(line)) is not None:
                    yield frame

    async def chat_stream(self, session_id: str, message: str) -> list[dict[str, Any]]:
        """A whole streamed task, keepalive comments left out."""
        out = []
        async for ev in self.events("POST", f"/api/sessions/{session_id}/chat/stream", json={"message": message}):
            if ev["event"] != "comment":
                out.append(ev)
        return out


async def ws_reply(jp_ws_fetch, sid: str, message: dict, until: tuple[str, ...] = ("error", "done")) -> list[dict]:
    """Open the session's chat socket, send ``message``, and collect events up to one of ``until``."""
    ws = await jp_ws_fetch("dsagent", "ws", "chat", sid)
    received = []
    try:
        assert json.loads(await ws.read_message())["type"] == "connected"
        ws.write_message(json.dumps(message))
        while not received or received[-1]["type"] not in until:
            received.append(json.loads(await asyncio.wait_for(ws.read_message(), 60)))
    finally:
        ws.close()
    return received


async def refused_everywhere(client, jp_ws_fetch, sid: str, status: int, words: tuple[str, ...]) -> dict:
    """Sync chat, SSE and the WebSocket all refuse a task with the same message; the socket's error."""
    sync = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
    stream = await client.call("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "hi"})
    assert sync.status_code == stream.status_code == status, (sync.text, stream.text)
    detail = sync.json()["detail"]
    assert stream.json()["detail"] == detail and all(w in detail for w in words), detail
    ws = await ws_reply(jp_ws_fetch, sid, {"type": "chat", "content": "hi"}, until=("error",))
    assert ws[-1]["data"]["error"] == detail
    return ws[-1]["data"]
