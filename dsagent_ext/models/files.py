"""Files and artifacts of a session."""

from __future__ import annotations

from datetime import datetime

from .base import ArtifactType, FileCategory, Model


class FileInfo(Model):
    name: str
    size: int
    modified: datetime
    category: FileCategory


class FileListResponse(Model):
    files: list[FileInfo]
    total: int
    category: FileCategory


class FileUploadResponse(Model):
    filename: str
    size: int
    path: str


class ArtifactInfo(Model):
    name: str
    size: int
    modified: datetime
    type: ArtifactType
    url: str


class ArtifactListResponse(Model):
    artifacts: list[ArtifactInfo]
    total: int
    session_id: str
