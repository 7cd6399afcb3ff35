"""Liveness and readiness, open to probes without credentials."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import allow_unauthenticated

from .. import __version__
from ..models import HealthResponse, ReadinessResponse
from .base import DSAgentHandler


class HealthHandler(DSAgentHandler):
    @allow_unauthenticated
    def get(self) -> None:
        """Report that the server answers."""
        self.reply(HealthResponse(version=__version__, timestamp=datetime.now(timezone.utc)))


class ReadinessHandler(DSAgentHandler):
    @allow_unauthenticated
    async def get(self) -> None:
        """Report whether sessions can work: the workspace is writable and the kernel spec exists."""
        checks = {"workspace_writable": self._workspace_writable(), "kernel_available": await self._kernel_available()}
        ready = all(checks.values())
        detail = None if ready else "not ready: " + ", ".join(k for k, ok in checks.items() if not ok)
        self.reply(ReadinessResponse(ready=ready, checks=checks, detail=detail), 200 if ready else 503)

    def _workspace_writable(self) -> bool:
        try:
            with tempfile.TemporaryFile(dir=self.service.workspace.sessions_dir):
                return True
        except OSError:
            return False

    async def _kernel_available(self) -> bool:
        specs = self.kernel_spec_manager
        try:
            return bool(await ensure_async(specs.get_kernel_spec(self.api_settings.kernel_name)))
        except Exception:
            return False
