"""What the MCP tools return: each result is a JSON Schema (``outputSchema``) and ``structuredContent``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..models import ActionResponse, FileListResponse, HITLStatusResponse, PlanResponse, SessionListResponse, Usage

TaskStatus = Literal["completed", "running", "awaiting_approval", "rejected", "failed", "cancelled"]

__all__ = [
    "ActionResponse", "Approval", "ApprovalResult", "CellView", "ExecuteResult", "FileListResponse",
    "NotebookView", "RoundView", "SessionListResponse", "TaskResult",
]


class RoundView(BaseModel):
    """One round of a task, as an agent reads it."""

    round: int
    code: str | None = None
    success: bool | None = Field(default=None, description="Whether the round's code ran without error; null without code.")
    output: str = Field(default="", description="What the cell printed (capped).")
    error: str | None = None


class Approval(BaseModel):
    """What a paused task waits for, and the actions that answer it."""

    type: Literal["plan", "code", "error", "answer"]
    message: str = Field(description="The question the human is asked.")
    plan: str | None = None
    code: str | None = None
    error: str | None = None
    answer: str | None = None
    allowed_actions: list[str]


class TaskResult(BaseModel):
    """A task of a session as far as this call saw it."""

    session_id: str
    status: TaskStatus
    answer: str | None = None
    rounds: list[RoundView] = Field(default_factory=list, description="Rounds completed since the call's starting event.")
    plan: PlanResponse | None = None
    usage: Usage = Field(default_factory=Usage)
    next_event: int = Field(description="Pass as get_task's after_event to go on from here.")
    approval: Approval | None = Field(default=None, description="Set when status is awaiting_approval.")
    error: str | None = None


class ApprovalResult(BaseModel):
    """The session's human-in-the-loop state, and what a pending pause accepts."""

    session_id: str
    status: HITLStatusResponse
    approval: Approval | None = None


class ExecuteResult(BaseModel):
    """A cell run through execute_code."""

    session_id: str
    status: Literal["executed", "rejected"]
    success: bool
    output: str = ""
    error: str | None = None
    execution_count: int | None = None
    message: str | None = None


class CellView(BaseModel):
    index: int
    cell_type: str
    source: str
    execution_count: int | None = None
    outputs: str = Field(default="", description="The cell's outputs as text (capped); images come as image blocks.")


class NotebookView(BaseModel):
    path: str
    total_cells: int
    start: int
    cells: list[CellView]
    images_omitted: int = 0


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
