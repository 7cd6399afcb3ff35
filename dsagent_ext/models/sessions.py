"""Sessions: create, change, list, and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from .base import Body, HITLMode, Model, SessionStatus


NOTEBOOK_PATH = Field(
    default=None, max_length=1024,
    description="A notebook (``.ipynb``, relative to the server root) to work in: the session runs its code "
    "in that notebook's kernel.",
)


class CreateSessionRequest(Body):
    name: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    hitl_mode: HITLMode | None = None
    notebook_path: str | None = NOTEBOOK_PATH


class UpdateSessionRequest(Body):
    name: str | None = Field(default=None, max_length=200)
    status: SessionStatus | None = None
    model: str | None = Field(default=None, max_length=200)
    hitl_mode: HITLMode | None = None
    notebook_path: str | None = Field(
        default=None, max_length=1024,
        description="Attach to this notebook (``.ipynb``, relative to the server root); ``null`` detaches; absent: unchanged.",
    )


class RunningTask(Model):
    """The task a session runs now, for a client attaching mid-way (follow it with ``GET .../chat/stream``)."""

    message: str
    completed_rounds: int = Field(description="Rounds of this task already in /turns (the last ones).")


class SessionResponse(Model):
    id: str
    name: str | None
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
    kernel_variables: int = 0
    workspace_path: str | None
    model: str
    hitl_mode: HITLMode
    missing_api_key: str | None = Field(
        default=None, description="Environment variable the model needs before it can chat, if unset."
    )
    running_task: RunningTask | None = Field(default=None, description="The task running now, if any.")
    notebook_path: str | None = Field(
        default=None, description="The notebook the session is attached to (its kernel is that notebook's)."
    )
    kernel_id: str | None = Field(
        default=None, description="The Jupyter kernel the session runs code in (null until it first starts)."
    )
    notebook_markdown_cells: bool = Field(
        default=True, description="Plan and answer go into an attached notebook as markdown cells."
    )
    written_through: int | None = Field(
        default=None, description="Seq of the last event whose cell is in the attached notebook."
    )


class SessionListResponse(Model):
    sessions: list[SessionResponse]
    total: int


class MessageResponse(Model):
    id: str
    role: Literal["user", "assistant", "execution", "system"]
    content: str
    timestamp: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)


class MessagesResponse(Model):
    messages: list[MessageResponse]
    total: int
    has_more: bool
