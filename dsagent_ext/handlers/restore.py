"""Kernel restore: replay the session's history into a fresh kernel, streamed as it goes."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import ActionResponse, RestoreRequest
from ..sessions.restore import RestoreService
from ..sessions.runs import Subscription
from .chat import EventStreamHandler


class RestoreHandler(EventStreamHandler):
    @property
    def restores(self) -> RestoreService:
        return self.settings["dsagent_restores"]

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Start a restore and stream its ``restore_progress`` events, up to the one that ends it.

        The events also reach the session's other subscribers (WebSocket, ``GET .../chat/stream``),
        and the log: a client that disconnects can follow the rest there.
        """
        session = self.session(session_id)
        request = self.parse_body(RestoreRequest) if self.request.body else RestoreRequest()
        started = self.restores.start(session, replay_all=request.replay_all)
        await self._stream(Subscription(session, started - 1))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        """Cancel the running restore (an automatic one cancels the task it precedes)."""
        session = self.session(session_id)
        cancelled = session.restoring and await self.runs.cancel(session)
        self.reply(ActionResponse(success=cancelled, message="Restore cancelled" if cancelled else "No kernel restore is running"))
