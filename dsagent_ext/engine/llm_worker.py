"""The model-call worker: a child process of the server that makes the litellm calls.

litellm spends about 0.3 ms of CPU on every streamed chunk (pydantic objects, its chunk builder,
cost lookups); inside the server that CPU runs on the event loop that also serves JupyterLab. Here it
runs in a process of its own, through the same ``LLMClient`` (retries, timeouts, usage, cost), and
the server receives the text in coalesced pieces, a few messages per second per stream.

Protocol, one JSON object per line:

- in (stdin): ``{"id", "op": "stream" | "complete", "client": {LLMClient options}, "model",
  "messages", "stop"}`` starts a call; ``{"id", "op": "cancel"}`` cancels it (closing its HTTP stream).
- out (the original stdout): ``{"id", "text"}`` a piece of the reply (for ``complete``: all of it);
  then one message with ``"end": true`` carrying ``usage`` (stream), ``text`` (complete) or ``error``
  (the one-line ``LLMError`` text). A cancelled call sends nothing more.

The worker exits when its stdin closes: when the server stops, and when it dies.
Run as ``python -m dsagent_ext.engine.llm_worker``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from .llm import LLMClient, LLMError, load_litellm

COALESCE = 0.05  # seconds: text arriving within this window after a piece was sent goes out together
LINE_LIMIT = 256 * 2**20  # bytes of one protocol line (a request carries the whole conversation)

Send = Callable[[dict[str, Any]], None]


class Coalescer:
    """Sends text at once when nothing was sent for ``interval``, else at the end of that interval,
    joined with whatever else arrived meanwhile."""

    def __init__(self, send: Callable[[str], None], interval: float = COALESCE) -> None:
        self._send = send
        self._interval = interval
        self._parts: list[str] = []
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def add(self, text: str) -> None:
        self._parts.append(text)
        if self._timer is not None:
            return
        wait = self._last + self._interval - self._loop.time()
        if wait <= 0:
            self.flush()
        else:
            self._timer = self._loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self.close()
        if self._parts:
            self._send("".join(self._parts))
            self._parts.clear()
            self._last = self._loop.time()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def run_call(request: dict[str, Any], send: Send) -> None:
    """One model call; its outcome goes out as messages (never as an exception)."""
    call = request["id"]
    deltas = Coalescer(lambda text: send({"id": call, "text": text}))
    try:
        client = LLMClient(**request["client"])
        if request["op"] == "complete":
            text = await client.complete(request["model"], request["messages"])
            send({"id": call, "text": text, "end": True})
            return
        async for chunk in client.stream(request["model"], request["messages"], stop=request.get("stop")):
            if chunk.text:
                deltas.add(chunk.text)
            if chunk.usage is not None:
                deltas.flush()
                send({"id": call, "usage": chunk.usage.model_dump(mode="json"), "end": True})
    except LLMError as e:
        deltas.flush()  # the text before the failure was streamed: the caller sees it, as in process
        send({"id": call, "error": str(e), "end": True})
    except Exception as e:  # a fault of ours: still one line for the user, and the worker lives on
        deltas.flush()
        print(f"DSAgent model worker: call failed: {e!r}", file=sys.stderr, flush=True)
        send({"id": call, "error": f"the model call failed: {type(e).__name__}: {e}", "end": True})
    finally:
        deltas.close()


async def serve(reader: asyncio.StreamReader, send: Send) -> None:
    """Run calls as requests arrive until the input closes; then cancel what still runs."""
    calls: dict[Any, asyncio.Task[None]] = {}
    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "cancel":
            task = calls.pop(request["id"], None)
            if task is not None:
                task.cancel()
            continue
        task = asyncio.create_task(run_call(request, send))
        calls[request["id"]] = task
        task.add_done_callback(lambda _, call=request["id"]: calls.pop(call, None))
    for task in calls.values():
        task.cancel()
    await asyncio.gather(*calls.values(), return_exceptions=True)


async def main() -> None:
    loop = asyncio.get_running_loop()
    # The protocol owns the original stdout; anything else printing (litellm's notices) goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, out)
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def send(message: dict[str, Any]) -> None:
        if not writer.is_closing():
            writer.write(json.dumps(message).encode() + b"\n")

    await load_litellm()  # while the first request is still being written
    try:
        await serve(reader, send)
    finally:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
