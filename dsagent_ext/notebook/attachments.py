"""Sessions attached to a user's notebook: its path checked, its kernel found through the server,
sessions moved onto it and off it again.

The kernel is the one JupyterLab uses for that notebook, looked up by path in the server's session
manager; when the notebook has none, a Jupyter session is created there (type ``notebook``), so
JupyterLab opening the notebook attaches to that same kernel. Local or gateway, both managers speak
the same API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_core.utils import ensure_async
from tornado import web

from ..engine.kernel import KernelSession
from ..models import SessionStatus
from ..settings import NotebookSettings
from ..store.records import SessionRecord
from .cells import NotebookCells
from .session import AgentSession


class NotebookError(Exception):
    """A ``notebook_path`` that cannot be attached; the message names only the API path given."""

    http_status = 400


class NotebookNotFound(NotebookError):
    http_status = 404


class NotebookTaken(NotebookError):
    """Another session is attached to that notebook already (one session per notebook)."""

    http_status = 409

    def __init__(self, path: str, session_id: str) -> None:
        super().__init__(f"Notebook {path} already has DSAgent session {session_id}")
        self.payload = {"session_id": session_id}


class Attachments:
    """Checks notebook paths, finds (or starts) their kernels through the server's managers, and moves
    sessions between a notebook's kernel and a kernel of their own."""

    def __init__(
        self,
        settings: NotebookSettings,
        contents_manager: Any,
        session_manager: Any,
        kernel_spec_manager: Any,
        log: logging.Logger,
        *,
        sessions: Callable[[], Iterable[AgentSession]],
        kernel: Callable[[SessionRecord, Path, str | None], KernelSession],
        cells: NotebookCells,
    ) -> None:
        """``sessions``: every session the server knows; ``kernel``: a session's kernel for its record (a
        notebook's when the record names one, with that kernel id when known); ``cells``: the writer of
        the agent's cells into attached notebooks."""
        self.settings = settings
        self.contents_manager = contents_manager
        self.session_manager = session_manager
        self.kernel_spec_manager = kernel_spec_manager
        self.log = log
        self._sessions = sessions
        self._kernel = kernel
        self._cells = cells
        self._lock = asyncio.Lock()  # one lookup-or-create at a time: never two Jupyter sessions for a path
        self._taking = asyncio.Lock()  # a notebook is checked free and taken in one step

    async def check(self, path: str) -> str:
        """The API path of an existing notebook under the server root (raises ``NotebookError``)."""
        parts = PurePosixPath(path).parts
        if (
            not path.strip() or path.startswith("/") or "\\" in path or ".." in parts or ":" in path
            or any(ord(ch) < 32 for ch in path)
        ):
            raise NotebookError(f"Invalid notebook_path {path}: give a path relative to the server root, without '..'")
        if PurePosixPath(path).suffix != ".ipynb":
            raise NotebookError(f"Invalid notebook_path {path}: not a notebook (.ipynb)")
        try:
            exists = await ensure_async(self.contents_manager.file_exists(path))
        except (web.HTTPError, OSError, ValueError):  # hidden, refused by the contents manager, unusable name
            exists = False
        if not exists:
            raise NotebookNotFound(f"Notebook {path} not found")
        return str(PurePosixPath(*parts))

    async def kernel_for(self, path: str) -> str:
        """The id of the notebook's kernel: the one its Jupyter session has, else a new session's."""
        sessions = self.session_manager
        async with self._lock:
            for model in await ensure_async(sessions.list_sessions()):
                if model.get("path") == path and model.get("kernel"):
                    return str(model["kernel"]["id"])
            model = await sessions.create_session(
                path=path, name=PurePosixPath(path).name, type="notebook", kernel_name=await self._kernel_name(path)
            )
            self.log.info("DSAgent: started kernel %s for notebook %s", model["kernel"]["id"], path)
            return str(model["kernel"]["id"])

    async def _kernel_name(self, path: str) -> str:
        """The notebook's own kernel spec when the server has it, else the configured one."""
        try:
            model = await ensure_async(self.contents_manager.get(path, content=True, type="notebook"))
            name = model["content"]["metadata"].get("kernelspec", {}).get("name")
            specs = await ensure_async(self.kernel_spec_manager.get_all_specs())
        except Exception as e:  # an unreadable notebook still gets a kernel
            self.log.debug("DSAgent: no kernel spec read from %s: %s", path, e)
            return self.settings.kernel_name
        return name if name in specs else self.settings.kernel_name

    @asynccontextmanager
    async def taking(self, path: str | None, session: AgentSession | None = None) -> AsyncIterator[str | None]:
        """Hold the notebooks while ``session`` (None: one being created) moves to the notebook at ``path``
        (None: to a kernel of its own) and the caller records it, so nobody takes that notebook meanwhile.

        Yields the notebook's kernel id; raises ``NotebookTaken`` when another session has the notebook.
        """
        async with self._taking:
            if path is None:
                yield None
            else:
                self._check_free(path, session)
                yield await self.kernel_for(path)

    def _check_free(self, path: str, session: AgentSession | None) -> None:
        """One session per notebook: two agents writing cells into one notebook would interleave them."""
        for other in self._sessions():
            if other is not session and other.record.notebook_path == path and other.record.status != SessionStatus.archived:
                raise NotebookTaken(path, other.id)

    async def attach(self, session: AgentSession, notebook_path: str | None) -> bool:
        """Move the session to a notebook's kernel (``None``: back to a kernel of its own); False when it
        is attached to that notebook already. Starting the new kernel, and refusing a busy session, are
        left to the caller.

        A kernel of its own is shut down; a notebook's kernel is only let go, and keeps running.
        """
        if notebook_path is not None:
            notebook_path = await self.check(notebook_path)
            if notebook_path == session.record.notebook_path:
                return False
        async with self.taking(notebook_path, session) as kernel_id:
            await self.let_go(session)
            session.record.notebook_path = notebook_path
            session.record.written_through = session.events.last_seq  # earlier history stays out of it
            session.kernel = self._kernel(session.record, session.folder, kernel_id)
        return True

    async def release(self, session: AgentSession) -> None:
        """Let the session's kernel go and leave its notebook: a later use starts a kernel of its own."""
        await self.let_go(session)
        if session.record.notebook_path:
            session.record.notebook_path = None
            session.kernel = self._kernel(session.record, session.folder, None)

    async def let_go(self, session: AgentSession) -> None:
        """Wait out a kernel boot in flight, then shut our kernel down or detach from the notebook's
        (whose cells logged so far are written first, unless a window holds it)."""
        if session.kernel_start is not None:
            await asyncio.gather(session.kernel_start, return_exceptions=True)
        await session.kernel.shutdown()
        await self._cells.flush(session)
        await self._cells.forget(session)
