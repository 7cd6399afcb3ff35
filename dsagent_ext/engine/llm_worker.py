"""The model-call worker: a child process of the server that makes the litellm calls.

litellm spends 0.3-1 ms of CPU on every streamed chunk (the SDK's pydantic objects, its chunk builder,
cost lookups); inside the server that CPU runs on the event loop that also serves JupyterLab. Here it
runs in a process of its own, at a lower priority, through the same ``LLMClient`` (retries, timeouts,
usage, cost), and the server receives the text of all calls in coalesced pieces (``Outbox``).

Protocol, one JSON object per line:

- in (stdin): ``{"id", "op": "stream" | "complete" | "count" | "vision" | "route", "client": {LLMClient options},
  "model", "messages", "stop"}`` starts a call; ``{"id", "op": "cancel"}`` cancels it (closing its HTTP stream).
- out (the original stdout): ``{"id", "text"}`` a piece of the reply (for ``complete``: all of it);
  then one message with ``"end": true`` carrying ``usage`` (stream), ``text`` and ``usage`` (complete), ``tokens``
  (count: the messages' tokens), ``vision`` (whether the model accepts images), ``provider`` (route: where
  litellm sends the model) or ``error`` (the one-line ``LLMError`` text). A cancelled call sends
  nothing more. Lines of several calls leave in one write.

The worker exits when its stdin closes: when the server stops, and when it dies.
Run as ``python -m dsagent_ext.engine.llm_worker``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from .llm import LLMClient, LLMError, load_litellm

COALESCE = 0.05  # seconds between pieces of text, per call in flight (20 messages a second in all)...
COALESCE_MAX = 0.25  # ...but never longer than this between a reply's pieces
NICENESS = 5  # the worker yields the CPU to the server (and the user's kernels) when both want it
LINE_LIMIT = 256 * 2**20  # bytes of one protocol line (a request carries the whole conversation)


class Outbox:
    """The messages of every call in flight: text is held and sent in ticks, one pipe write per tick.

    A call's text goes out at once when that call sent nothing for a tick (the first piece of a reply
    leaves without delay); otherwise at the next tick, joined with whatever else arrived meanwhile, for
    every call together. The tick grows with the calls in flight (``COALESCE`` × calls, at most
    ``COALESCE_MAX``): the server's cost is per message (a wake-up, a dispatch, an SSE write per
    subscriber), not per chunk, and up to five replies at once it gets 20 messages a second in all.
    """

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._parts: dict[Any, list[str]] = {}  # text not sent yet, by call
        self._sent: dict[Any, float] = {}  # calls in flight: when each last had text sent
        self._last = float("-inf")  # the last tick
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def interval(self) -> float:
        return min(COALESCE_MAX, COALESCE * max(1, len(self._sent)))

    def open(self, call: Any) -> None:
        self._sent[call] = float("-inf")

    def text(self, call: Any, text: str) -> None:
        self._parts.setdefault(call, []).append(text)
        now = self._loop.time()
        if now - self._sent.get(call, float("-inf")) >= self.interval:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_at(max(now, self._last + self.interval), self.flush)

    def end(self, call: Any, message: dict[str, Any]) -> None:
        """The call's last message, after the text it still holds."""
        self._sent.pop(call, None)
        self._write(self._lines(self._take(call)) + _line({**message, "id": call, "end": True}))

    def drop(self, call: Any) -> None:
        """Forget a call and whatever text it still holds."""
        self._sent.pop(call, None)
        self._parts.pop(call, None)

    def flush(self) -> None:
        """Send the text of every call now (one write), and start the next tick."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._parts:
            return
        parts, self._parts = self._parts, {}
        self._last = now = self._loop.time()
        for call in parts:
            self._sent[call] = now
        self._write(self._lines(parts))

    def _take(self, call: Any) -> dict[Any, list[str]]:
        parts = self._parts.pop(call, None)
        return {call: parts} if parts else {}

    @staticmethod
    def _lines(parts: dict[Any, list[str]]) -> bytes:
        return b"".join(_line({"id": call, "text": "".join(texts)}) for call, texts in parts.items())


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def run_call(request: dict[str, Any], outbox: Outbox) -> None:
    """One model call; its outcome goes out as messages (never as an exception)."""
    call = request["id"]
    outbox.open(call)
    try:
        client = LLMClient(**request["client"])
        if request["op"] == "route":
            outbox.end(call, {"provider": await client.route(request["model"])})
            return
        if request["op"] == "count":
            outbox.end(call, {"tokens": await client.count(request["model"], request["messages"])})
            return
        if request["op"] == "vision":
            outbox.end(call, {"vision": await client.accepts_images(request["model"])})
            return
        if request["op"] == "complete":
            reply = await client.complete(request["model"], request["messages"])
            outbox.end(call, {"text": reply.text, "usage": reply.usage.model_dump(mode="json")})
            return
        async for chunk in client.stream(request["model"], request["messages"], stop=request.get("stop")):
            if chunk.text:
                outbox.text(call, chunk.text)
            if chunk.usage is not None:
                outbox.end(call, {"usage": chunk.usage.model_dump(mode="json")})
    except LLMError as e:  # the text before the failure was streamed: the caller sees it, as in process
        outbox.end(call, {"error": str(e)})
    except Exception as e:  # a fault of ours: still one line for the user, and the worker lives on
        print(f"DSAgent model worker: call failed: {e!r}", file=sys.stderr, flush=True)
        outbox.end(call, {"error": f"the model call failed: {type(e).__name__}: {e}"})
    finally:
        outbox.drop(call)  # cancelled: what it still holds is not sent (after its end: nothing left)


async def serve(reader: asyncio.StreamReader, outbox: Outbox) -> None:
    """Run calls as requests arrive until the input closes; then cancel what still runs."""
    calls: dict[Any, asyncio.Task[None]] = {}
    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "cancel":
            task = calls.pop(request["id"], None)
            if task is not None:
                task.cancel()
            continue
        task = asyncio.create_task(run_call(request, outbox))
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

    def write(data: bytes) -> None:
        if not writer.is_closing():
            writer.write(data)

    with suppress(OSError):
        os.nice(NICENESS)
    await load_litellm()  # while the first request is still being written
    try:
        await serve(reader, Outbox(write))
    finally:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
