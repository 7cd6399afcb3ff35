"""Enums and base classes of every body, and the health answers."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict


class HITLMode(str, Enum):
    """When the agent stops for a human decision."""

    none = "none"
    plan_only = "plan_only"
    on_error = "on_error"
    plan_and_answer = "plan_and_answer"
    full = "full"


# from least to most human oversight: ``min_hitl_mode`` refuses every mode before it
HITL_ORDER: tuple[HITLMode, ...] = (
    HITLMode.none,
    HITLMode.on_error,
    HITLMode.plan_only,
    HITLMode.plan_and_answer,
    HITLMode.full,
)


class SessionStatus(str, Enum):
    active = "active"
    paused = "paused"
    completed = "completed"
    error = "error"
    archived = "archived"


class FileCategory(str, Enum):
    data = "data"
    artifacts = "artifacts"
    notebooks = "notebooks"


class ArtifactType(str, Enum):
    image = "image"
    document = "document"
    data = "data"
    model = "model"
    code = "code"
    notebook = "notebook"
    other = "other"


class Model(BaseModel):
    """Every body and record: validators are built on first use rather than at import, so the
    extension adds less to the server's start."""

    model_config = ConfigDict(defer_build=True)


class Body(Model):
    """Request bodies reject unknown fields so typos surface as 422 instead of being ignored."""

    model_config = ConfigDict(extra="forbid")


class HealthResponse(Model):
    status: str = "ok"
    version: str
    timestamp: datetime


class ReadinessResponse(Model):
    ready: bool
    checks: dict[str, bool]
    detail: str | None = None


class ErrorResponse(Model):
    detail: str | list[dict[str, Any]]
