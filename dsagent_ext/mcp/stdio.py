"""``dsagent mcp``: a stdio MCP server that forwards to a Jupyter server's MCP endpoint.

For clients that only start local commands (Claude Desktop). Tools, resources, progress and
elicitation pass through unchanged: the HTTP endpoint does the work, under the token's identity.
The remote connection is opened by one task after the local client has initialized (so it declares
elicitation only when the local client does) and closed by the same task.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Any
from urllib.parse import urlparse

import anyio
import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.stdio import stdio_server
from pydantic import AnyUrl


def endpoint(url: str) -> str:
    """The MCP URL of a server URL (``http://host:8888/`` → ``http://host:8888/dsagent/mcp``); a URL that
    already ends in ``/mcp`` (``dsagent serve``'s) is kept."""
    path = urlparse(url).path.rstrip("/")
    return url if path.endswith("/mcp") else url.rstrip("/") + "/dsagent/mcp"


def local_server() -> tuple[str, str] | None:
    """URL and token of a Jupyter server running on this machine, if any."""
    from jupyter_server.serverapp import list_running_servers

    for info in list_running_servers():
        return info["url"], info.get("token", "")
    return None


class Bridge:
    """One local stdio session forwarded to one remote MCP session."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.server: Server[Any, Any] = Server("dsagent")
        self._remote: ClientSession | None = None
        self._ready: asyncio.Future[ClientSession] | None = None
        self._stop = anyio.Event()
        self._local: Any = None  # the local ServerSession, for elicitations coming back
        self._started = False
        self._tg: Any = None
        self._register()

    async def remote(self) -> ClientSession:
        """The remote session, opened on first use by the bridge's own task."""
        assert self._ready is not None
        self._local = self.server.request_context.session
        if not self._started:
            self._started = True
            self._tg.start_soon(self._connect)
        return await asyncio.shield(self._ready)

    async def _connect(self) -> None:
        assert self._ready is not None
        params = self._local.client_params if self._local is not None else None
        elicits = params is not None and params.capabilities.elicitation is not None
        try:
            async with (
                httpx.AsyncClient(headers=self.headers, timeout=httpx.Timeout(60, read=360)) as http,
                streamable_http_client(self.url, http_client=http) as (read, write, _),
                ClientSession(read, write, elicitation_callback=self._elicit if elicits else None) as session,
            ):
                await session.initialize()
                self._ready.set_result(session)
                await self._stop.wait()
        except Exception as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise

    async def _elicit(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        """An approval the remote server asks about: asked of the local client's human."""
        return await self._local.send_request(
            types.ServerRequest(types.ElicitRequest(params=params)), types.ElicitResult
        )

    def _register(self) -> None:
        server = self.server

        @server.list_tools()
        async def list_tools() -> list[types.Tool]:
            return (await (await self.remote()).list_tools()).tools

        @server.call_tool(validate_input=False)
        async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
            context = server.request_context
            token = context.meta.progressToken if context.meta else None

            async def progress(value: float, total: float | None, message: str | None) -> None:
                if token is not None:
                    await context.session.send_progress_notification(
                        token, value, total, message, related_request_id=context.request_id
                    )

            remote = await self.remote()
            return await remote.call_tool(name, arguments, progress_callback=progress)

        @server.list_resources()
        async def list_resources() -> list[types.Resource]:
            return (await (await self.remote()).list_resources()).resources

        @server.list_resource_templates()
        async def list_templates() -> list[types.ResourceTemplate]:
            return (await (await self.remote()).list_resource_templates()).resourceTemplates

        @server.read_resource()
        async def read_resource(uri: AnyUrl) -> Any:
            contents = (await (await self.remote()).read_resource(uri)).contents
            out = []
            for item in contents:
                if isinstance(item, types.TextResourceContents):
                    out.append(ReadResourceContents(content=item.text, mime_type=item.mimeType))
                else:
                    out.append(ReadResourceContents(content=base64.b64decode(item.blob), mime_type=item.mimeType))
            return out

    async def run(self) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        async with anyio.create_task_group() as tg, stdio_server() as (read, write):
            self._tg = tg
            await self.server.run(read, write, self.server.create_initialization_options())
            self._stop.set()


def main(url: str | None, token: str | None, api_key: str | None) -> None:
    url = url or os.environ.get("DSAGENT_MCP_URL")
    token = token or os.environ.get("DSAGENT_TOKEN") or os.environ.get("JUPYTER_TOKEN")
    api_key = api_key or os.environ.get("DSAGENT_API_KEY")
    if not url:
        found = local_server()
        if found is None:
            sys.exit("dsagent mcp: no --url given and no Jupyter server running on this machine")
        url, token = found[0], token or found[1]
    headers = {"Authorization": f"token {token}"} if token else {}
    if api_key:
        headers["X-API-Key"] = api_key
    anyio.run(Bridge(endpoint(url), headers).run)
