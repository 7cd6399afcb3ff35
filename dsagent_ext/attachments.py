"""Sessions attached to a user's notebook: its path checked, its kernel found through the server.

The kernel is the one JupyterLab uses for that notebook, looked up by path in the server's session
manager; when the notebook has none, a Jupyter session is created there (type ``notebook``), so
JupyterLab opening the notebook attaches to that same kernel. Local or gateway, both managers speak
the same API.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import PurePosixPath
from typing import Any

from jupyter_core.utils import ensure_async
from tornado import web


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
    """Checks notebook paths and finds (or starts) their kernels through the server's managers."""

    def __init__(self, serverapp: Any, default_kernel: str, log: logging.Logger) -> None:
        self.serverapp = serverapp
        self.default_kernel = default_kernel
        self.log = log
        self._lock = asyncio.Lock()  # one lookup-or-create at a time: never two Jupyter sessions for a path

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
            exists = await ensure_async(self.serverapp.contents_manager.file_exists(path))
        except (web.HTTPError, OSError, ValueError):  # hidden, refused by the contents manager, unusable name
            exists = False
        if not exists:
            raise NotebookNotFound(f"Notebook {path} not found")
        return str(PurePosixPath(*parts))

    async def kernel_for(self, path: str) -> str:
        """The id of the notebook's kernel: the one its Jupyter session has, else a new session's."""
        sessions = self.serverapp.session_manager
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
            model = await ensure_async(self.serverapp.contents_manager.get(path, content=True, type="notebook"))
            name = model["content"]["metadata"].get("kernelspec", {}).get("name")
            specs = await ensure_async(self.serverapp.kernel_spec_manager.get_all_specs())
        except Exception as e:  # an unreadable notebook still gets a kernel
            self.log.debug("DSAgent: no kernel spec read from %s: %s", path, e)
            return self.default_kernel
        return name if name in specs else self.default_kernel
