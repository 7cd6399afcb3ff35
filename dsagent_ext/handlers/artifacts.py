"""Session artifacts: the files the agent saved in ``artifacts/``, typed by extension."""

from __future__ import annotations

from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ..models import ArtifactInfo, ArtifactListResponse, ArtifactType, FileCategory
from ..store.filetypes import artifact_type
from ..store.workspace import list_files
from .base import DSAgentHandler
from .filetransfer import FileTransferHandler, mtime

_MISSING = "Artifact %s not found"


class ArtifactsHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """List artifacts newest first, optionally of one type."""
        session = self.session(session_id)
        wanted = self.get_query_argument("type", None) or None
        if wanted is not None and wanted not in ArtifactType.__members__:
            raise web.HTTPError(
                400, "Invalid type: %s. Must be image, document, data, model, code, notebook, or other", wanted
            )
        base = url_path_join(self.api_settings.prefix, "api/sessions", session.id, "artifacts")
        artifacts = [
            ArtifactInfo(
                name=name,
                size=stat.st_size,
                modified=mtime(stat),
                type=artifact_type(name),
                url=url_path_join(base, quote(name, safe="")),
            )
            for name, stat in list_files(session.path(FileCategory.artifacts))
        ]
        if wanted is not None:
            artifacts = [a for a in artifacts if a.type == wanted]
        self.reply(ArtifactListResponse(artifacts=artifacts, total=len(artifacts), session_id=session.id))


class ArtifactHandler(FileTransferHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str, filename: str) -> None:
        """Download an artifact; images are served inline so they can be embedded."""
        folder = self.session(session_id).path(FileCategory.artifacts)
        await self.send_file(self.stored_file(folder, filename, _MISSING), inline_images=True)

    @web.authenticated
    @authorized
    async def delete(self, session_id: str, filename: str) -> None:
        """Delete an artifact."""
        folder = self.session(session_id).path(FileCategory.artifacts)
        self.delete_file(self.stored_file(folder, filename, _MISSING))
