"""Session files by category: list, upload (streamed to disk), download, delete."""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import FileCategory, FileInfo, FileListResponse, FileUploadResponse
from ..store.uploads import MalformedUpload, MultipartUpload, NotMultipart, UploadConflict, UploadTooLarge
from ..store.workspace import list_files
from .base import ERROR_STATUS, UnprocessableEntity
from .filetransfer import FileTransferHandler, mtime
from .streamed import StreamedBodyHandler

# room for multipart boundaries and part headers on top of the largest accepted file
_MULTIPART_OVERHEAD = 1024 * 1024


def category_arg(value: str | None) -> FileCategory:
    """A category from the query or the form; ``data`` when absent, 400 when unknown."""
    if not value:
        return FileCategory.data
    if value not in FileCategory.__members__:
        raise web.HTTPError(400, "Invalid category: %s. Must be data, artifacts, or notebooks", value)
    return FileCategory(value)


@web.stream_request_body
class FilesHandler(StreamedBodyHandler):
    """The files of one category; uploads are parsed while they arrive, never buffered whole."""

    error_status = {**ERROR_STATUS, NotMultipart: 415, MalformedUpload: 422, UploadTooLarge: 413, UploadConflict: 409}
    _upload: MultipartUpload | None = None

    async def prepare(self) -> None:  # type:ignore[override]
        await super().prepare()
        if self.request.method == "POST":
            await self._start_upload(*self.path_args)

    @web.authenticated
    @authorized
    async def _start_upload(self, session_id: str) -> None:
        """Check access, session, category and size before the first byte of the body is read."""
        session = self.session(session_id)
        query = self.get_query_argument("category", None)
        staging = session.path(category_arg(query))
        max_mb = self.api_settings.max_upload_mb
        cap = self._body_cap(max_mb)
        if int(self.request.headers.get("Content-Length") or 0) > cap:
            raise web.HTTPError(413, f"Request body exceeds the server's limit of {cap // (1024 * 1024)} MB")
        self.request.connection.set_max_body_size(cap)
        self._upload = MultipartUpload(self.request.headers.get("Content-Type", ""), staging, max_mb)

    def _body_cap(self, max_mb: float) -> int:
        """Tornado's cap on this request's body: none when uploads are unlimited, else never below the
        server's own cap nor below one file at the limit (the limit is per file, not per request)."""
        if not max_mb:
            return sys.maxsize
        return max(self.serverapp.max_body_size, int(max_mb * 1024 * 1024) + _MULTIPART_OVERHEAD)

    def body_received(self, chunk: bytes) -> None:
        """Feed a chunk to the parser; on the first error answer at once and drop what was staged."""
        if self._upload is None:
            return
        try:
            self._upload.write(chunk)
        except Exception as e:
            self._upload.discard()
            self._handle_request_exception(e)

    def on_connection_close(self) -> None:
        if self._upload is not None:
            self._upload.discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self._upload is not None:
            self._upload.discard()

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """List the files of a category (default ``data``), newest first."""
        self.body_complete = True
        session = self.session(session_id)
        category = category_arg(self.get_query_argument("category", None))
        if category == FileCategory.notebooks:
            await self.service.notebooks.flush(session)  # list the notebook as of the latest event
        files = [
            FileInfo(name=name, size=stat.st_size, modified=mtime(stat), category=category)
            for name, stat in list_files(session.path(category))
        ]
        self.reply(FileListResponse(files=files, total=len(files), category=category))

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Publish the uploaded files into the category folder; 201 with one entry per file."""
        self.body_complete = True
        session = self.session(session_id)
        upload = self._upload
        assert upload is not None  # set by prepare for every POST that gets this far
        upload.finish()
        if not upload.files:
            missing = {"type": "missing", "loc": ["body", "files"], "msg": "Field required", "input": None}
            raise UnprocessableEntity([missing])
        query = self.get_query_argument("category", None)
        category = category_arg(query if query else upload.fields.get("category"))
        replies = [
            FileUploadResponse(filename=f.name, size=f.size, path=f"{category.value}/{f.name}")
            for f in upload.commit(session.path(category))
        ]
        self.reply(replies, 201)


class FileHandler(FileTransferHandler):
    def _stored(self, session_id: str, filename: str) -> Path:
        """The file named in the URL, in the category of the query."""
        session = self.session(session_id)
        category = category_arg(self.get_query_argument("category", None))
        return self.stored_file(session.path(category), filename, f"File %s not found in {category.value}")

    @web.authenticated
    @authorized
    async def get(self, session_id: str, filename: str) -> None:
        """Download a file of a category as an attachment (the session notebook as of the latest event)."""
        if self.get_query_argument("category", None) == FileCategory.notebooks.value:
            await self.service.notebooks.flush(self.session(session_id))
        await self.send_file(self._stored(session_id, filename))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str, filename: str) -> None:
        """Delete a file of a category."""
        self.delete_file(self._stored(session_id, filename))
