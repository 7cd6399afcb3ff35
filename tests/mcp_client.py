"""The official MCP Python SDK client over Streamable HTTP, as Claude Code or Cursor connect."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult


@asynccontextmanager
async def connect(url: str, headers: dict[str, str], elicitation: Any = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP session; ``elicitation``: the client's elicitation callback (it then declares
    the capability)."""
    timeout = httpx.Timeout(60, read=330)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write, elicitation_callback=elicitation) as session:
                await session.initialize()
                yield session


class Progress:
    """A progress callback that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, message))

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, m in self.seen]


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, result.content
    assert result.structuredContent is not None
    # the text block is a short summary, never the whole JSON
    assert result.content[0].type == "text"
    return result.structuredContent


def error_text(result: CallToolResult) -> str:
    assert result.isError, result
    return " ".join(block.text for block in result.content if block.type == "text")


def jsonrpc_error(response: httpx.Response) -> dict[str, Any]:
    body = json.loads(response.text)
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    return body["error"]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
