"""``{base_url}dsagent/mcp``: the MCP endpoint, a Tornado handler in front of the SDK's ASGI transport.

The MCP SDK serves Streamable HTTP as an ASGI application. This handler authenticates the request
the way every DSAgent route does (Jupyter's token or the Hub's, or ``X-API-Key``), then hands it to
the SDK: the ASGI ``receive`` gives the body once and then waits for the connection to close, and
``send`` writes and flushes each chunk as it comes, so a tool call's progress reaches the client while
the call runs. Refusals are JSON-RPC error bodies, as MCP clients expect: 401 without a valid
credential (never Jupyter's XSRF 403), 403 for a Host or Origin Jupyter refuses.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from ..auth import ApiKeyError
from ..mcp.service import Caller, MCPService
from .base import AUTH_RESOURCE, ApiKeyMixin
from .chat import no_delay

# JSON-RPC error codes of refusals made before the protocol layer (the SDK uses -32600 for bad requests)
UNAUTHORIZED = -32001
FORBIDDEN = -32003


class MCPRefused(web.HTTPError):
    """A refusal answered as a JSON-RPC error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message.replace("%", "%%"))
        self.message = message


class MCPHandler(ApiKeyMixin, APIHandler):
    """One MCP request (POST a message, GET the server's stream, DELETE the MCP session)."""

    auth_resource = AUTH_RESOURCE
    _closed: asyncio.Event | None = None

    @property
    def mcp(self) -> MCPService:
        return self.settings["dsagent_mcp"]

    async def prepare(self) -> None:  # type:ignore[override]
        """Jupyter's checks in MCP's terms: the API key first, then Host, Origin and the identity."""
        try:
            self._api_key_user = self.settings["dsagent_auth"].authenticate(self.request)
        except ApiKeyError as e:
            raise MCPRefused(401, e.log_message or "Unauthorized") from None
        await APIHandler.prepare(self)  # Host, identity, Origin; every verb is open so we answer ourselves
        if self.current_user is None:
            raise MCPRefused(401, "Unauthorized: send the server's token (Authorization: token ...)")
        allowed = await ensure_async(self.authorizer.is_authorized(self, self.current_user, "execute", AUTH_RESOURCE))
        if not allowed:
            raise MCPRefused(403, "Forbidden: this user may not use DSAgent")

    def check_xsrf_cookie(self) -> None:
        """MCP clients send a token, never a cookie: a request the token did not authenticate is a 401."""
        if getattr(self, "_jupyter_current_user", None) is None:
            return  # Tornado's own call before prepare, or no user: prepare answers 401
        try:
            super().check_xsrf_cookie()
        except web.HTTPError:
            raise MCPRefused(401, "Unauthorized: MCP needs a token (Authorization: token ...), not a cookie") from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or self._reason
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Token realm="jupyter"')
        code = UNAUTHORIZED if status_code == 401 else FORBIDDEN if status_code == 403 else -32603
        self.finish(
            json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}),
            set_content_type="application/json",
        )

    def skip_check_origin(self) -> bool:
        """MCP servers must check a present Origin, token or not (Jupyter skips it for tokens)."""
        return False

    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        if not super().check_origin(origin_to_satisfy_tornado):
            raise MCPRefused(403, f"Origin {self.request.headers.get('Origin')} is not allowed")
        return True

    def check_host(self) -> bool:
        allowed = super().check_host()
        if not allowed:
            raise MCPRefused(403, f"Host {self.request.host} is not allowed")
        return allowed

    @allow_unauthenticated
    async def post(self) -> None:
        await self._serve()

    @allow_unauthenticated
    async def get(self) -> None:
        await self._serve()

    @allow_unauthenticated
    async def delete(self) -> None:
        await self._serve()

    def on_connection_close(self) -> None:
        if self._closed is not None:
            self._closed.set()

    def on_finish(self) -> None:
        if self._closed is not None:
            self._closed.set()

    async def _serve(self) -> None:
        closed = self._closed = asyncio.Event()
        request = self.request
        caller = Caller(identity=self.identity, disconnected=closed)
        scope = self.mcp.scope(
            method=request.method or "GET",
            path=request.path,
            query=request.query,
            headers=[(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.get_all()],
            client=request.remote_ip,
            scheme=request.protocol,
            host=request.host,
            caller=caller,
        )
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": request.body or b"", "more_body": False}
            await closed.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if closed.is_set():
                return  # the client is gone: what is left has nowhere to go
            if message["type"] == "http.response.start":
                self.set_status(message["status"])
                self.clear_header("Content-Type")
                for name, value in message.get("headers", []):
                    self.add_header(name.decode("latin-1"), value.decode("latin-1"))
                no_delay(self)
                return
            if message["type"] != "http.response.body":
                return
            try:
                if message.get("body"):
                    self.write(message["body"])
                if message.get("more_body"):
                    await self.flush()
                else:
                    await self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))
            except StreamClosedError:
                closed.set()

        await self.mcp.handle(scope, receive, send)
        if not self._finished:
            self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))
