"""Reading what the agent produced: notebooks, session files and artifacts, as tools and as resources.

Resources are ``dsagent://sessions/{id}/notebook`` (the notebook the session works in: its attached
notebook, else its own) and ``dsagent://sessions/{id}/artifacts/{name}``, each with its MIME type.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, unquote

from jupyter_core.utils import ensure_async
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.types import CallToolResult, ContentBlock, Resource, ResourceLink, ResourceTemplate
from pydantic import AnyUrl, Field

from ..models import FileCategory, FileInfo, FileListResponse
from ..sessions.live import Session
from ..store.filetypes import media_type
from ..store.workspace import InvalidName, safe_filename
from ..store.workspace import list_files as folder_files
from .content import IMAGE_MIMES, MAX_IMAGES, TEXT_CAP, b64_image_block, cap, image_block, outputs_text, text_block
from .results import CellView, NotebookView, dump
from .tools import READ, SessionId, domain_errors

if TYPE_CHECKING:
    from .tools import Services

SCHEME = "dsagent://sessions/"
NOTEBOOK_MIME = "application/x-ipynb+json"
TEXT_MIMES = ("application/json", "application/xml", "application/x-ipynb+json", "application/javascript")


def is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in TEXT_MIMES


def register_reading(server: FastMCP, services: Services) -> None:
    sessions = services.sessions

    async def working_notebook(session: Session) -> str:
        """The API path of the notebook the session works in (its own written up to the latest event)."""
        if session.record.notebook_path:
            return session.record.notebook_path
        await sessions.notebooks.flush(session)
        path = session.folder / sessions.notebooks.name(session)
        if not path.is_file():
            raise ToolError("The session has no notebook yet: it is written after the first round")
        return sessions.workspace.api_path(path)

    async def load(path: str) -> dict[str, Any]:
        try:
            model = await ensure_async(services.contents().get(path, content=True, type="notebook"))
        except Exception as e:  # the contents manager's 404/400 (an HTTPError) in words
            raise ToolError(f"Cannot read notebook {path}: {getattr(e, 'log_message', None) or e}") from None
        return model["content"]

    def artifact(session: Session, name: str) -> Path:
        try:
            clean = safe_filename(name)
        except InvalidName as e:
            raise ToolError(str(e)) from None
        path = session.path(FileCategory.artifacts) / clean
        if clean != unicodedata.normalize("NFC", name) or not path.is_file():
            raise ToolError(f"Artifact {name} not found")
        return path

    @server.tool(annotations=READ)
    @domain_errors
    async def read_notebook(
        session_id: Annotated[str | None, Field(description="Read this session's notebook (its attached one, else its own).")] = None,
        notebook_path: Annotated[str | None, Field(description="Or a notebook by path, relative to the server root.")] = None,
        start: Annotated[int, Field(ge=0, description="First cell (0-based).")] = 0,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> Annotated[CallToolResult, NotebookView]:
        """A notebook's cells: source, execution count and outputs as text; images as image blocks (capped)."""
        if session_id:
            path = await working_notebook(sessions.get(session_id))
        elif notebook_path:
            path = notebook_path
        else:
            raise ToolError("Give session_id or notebook_path")
        cells = (await load(path)).get("cells", [])
        views: list[CellView] = []
        images: list[ContentBlock] = []
        omitted = 0
        for index, cell in enumerate(cells[start : start + limit], start):
            text, found = outputs_text(cell.get("outputs", []))
            for data, mime in found:
                block = b64_image_block(data, mime) if len(images) < MAX_IMAGES else None
                if block is None:
                    omitted += 1
                else:
                    images.append(block)
            source = cell.get("source", "")
            views.append(
                CellView(
                    index=index, cell_type=cell.get("cell_type", "code"),
                    source="".join(source) if isinstance(source, list) else source,
                    execution_count=cell.get("execution_count"), outputs=text,
                )
            )
        view = NotebookView(path=path, total_cells=len(cells), start=start, cells=views, images_omitted=omitted)
        text = "\n\n".join(
            f"[{c.index}] {c.cell_type}" + (f" ({c.execution_count})" if c.execution_count else "") + f"\n{c.source}"
            + (f"\n--- output ---\n{c.outputs}" if c.outputs else "")
            for c in views
        )
        header = f"{path}: cells {start}-{start + len(views) - 1} of {len(cells)}"
        return CallToolResult(content=[text_block(cap(f"{header}\n\n{text}", TEXT_CAP)), *images], structuredContent=dump(view))

    @server.tool(annotations=READ)
    @domain_errors
    async def list_files(
        session_id: SessionId,
        category: Annotated[FileCategory, Field(description="data (uploads), artifacts (what the agent saved) or notebooks.")] = FileCategory.data,
    ) -> Annotated[CallToolResult, FileListResponse]:
        """The session's files of one category, newest first (as GET .../files)."""
        session = sessions.get(session_id)
        if category == FileCategory.notebooks:
            await sessions.notebooks.flush(session)
        files = [
            FileInfo(name=name, size=stat.st_size, modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc), category=category)
            for name, stat in await asyncio.to_thread(folder_files, session.path(category))
        ]
        listing = FileListResponse(files=files, total=len(files), category=category)
        lines = "\n".join(f"{f.name} ({f.size} bytes)" for f in files)
        return CallToolResult(content=[text_block(f"{len(files)} files in {category.value}\n{lines}".strip())], structuredContent=dump(listing))

    @server.tool(annotations=READ)
    @domain_errors
    async def get_artifact(session_id: SessionId, name: Annotated[str, Field(description="The artifact's file name.")]) -> CallToolResult:
        """An artifact the agent saved: an image as an image block, text or CSV as text (capped), anything
        else as a link to its resource."""
        session = sessions.get(session_id)
        path = artifact(session, name)
        mime = media_type(path.name)
        uri = f"{SCHEME}{session.id}/artifacts/{quote(path.name, safe='')}"
        if mime in IMAGE_MIMES:
            block = image_block(await asyncio.to_thread(path.read_bytes), mime)
            if block is not None:
                return CallToolResult(content=[block])
        if is_text(mime):
            text = await asyncio.to_thread(path.read_text, encoding="utf-8", errors="replace")
            return CallToolResult(content=[text_block(cap(text, TEXT_CAP))])
        link = ResourceLink(type="resource_link", uri=AnyUrl(uri), name=path.name, mimeType=mime, size=path.stat().st_size)
        return CallToolResult(content=[link])

    # --- resources, with each one's own MIME type (the low-level handlers allow that) -------------

    async def list_resources() -> list[Resource]:
        found, _ = sessions.list(limit=100)
        resources: list[Resource] = []
        for session in found:
            resources.append(Resource(uri=AnyUrl(f"{SCHEME}{session.id}/notebook"), name=f"{session.record.name}: notebook", mimeType=NOTEBOOK_MIME))
            for name, stat in await asyncio.to_thread(folder_files, session.path(FileCategory.artifacts)):
                resources.append(
                    Resource(
                        uri=AnyUrl(f"{SCHEME}{session.id}/artifacts/{quote(name, safe='')}"), name=name,
                        mimeType=media_type(name), size=stat.st_size,
                    )
                )
        return resources

    async def list_templates() -> list[ResourceTemplate]:
        return [
            ResourceTemplate(uriTemplate=SCHEME + "{session_id}/notebook", name="Session notebook", mimeType=NOTEBOOK_MIME),
            ResourceTemplate(uriTemplate=SCHEME + "{session_id}/artifacts/{name}", name="Session artifact"),
        ]

    async def read_resource(uri: AnyUrl) -> list[ReadResourceContents]:
        text = str(uri)
        if not text.startswith(SCHEME):
            raise ValueError(f"Unknown resource {text}")
        parts = text[len(SCHEME) :].split("/")
        session = sessions.get(parts[0])
        if parts[1:] == ["notebook"]:
            content = await load(await working_notebook(session))
            return [ReadResourceContents(content=json.dumps(content), mime_type=NOTEBOOK_MIME)]
        if len(parts) == 3 and parts[1] == "artifacts":
            path = artifact(session, unquote(parts[2]))
            mime = media_type(path.name)
            data = await asyncio.to_thread(path.read_bytes)
            if is_text(mime):
                return [ReadResourceContents(content=data.decode("utf-8", "replace"), mime_type=mime)]
            return [ReadResourceContents(content=data, mime_type=mime)]
        raise ValueError(f"Unknown resource {text}")

    low = server._mcp_server
    low.list_resources()(list_resources)
    low.list_resource_templates()(list_templates)
    low.read_resource()(read_resource)
