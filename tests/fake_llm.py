"""A scripted model server for tests: OpenAI chat completions and Anthropic Messages.

It runs on 127.0.0.1 in a background thread with its own event loop, so sync and async tests can
both use it. Queue replies with ``script()``; every request body is kept in ``requests`` (and its
path and headers in ``received``), and ``dropped`` counts the replies a client abandoned mid-way.
Text replies are streamed in the format of the route asked (``/v1/chat/completions``, Azure
OpenAI's ``/openai/deployments/<name>/chat/completions``, or ``/v1/messages``); a reply with
``frames`` replays a recorded SSE stream as it is.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler


@dataclass
class FakeReply:
    """One scripted reply, with the ways a real server can misbehave."""

    text: str = ""
    status: int = 200
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 8
    cut_after: int | None = None
    garbage: bool = False
    frames: list[str] | None = None  # a recorded stream: SSE frames sent as they are
    headers: dict[str, str] | None = None  # extra response headers (``Retry-After``)
    reset: bool = False  # with ``cut_after``: reset the connection (RST) instead of closing it
    # after ``hold_after`` text chunks, wait until the test sets ``release`` (what it saw came before the end)
    hold_after: int | None = None
    release: threading.Event | None = None


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict
    query: str = ""


def _cut_at_stop(text: str, stop: str | list[str] | None) -> str:
    """Truncate at the first stop sequence, excluding it, as real servers do."""
    if isinstance(stop, str):
        stop = [stop]
    cut = min((i for s in stop or [] if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def image_tokens(url: str) -> int:
    """What OpenAI charges for an image part at ``detail: auto`` (high): 85, plus 170 a 512 px tile of the
    image scaled to fit 2048 px, then to 768 px on its short side."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
        width, height = image.size
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return 85 + 170 * tiles


def prompt_tokens(messages: list[dict]) -> int:
    """The prompt tokens the server reports: about four characters a token, images as OpenAI counts them."""
    chars = images = 0
    for message in messages:
        content = message.get("content", "")
        for part in content if isinstance(content, list) else [{"type": "text", "text": str(content)}]:
            if part.get("type") == "image_url":
                images += image_tokens(part["image_url"]["url"])
            else:
                chars += len(part.get("text", ""))
    return chars // 4 + images + 1


def _usage(body: dict, text: str) -> dict:
    prompt = prompt_tokens(body.get("messages", []))
    completion = len(text) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _ChatHandler(RequestHandler):
    def initialize(self, fake: FakeLLM) -> None:
        self.fake = fake
        self.cutting = False

    def on_connection_close(self) -> None:
        if not self.cutting:  # the client went away before the reply ended (cancelled, timed out)
            self.fake.dropped += 1

    async def post(self) -> None:
        try:
            await self._reply(json.loads(self.request.body or b"{}"))
        except StreamClosedError:
            pass  # the client gave up (timeout, cancellation): nothing to answer

    async def _reply(self, body: dict) -> None:
        self.fake.requests.append(body)
        self.fake.received.append(Received(self.request.path, dict(self.request.headers), body, self.request.query))
        reply = self.fake._next_reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        for name, value in (reply.headers or {}).items():
            self.set_header(name, value)
        if reply.status != 200:
            self.set_status(reply.status)
            self.finish("{not json" if reply.garbage else self._error(reply.status))
            return
        text = _cut_at_stop(reply.text, body.get("stop") or body.get("stop_sequences"))
        if body.get("stream") and reply.frames is not None:
            await self._replay(reply)
        elif body.get("stream"):
            await self._stream(body, reply, text)
        elif reply.garbage:
            self.set_header("Content-Type", "application/json")
            self.finish("{not json")
        else:
            self.finish(self._completion(body, text))

    def _error(self, status: int) -> dict:
        return {"error": {"message": f"scripted {status}", "type": "server_error"}}

    def _start_stream(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.request.connection.stream.set_nodelay(True)  # chunks leave when written, as from a real provider

    def _cut(self, reply: FakeReply) -> None:
        """Drop the connection mid-body, without the terminating chunk (RST with ``reset``)."""
        self.cutting = True
        stream = self.request.connection.stream
        if reply.reset:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.close()

    async def _replay(self, reply: FakeReply) -> None:
        self._start_stream()
        for n, frame in enumerate(reply.frames or ()):
            if reply.cut_after is not None and n >= reply.cut_after:
                self._cut(reply)
                return
            if n and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            self.write(frame)
            await self.flush()
        self.finish()

    def _completion(self, body: dict, text: str) -> dict:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": _usage(body, text),
        }

    def _chunk(self, body: dict, delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [choice],
        }

    async def _send(self, payload: dict | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.write(f"data: {data}\n\n")
        await self.flush()

    async def _stream(self, body: dict, reply: FakeReply, text: str) -> None:
        self._start_stream()
        if reply.garbage:
            await self._send("{not json")
            self.finish()
            return
        size = max(1, reply.chunk_size)
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        await self._send(self._chunk(body, {"role": "assistant", "content": ""}))
        for n, piece in enumerate(pieces):
            if reply.cut_after is not None and n >= reply.cut_after:
                self._cut(reply)
                return
            if n and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            if n == reply.hold_after and reply.release is not None:
                await asyncio.to_thread(reply.release.wait, 60)
            await self._send(self._chunk(body, {"content": piece}))
        await self._send(self._chunk(body, {}, finish="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = self._chunk(body, {})
            final["choices"] = []
            final["usage"] = _usage(body, text)
            await self._send(final)
        await self._send("[DONE]")
        self.finish()


class _MessagesHandler(_ChatHandler):
    """Anthropic's ``/v1/messages``: the same script, in the Messages API's shapes."""

    def _error(self, status: int) -> dict:
        return {"type": "error", "error": {"type": "api_error", "message": f"scripted {status}"}}

    def _completion(self, body: dict, text: str) -> dict:
        usage = _usage(body, text)
        return {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model", "fake"),
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]},
        }  # fmt: skip

    async def _event(self, kind: str, payload: dict) -> None:
        self.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n")
        await self.flush()

    async def _stream(self, body: dict, reply: FakeReply, text: str) -> None:
        self._start_stream()
        usage = _usage(body, text)
        message = {**self._completion(body, ""), "content": [], "stop_reason": None}
        message["usage"] = {"input_tokens": usage["prompt_tokens"], "output_tokens": 1}
        await self._event("message_start", {"message": message})
        await self._event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        size = max(1, reply.chunk_size)
        for n, start in enumerate(range(0, len(text), size)):
            if reply.cut_after is not None and n >= reply.cut_after:
                self._cut(reply)
                return
            if n and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            delta = {"type": "text_delta", "text": text[start : start + size]}
            await self._event("content_block_delta", {"index": 0, "delta": delta})
        await self._event("content_block_stop", {"index": 0})
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        await self._event("message_delta", {"delta": delta, "usage": {"output_tokens": usage["completion_tokens"]}})
        await self._event("message_stop", {})
        self.finish()


class _ModelsHandler(RequestHandler):
    """``GET /v1/models`` as OpenAI-compatible servers answer it, or hanging, or failing."""

    def initialize(self, fake: FakeLLM) -> None:
        self.fake = fake

    hung: asyncio.Future | None = None

    async def get(self) -> None:
        self.fake.model_requests += 1
        if self.fake.models_mode == "hang":  # never answers: the client gives up and closes
            self.hung = asyncio.get_running_loop().create_future()
            try:
                await self.hung
            except asyncio.CancelledError:
                pass
        elif self.fake.models_mode == "fail":
            self.set_status(500)
            self.finish({"error": {"message": "scripted failure", "type": "server_error"}})
        else:
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.models]
            self.finish({"object": "list", "data": data})

    def on_connection_close(self) -> None:
        if self.hung is not None:
            self.hung.cancel()


class FakeLLM:
    """Scripted ``/v1/chat/completions`` and ``/v1/models`` on a free local port; use as a context manager."""

    def __init__(self, default: str = "<answer>done</answer>") -> None:
        self.default = default
        self.requests: list[dict] = []
        self.received: list[Received] = []
        self.models = ["scripted", "llama3:8b", "meta-llama/Llama-3.1-8B-Instruct"]  # served at /v1/models
        self.models_mode = "ok"  # "hang": never answer; "fail": 500
        self.model_requests = 0
        self.dropped = 0  # replies whose client closed the connection before they ended
        self._replies: deque[FakeReply] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HTTPServer | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def base_url(self) -> str:
        """The base URL without ``/v1``, as Anthropic's clients take it."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: str | FakeReply) -> FakeLLM:
        """Queue replies, served in order; afterwards ``default`` answers."""
        for reply in replies:
            self._replies.append(FakeReply(text=reply) if isinstance(reply, str) else reply)
        return self

    def _next_reply(self) -> FakeReply:
        return self._replies.popleft() if self._replies else FakeReply(text=self.default)

    def start(self) -> FakeLLM:
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = Application(
                [
                    (r"/v1/chat/completions", _ChatHandler, {"fake": self}),
                    (r"/openai/deployments/[^/]+/chat/completions", _ChatHandler, {"fake": self}),  # Azure OpenAI
                    (r"/v1/messages", _MessagesHandler, {"fake": self}),
                    (r"/v1/models", _ModelsHandler, {"fake": self}),
                ],
                log_function=lambda _: None,
            )
            self._server = HTTPServer(app)
            self._server.add_sockets(sockets)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-llm", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.stop()
            await self._server.close_all_connections()
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(5)
        self._loop = self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
