"""Human in the loop over REST: see what the agent waits for, and decide."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..engine.hitl import Decision
from ..models import ActionResponse, HITLAction, HITLActionRequest, HITLWords
from .base import DSAgentHandler


def decider(handler: web.RequestHandler) -> str:
    """Who decided, for the event log and ``/turns``."""
    user = handler.current_user
    return getattr(user, "username", None) or str(user)


class HITLBase(DSAgentHandler):
    def decide(self, session_id: str, request: HITLActionRequest) -> None:
        session = self.session(session_id)
        message = session.gate.resolve(Decision(**request.model_dump(), by=decider(self)))
        self.reply(ActionResponse(success=True, message=message))


class StatusHandler(HITLBase):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Report whether the agent waits for a decision, and on what."""
        self.reply(self.session(session_id).gate.status())


class ApproveHandler(HITLBase):
    action = HITLAction.approve

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Decide the pending request, with optional words for the model: ``message``, ``feedback`` or
        ``reason``, in a JSON body or the query (the body wins)."""
        queried = (self.get_query_argument(name, "") for name in ("message", "feedback", "reason"))
        message = next((text for text in queried if text.strip()), None)
        if self.request.body.strip():
            message = self.parse_body(HITLWords).text or message
        self.decide(session_id, HITLActionRequest(action=self.action, message=message))


class RejectHandler(ApproveHandler):
    action = HITLAction.reject


class RespondHandler(HITLBase):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Decide with any action: approve, reject, modify, retry, skip, feedback."""
        self.session(session_id)
        self.decide(session_id, self.parse_body(HITLActionRequest))
