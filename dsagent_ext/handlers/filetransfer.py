"""Sending and removing one stored file, shared by the files and artifacts routes."""

from __future__ import annotations

import os
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from tornado import iostream, web

from ..store.filetypes import media_type
from ..store.workspace import InvalidName, safe_filename
from .base import DSAgentHandler

CHUNK_SIZE = 64 * 1024


def url_filename(filename: str) -> str:
    """The file name of a URL, which must already be a plain, visible basename; 400 otherwise."""
    try:
        name = safe_filename(filename)
    except InvalidName:
        name = None
    if name is None or name != unicodedata.normalize("NFC", filename):
        raise web.HTTPError(400, "Invalid filename")
    return name


def mtime(stat: os.stat_result) -> datetime:
    """A file's modification time, timezone-aware UTC like every other timestamp of the API."""
    return datetime.fromtimestamp(stat.st_mtime, timezone.utc)


def content_disposition(disposition: str, name: str) -> str:
    """``attachment``/``inline`` with a quoted ASCII filename, plus RFC 5987 ``filename*`` when that lost anything."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in name)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != name:
        value += "; filename*=UTF-8''" + quote(name, safe="")
    return value


class FileTransferHandler(DSAgentHandler):
    """Base of the handlers that download or delete one file of a session folder."""

    @property
    def content_security_policy(self) -> str:
        # a served HTML or SVG file must never run script with the server's origin
        return super().content_security_policy + "; sandbox"

    def stored_file(self, folder: Path, filename: str, missing: str) -> Path:
        """The file ``filename`` of ``folder``; 400 for an unsafe name, 404 ``missing % name`` if absent."""
        name = url_filename(filename)
        path = folder / name
        if not path.is_file():
            raise web.HTTPError(404, missing, name)
        return path

    async def send_file(self, path: Path, *, inline_images: bool = False) -> None:
        """Stream the file in chunks with its media type; images inline when asked, others as attachments."""
        mime = media_type(path.name)
        inline = inline_images and mime.startswith("image/")
        try:
            stream = path.open("rb")
        except (FileNotFoundError, IsADirectoryError):  # removed since stored_file looked
            raise web.HTTPError(404) from None
        with stream:
            remaining = os.fstat(stream.fileno()).st_size
            self.set_header("Content-Type", mime)
            self.set_header("Content-Length", remaining)
            self.set_header("Content-Disposition", content_disposition("inline" if inline else "attachment", path.name))
            try:
                # never more than the size announced, even if the file grows meanwhile
                while remaining > 0 and (chunk := stream.read(min(CHUNK_SIZE, remaining))):
                    remaining -= len(chunk)
                    self.write(chunk)
                    await self.flush()
            except iostream.StreamClosedError:
                return
        self.finish()

    def delete_file(self, path: Path) -> None:
        """Remove the file and answer 204."""
        try:
            path.unlink()
        except FileNotFoundError:  # removed since stored_file looked
            raise web.HTTPError(404) from None
        self.set_status(204)
        self.finish()
