"""The session kernel: state, direct execution, restart."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import ExecuteCodeRequest, ResetKernelRequest
from .base import DSAgentHandler


class KernelHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Get the kernel's variables, dataframes and imports."""
        self.reply(await self.service.kernel_state(self.session(session_id)))


class VariablesHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """List the kernel's variables."""
        state = await self.service.kernel_state(self.session(session_id))
        self.reply(state.variables)


class ExecuteHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Run code in the session's kernel; a failing cell is still a 200 with ``success: false``."""
        session = self.session(session_id)
        request = self.parse_body(ExecuteCodeRequest)
        self.reply(await self.service.execute(session, request.code))


class ResetHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Restart the kernel; an attached session's only with ``restart_user_kernel=true`` (query or body)."""
        session = self.session(session_id)
        confirmed = self.get_query_argument("restart_user_kernel", "").lower() in ("true", "1")
        if self.request.body:
            confirmed = confirmed or self.parse_body(ResetKernelRequest).restart_user_kernel
        self.reply(await self.service.reset(session, restart_user_kernel=confirmed))
