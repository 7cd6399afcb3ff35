"""The claim on an attached notebook: the window that holds it writes the agent's cells, else the server does."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import NotebookClaimRequest, NotebookClaimResponse
from .base import DSAgentHandler


class NotebookClaimHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Take or renew the claim (renew well within ``expires_in``); 409 while another window holds it."""
        session = self.session(session_id)
        request = self.parse_body(NotebookClaimRequest)
        await self.service.cells.claim(session, request.client_id, request.written_through, request.cells)
        self.reply(
            NotebookClaimResponse(
                client_id=request.client_id, expires_in=self.service.cells.lease,
                written_through=session.record.written_through,
            )
        )

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        """Release the claim (a no-op for anyone but its holder); the server writes the cells from now on."""
        session = self.session(session_id)
        self.service.cells.release(session, self.get_query_argument("client_id", ""))
        self.set_status(204)
        self.finish()
