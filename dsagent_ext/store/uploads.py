"""Streaming multipart uploads: each file part goes to a hidden temp file, published only at the end.

Nothing is held in memory beyond one chunk. A request that fails leaves nothing behind, and two requests
uploading the same name never interleave: each file appears whole, by ``os.replace``, when its request
has been read to the end.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from .workspace import safe_filename

FILES_FIELD = "files"
TEXT_FIELDS = frozenset({"category"})
TEMP_PREFIX = ".upload-"
MAX_FILES = 1000
_MAX_FIELD_BYTES = 1024
# browsers and HTTP clients send these three characters of a filename percent-encoded (WHATWG HTML)
_HTML5_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}


class NotMultipart(ValueError):
    """The body is not multipart/form-data."""


class MalformedUpload(ValueError):
    """The multipart body cannot be parsed, or lacks what an upload needs; the message is safe to show."""


class UploadConflict(ValueError):
    """A file would replace a folder."""


class UploadTooLarge(ValueError):
    def __init__(self, name: str, max_mb: float) -> None:
        super().__init__(f"File {name} exceeds max size ({max_mb:g} MB)")


@dataclass
class StagedFile:
    name: str
    temp: Path
    size: int = 0


def form_filename(raw: bytes) -> str:
    """A part's ``filename`` as the client meant it (UTF-8, HTML5 escapes undone), reduced to a safe basename."""
    name = raw.decode("utf-8", "replace")
    for escaped, char in _HTML5_ESCAPES.items():
        name = name.replace(escaped, char).replace(escaped.lower(), char)
    return safe_filename(name)


class MultipartUpload:
    """Parses a ``multipart/form-data`` body fed chunk by chunk, staging file parts in ``staging``."""

    def __init__(self, content_type: str, staging: Path, max_mb: float) -> None:
        mime, options = parse_options_header(content_type)
        if mime != b"multipart/form-data":
            raise NotMultipart("Content-Type must be multipart/form-data, with the files in 'files' parts")
        boundary = options.get(b"boundary")
        if not boundary:
            raise MalformedUpload("Malformed multipart body: the Content-Type has no boundary")
        self.staging = staging
        self.max_mb = max_mb
        self.max_bytes = int(max_mb * 1024 * 1024) if max_mb > 0 else None
        self.files: list[StagedFile] = []
        self.fields: dict[str, str] = {}
        self.complete = False
        self._headers: dict[bytes, bytes] = {}
        self._header = [b"", b""]
        self._file: StagedFile | None = None
        self._out: BinaryIO | None = None
        self._field: tuple[str, bytearray] | None = None
        try:
            self._parser = MultipartParser(boundary, self._callbacks())
        except MultipartParseError as e:
            raise MalformedUpload(f"Malformed multipart body: {e}") from None

    def _callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
            "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def write(self, chunk: bytes) -> None:
        """Parse a chunk of the body, writing file data to the staged files."""
        try:
            self._parser.write(chunk)
        except MultipartParseError as e:
            raise MalformedUpload(f"Malformed multipart body: {e}") from None

    def finish(self) -> None:
        """Check that the body was read up to its closing boundary."""
        if not self.complete:
            raise MalformedUpload("Malformed multipart body: it ends before the closing boundary")

    def commit(self, folder: Path) -> list[StagedFile]:
        """Move every staged file into ``folder``, in the order they came; later ones win on equal names."""
        folder.mkdir(parents=True, exist_ok=True)
        for staged in self.files:
            if (folder / staged.name).is_dir():
                raise UploadConflict(f"Cannot replace the folder {staged.name} in {folder.name} with a file")
        for staged in self.files:
            os.replace(staged.temp, folder / staged.name)
        committed, self.files = self.files, []
        return committed

    def discard(self) -> None:
        """Remove whatever was staged; safe to call more than once."""
        if self._out is not None:
            self._out.close()
            self._out = None
        for staged in self.files:
            staged.temp.unlink(missing_ok=True)
        self.files = []

    # --- parser callbacks ------------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers = {}
        self._header = [b"", b""]

    def _add_header(self, index: int, data: bytes) -> None:
        self._header[index] += data

    def _header_end(self) -> None:
        self._headers[self._header[0].strip().lower()] = self._header[1].strip()
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        field = params.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not field:
            return
        if field == FILES_FIELD:
            if b"filename" not in params:
                raise MalformedUpload("Every 'files' part must be a file (with a filename)")
            self._start_file(form_filename(params[b"filename"]))
        elif field in TEXT_FIELDS:
            self._field = (field, bytearray())

    def _start_file(self, name: str) -> None:
        if len(self.files) >= MAX_FILES:
            raise MalformedUpload(f"Too many files in one request (at most {MAX_FILES})")
        temp = self.staging / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        self.staging.mkdir(parents=True, exist_ok=True)
        # os.open with O_EXCL: never follows or reuses an existing path, and keeps the usual umask mode
        self._out = os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
        self._file = StagedFile(name, temp)
        self.files.append(self._file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._out is not None:
            self._file.size += end - start
            if self.max_bytes is not None and self._file.size > self.max_bytes:
                raise UploadTooLarge(self._file.name, self.max_mb)
            self._out.write(data[start:end])
        elif self._field is not None:
            name, value = self._field
            value += data[start:end]
            if len(value) > _MAX_FIELD_BYTES:
                raise MalformedUpload(f"Form field {name!r} is longer than {_MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._field is not None:
            name, value = self._field
            self.fields[name] = value.decode("utf-8", "replace")
        self._file = None
        self._field = None

    def _end(self) -> None:
        self.complete = True
