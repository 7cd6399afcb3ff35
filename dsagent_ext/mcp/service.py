"""The MCP server's life in the Jupyter server: the SDK's session manager, entered and left by one task.

The SDK's ``StreamableHTTPSessionManager.run()`` opens the task group every MCP session lives in; it
must be entered once and left by the task that entered it. That task is started with the first MCP
request (or at extension start) and told to stop when the extension stops.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from .tools import Services, build_server

CALLER = "dsagent_caller"  # the ASGI scope's ``state`` key tools read the caller from


@dataclass
class Caller:
    """Who sent an MCP request, and whether its connection is gone (which ends that request's wait)."""

    identity: str
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class MCPService:
    """Holds the MCP server and its session manager; the handler hands it ASGI requests."""

    def __init__(self, services: Services, log: logging.Logger) -> None:
        self.log = log
        self.server = build_server(services)
        # Host and Origin are checked by the handler with Jupyter's rules: the SDK's localhost allowlist
        # would refuse every request behind a Hub or a proxy (421)
        self.manager = StreamableHTTPSessionManager(
            app=self.server._mcp_server,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None

    async def start(self) -> None:
        """Enter the session manager in a task of its own (once), and wait until it is ready."""
        if self._task is None:
            self._ready, self._stop = asyncio.Event(), asyncio.Event()
            self._task = asyncio.ensure_future(self._run(self._ready, self._stop))
        assert self._ready is not None
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._task.done():
            self._task.result()  # the manager failed to start: say why

    async def _run(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with self.manager.run():
            ready.set()
            await stop.wait()

    async def stop(self) -> None:
        """Close every MCP session (their waits end; the tasks they started go on until the server stops)."""
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        try:
            await self._task
        except Exception as e:  # stopping anyway
            self.log.warning("DSAgent: the MCP session manager stopped with an error: %s", e)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.start()
        await self.manager.handle_request(scope, receive, send)

    @staticmethod
    def scope(
        *, method: str, path: str, query: str, headers: list[tuple[bytes, bytes]], client: str | None,
        scheme: str, host: str, caller: Caller,
    ) -> dict[str, Any]:
        """An ASGI HTTP scope for one request; the user is the caller, so an MCP session stays bound to
        the identity that opened it."""
        hostname, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        token = AccessToken(token=f"jupyter:{caller.identity}", client_id=caller.identity, scopes=[])
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": (client or "", 0),
            "server": (hostname or host, int(port) if port.isdigit() else None),
            "user": AuthenticatedUser(token),
            "state": {CALLER: caller},
        }
