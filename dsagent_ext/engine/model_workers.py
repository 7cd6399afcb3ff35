"""The server's side of the model-call workers (``llm_worker``): start them, talk to them, stop them.

Workers are child processes started on the first model call, up to ``size`` of them (a new one only
when every running one has calls in flight). A worker that dies ends the calls it carried with an
``LLMError`` and is replaced at the next call. ``WorkerLLMClient`` is an ``LLMClient`` whose calls run
in a worker, so the agent loop does not know where litellm runs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress
from typing import Any

from ..models import Usage
from .llm import Completion, LLMChunk, LLMClient, LLMError, estimate_tokens, missing_api_key
from .llm_worker import LINE_LIMIT

STOP_WAIT = 5.0  # seconds a worker gets to end its calls after its input closes


class ModelWorker:
    """One worker process and the calls in flight on it, each with the queue its messages go to."""

    def __init__(self, proc: asyncio.subprocess.Process, log: logging.Logger) -> None:
        self.proc = proc
        self.log = log
        self.calls: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self.ended: str | None = None  # why it is gone, once it is
        self._ids = itertools.count(1)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, log: logging.Logger) -> ModelWorker:
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dsagent_ext.engine.llm_worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=LINE_LIMIT,
                start_new_session=True,  # a Ctrl-C in the server's terminal is the server's to handle
            )  # fmt: skip
        except OSError as e:  # out of processes or file descriptors
            raise LLMError(f"cannot start the model worker process: {e.strerror or e}") from e
        log.debug("DSAgent: model worker %s started", proc.pid)
        return cls(proc, log)

    @property
    def alive(self) -> bool:
        return self.ended is None

    def open(self, request: dict[str, Any]) -> tuple[int, asyncio.Queue[dict[str, Any]]]:
        """Send a call; its messages arrive on the returned queue."""
        if self.ended is not None:
            raise LLMError(self.ended)
        call = next(self._ids)
        self.calls[call] = queue = asyncio.Queue()
        self._write({**request, "id": call})
        return call, queue

    def close(self, call: int, *, cancel: bool) -> None:
        """Forget a call; with ``cancel`` the worker stops it (and closes its HTTP stream) too."""
        if self.calls.pop(call, None) is not None and cancel and self.ended is None:
            self._write({"id": call, "op": "cancel"})

    def _write(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        with suppress(ConnectionError, RuntimeError):  # it just died: the reader reports that
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def _read(self) -> None:
        """Route each message to its call; when the worker is gone, end every call still open."""
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                message = json.loads(line)
                queue = self.calls.get(message["id"])
                if queue is not None:
                    queue.put_nowait(message)
                # a tick carries a message for every call in flight: their consumers' work (events, SSE
                # writes) is spread over loop turns instead of holding a user's request up as a block
                await asyncio.sleep(0)
        except (ValueError, ConnectionError) as e:  # a broken line: this worker cannot be trusted
            self.log.error("DSAgent: model worker %s sent a bad message: %s", self.proc.pid, e)
            self.proc.kill()
        finally:
            self.ended = "the model call was lost: its worker process ended"  # until the exit code is known
            code = await self.proc.wait()
            self.ended = f"the model call was lost: its worker process ended ({_exit_text(code)}); try again"
            if self.calls:
                self.log.warning("DSAgent: model worker %s ended (%s)", self.proc.pid, _exit_text(code))
            for queue in self.calls.values():
                queue.put_nowait({"error": self.ended, "end": True})
            self.calls.clear()
            if self.proc.stdin is not None:
                self.proc.stdin.close()

    async def stop(self) -> None:
        """Close its input (it cancels its calls and exits); kill it if it does not."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), STOP_WAIT)
        except asyncio.TimeoutError:
            with suppress(ProcessLookupError):  # it exited just now (a busy machine): nothing to kill
                self.proc.kill()
            await self._reader


def _exit_text(code: int) -> str:
    if code < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class ModelWorkers:
    """Up to ``size`` workers, started when calls need them."""

    def __init__(self, size: int, log: logging.Logger) -> None:
        self.size = max(1, size)
        self.log = log
        self.workers: list[ModelWorker] = []
        self._lock = asyncio.Lock()

    async def get(self) -> ModelWorker:
        """The least busy live worker; a new one when all are busy and the pool is not full."""
        async with self._lock:  # two first calls at once start one worker, not two
            self.workers = [w for w in self.workers if w.alive]
            idle = [w for w in self.workers if not w.calls]
            if not idle and len(self.workers) < self.size:
                self.workers.append(await ModelWorker.start(self.log))
            return min(self.workers, key=lambda w: len(w.calls))

    async def stop(self) -> None:
        workers, self.workers = self.workers, []
        await asyncio.gather(*(w.stop() for w in workers))


class WorkerLLMClient(LLMClient):
    """``LLMClient`` whose model calls run in a worker process; the same options, retries and errors."""

    def __init__(self, workers: ModelWorkers, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workers = workers

    async def stream(
        self, model: str, messages: list[dict], *, stop: list[str] | None = None
    ) -> AsyncIterator[LLMChunk]:
        """Text as the worker sends it (pieces of up to 50 ms of the stream), then one chunk with the usage.

        Cancelling the consumer cancels the call in the worker, which closes the model's stream.
        """
        async for message in self._call("stream", model, messages, stop):
            if message.get("text"):
                yield LLMChunk(text=message["text"])
            if message.get("usage") is not None:
                yield LLMChunk(usage=Usage(**message["usage"]))

    async def complete(self, model: str, messages: list[dict]) -> Completion:
        reply = await self._outcome("complete", model, messages)
        return Completion(str(reply.get("text") or ""), Usage(**reply.get("usage") or {}))

    async def count(self, model: str, messages: list[dict]) -> int:
        """Tokens of these messages, counted in the worker: the server never loads litellm's tokenizers.
        Never fails, as in process: without a worker's count, the estimate."""
        try:
            return int((await self._outcome("count", model, messages))["tokens"])
        except LLMError as e:
            self.workers.log.debug("DSAgent: tokens estimated, not counted: %s", e)
        return estimate_tokens(messages)

    async def accepts_images(self, model: str) -> bool:
        """Asked in the worker, which has litellm loaded: the server does not load it for this."""
        try:
            return bool((await self._outcome("vision", model, []))["vision"])
        except LLMError as e:
            self.workers.log.debug("DSAgent: %s treated as a model without vision: %s", model, e)
        return False

    async def route(self, model: str) -> str:
        """Where litellm sends ``model``, asked in the worker: the server never imports litellm for it."""
        return str((await self._outcome("route", model, [], keyed=False))["provider"])

    async def _outcome(self, op: str, model: str, messages: list[dict], *, keyed: bool = True) -> dict[str, Any]:
        """The last message of a call that answers all at once (``complete``, ``count``, ``vision``, ``route``)."""
        async with aclosing(self._call(op, model, messages, None, keyed=keyed)) as replies:
            async for message in replies:
                if message.get("end"):
                    return message
        raise LLMError(f"model call for {model} ended without a reply")

    async def _call(
        self, op: str, model: str, messages: list[dict], stop: list[str] | None, *, keyed: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """The worker's messages for one call, up to its end; its error raised as ``LLMError``.
        ``keyed``: the call needs the provider's key (all but ``route``)."""
        missing = missing_api_key(model, self.api_base) if keyed else None
        if missing:  # as in process: at once, without starting anything
            raise LLMError(f"no API key for model {model}: set {missing} or pick another model")
        worker = await self.workers.get()
        call, queue = worker.open({"op": op, "client": self.options, "model": model, "messages": messages, "stop": stop})
        ended = False
        try:
            while not ended:
                message = await queue.get()
                ended = bool(message.get("end"))
                if message.get("error"):
                    raise LLMError(message["error"])
                yield message
        finally:
            worker.close(call, cancel=not ended)
