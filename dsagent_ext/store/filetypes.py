"""What a stored file is, by its extension: its media type and its artifact type.

The tables are the reference server's (DSAgent 0.9.1); ``mimetypes`` answers for extensions they do not list.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

from ..models import ArtifactType

OCTET_STREAM = "application/octet-stream"

MEDIA_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
    ".parquet": OCTET_STREAM,
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".md": "text/markdown",
    ".ipynb": "application/x-ipynb+json",
    ".py": "text/x-python",
    ".txt": "text/plain",
    ".pkl": OCTET_STREAM,
    ".pickle": OCTET_STREAM,
    ".joblib": OCTET_STREAM,
}

_ARTIFACT_EXTENSIONS = {
    ArtifactType.image: (".png", ".jpg", ".jpeg", ".svg", ".gif"),
    ArtifactType.document: (".pdf", ".html", ".md"),
    ArtifactType.data: (".csv", ".xlsx", ".xls", ".parquet", ".json"),
    ArtifactType.model: (".pkl", ".pickle", ".joblib", ".h5", ".pt", ".pth"),
    ArtifactType.code: (".py",),
    ArtifactType.notebook: (".ipynb",),
}
ARTIFACT_TYPES = {ext: kind for kind, extensions in _ARTIFACT_EXTENSIONS.items() for ext in extensions}


def extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def media_type(name: str) -> str:
    """The Content-Type to send ``name`` with."""
    ext = extension(name)
    # guess from the extension alone: the whole name could parse as a URL (``data:...``)
    return MEDIA_TYPES.get(ext) or (ext and mimetypes.guess_type("file" + ext)[0]) or OCTET_STREAM


def artifact_type(name: str) -> ArtifactType:
    return ARTIFACT_TYPES.get(extension(name), ArtifactType.other)
