"""``/ws/chat/{session_id}``: the same events as SSE, live, plus chat/execute/cancel from the client.

The socket subscribes to its session for its whole life, so it also sees tasks started over REST or
from another socket. It never creates a session: an unknown id closes the socket with 4004.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from pydantic import ValidationError
from tornado import web, websocket

from ..engine.hitl import Decision, HITLError
from ..governance.policy import PolicyViolation
from ..governance.spending import LimitReached
from ..models import HITLAction, WSClientMessage
from ..sessions.live import Session, SessionBusy, SessionNotFound
from ..sessions.runs import NoApiKey, RunService, Subscription
from ..store.workspace import InvalidName
from .base import AUTH_RESOURCE, ApiKeyMixin
from .hitl import decider

CLOSE_POLICY = 1008  # invalid session id
CLOSE_NOT_FOUND = 4004


class ChatWebSocket(ApiKeyMixin, WebSocketMixin, JupyterHandler, websocket.WebSocketHandler):
    auth_resource = AUTH_RESOURCE
    websocket = True
    session: Session | None = None
    subscription: Subscription | None = None
    pump: asyncio.Task[None] | None = None

    @property
    def runs(self) -> RunService:
        return self.settings["dsagent_runs"]

    async def pre_get(self) -> None:
        """Authorize like the server's own sockets: the ``execute`` action on our resource."""
        allowed = await ensure_async(self.authorizer.is_authorized(self, self.current_user, "execute", AUTH_RESOURCE))
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Open the chat socket."""
        await self.pre_get()
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    def open(self, session_id: str) -> None:  # type:ignore[override]
        super().open()
        self.set_nodelay(True)  # events are small and must not wait for the previous one's ACK
        try:
            self.session = self.service.get(session_id)
        except InvalidName as e:
            self.close(CLOSE_POLICY, str(e))
            return
        except SessionNotFound as e:
            self.close(CLOSE_NOT_FOUND, str(e))
            return
        self.subscription = self.runs.follow(self.session, self.session.events.last_seq)
        self.pump = asyncio.ensure_future(self._pump(self.subscription))
        self.send("connected", {"message": f"Connected to session {session_id}"})

    async def _pump(self, subscription: Subscription) -> None:
        async for record in subscription.events(forever=True):
            if record is not None:
                self.send(record["event"], record["data"], record["seq"])

    async def on_message(self, message: str | bytes) -> None:
        try:
            msg = WSClientMessage.model_validate_json(message)
        except ValidationError as e:
            self.send("error", {"error": f"Invalid message: {e.errors(include_url=False)[0]['msg']}"})
            return
        try:
            await self._handle(msg)
        except LimitReached as e:
            self.send("error", e.event)
        except (SessionBusy, NoApiKey, PolicyViolation, SessionNotFound, HITLError) as e:
            self.send("error", {"error": str(e)})

    async def _handle(self, msg: WSClientMessage) -> None:
        assert self.session is not None
        if msg.type == "chat":
            if not msg.content:
                self.send("error", {"error": "Message content is required"})
                return
            # the task's events arrive through this socket's own subscription
            self.runs.start(
                self.session, msg.content, self.identity, msg.notebook_context, edit_cells=msg.edit_cells
            ).close()
        elif msg.type == "execute":
            if not msg.code:
                self.send("error", {"error": "Code is required"})
                return
            await self.service.execute(self.session, msg.code)
        elif msg.type == "cancel":
            cancelled = await self.runs.cancel(self.session)
            if not cancelled:
                self.send("error", {"error": "No task is running"})
        else:  # approve, reject, respond
            action = msg.action if msg.type == "respond" else msg.type
            if action not in HITLAction.__members__:
                self.send("error", {"error": f"Unknown HITL action: {action}"})
                return
            decision = Decision(
                HITLAction(action), msg.message, msg.modified_plan, msg.modified_code, by=decider(self)
            )
            self.send("hitl_response", {"success": True, "message": self.session.gate.resolve(decision)})

    def send(self, event: str, data: dict[str, Any], seq: int | None = None) -> None:
        """Push one event in the DSAgent envelope; a socket that went away just drops it."""
        envelope = {
            "type": event,
            "id": seq,
            "data": data,
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "session_id": self.session.id if self.session else None,
        }
        try:
            self.write_message(json.dumps(envelope, ensure_ascii=False))
        except websocket.WebSocketClosedError:
            self.on_close()

    def on_close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        if self.pump is not None:
            self.pump.cancel()
