"""Chat: sync, Server-Sent Events (start and resume), and cancel."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..models import ActionResponse, ChatRequest
from ..sessions.runs import NoApiKey, RunService, Subscription
from .base import ERROR_STATUS, DSAgentHandler


class ChatBase(DSAgentHandler):
    @property
    def runs(self) -> RunService:
        return self.settings["dsagent_runs"]

    error_status = {**ERROR_STATUS, NoApiKey: 400}


class ChatHandler(ChatBase):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Run a task to its end and return its last round, plus every round and the usage."""
        session = self.session(session_id)
        request = self.parse_body(ChatRequest)
        response, error = await self.runs.chat(
            session, request.message, self.identity, request.notebook_context, edit_cells=request.edit_cells
        )
        if response is None or (error and not response.is_complete):
            raise web.HTTPError(502, (error or "The task failed").replace("%", "%%"))
        self.reply(response)


class EventStreamHandler(ChatBase):
    """Writes a subscription as ``event:``/``id:``/``data:`` frames; ``: keepalive`` comments while nothing happens."""

    subscription: Subscription | None = None

    async def _stream(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        no_delay(self)
        try:
            async for record in subscription.events(self.api_settings.sse_keepalive):
                self.write(frame(record) if record is not None else ": keepalive\n\n")
                if not subscription.queued:  # events that arrived together leave in one write
                    await self.flush()
        except StreamClosedError:
            pass  # the client went away; the run goes on and stays in the log
        finally:
            subscription.close()
        self.finish()

    def on_connection_close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()


class ChatStreamHandler(EventStreamHandler):
    """A task's events as Server-Sent Events."""

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Start a task and stream its events."""
        session = self.session(session_id)
        request = self.parse_body(ChatRequest)
        await self._stream(
            self.runs.start(
                session, request.message, self.identity, request.notebook_context, edit_cells=request.edit_cells
            )
        )

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Resume: replay events after ``Last-Event-ID`` (or the latest task), then follow live."""
        session = self.session(session_id)
        raw = self.request.headers.get("Last-Event-ID") or self.get_query_argument("last_event_id", None)
        after = None
        if raw:
            try:
                after = int(raw)
            except ValueError:
                raise web.HTTPError(400, "Last-Event-ID must be an event id (an integer)") from None
        await self._stream(self.runs.follow(session, after))


class CancelHandler(ChatBase):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Cancel the running task (or kernel restore): stop the model, interrupt the kernel, end it."""
        cancelled = await self.runs.cancel(self.session(session_id))
        self.reply(ActionResponse(success=cancelled, message="Task cancelled" if cancelled else "No task is running"))


def no_delay(handler: web.RequestHandler) -> None:
    """Send each event as it is written: with Nagle's algorithm on (tornado's default until a response
    finishes), a small write waits for the client's delayed ACK of the previous one, up to 40 ms."""
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None:
        stream.set_nodelay(True)


def frame(record: dict[str, Any]) -> str:
    """One SSE frame; deltas carry no ``id:`` as they are not logged (resuming skips them)."""
    data = json.dumps(record["data"], ensure_ascii=False, separators=(",", ":"))
    event_id = f"id: {record['seq']}\n" if record.get("seq") is not None else ""
    return f"event: {record['event']}\n{event_id}data: {data}\n\n"
