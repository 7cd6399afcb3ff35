"""Chat requests and answers, rounds and turns, the notebook a client sends, and notebook claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from .base import Body, Model
from .execution import ExecutionResult, PlanResponse, Usage
from .kernel import RestoreProgress


class NotebookCell(Model):
    """One cell of the user's notebook, as the panel's live notebook model holds it."""

    cell_type: Literal["code", "markdown", "raw"]
    source: str | list[str] = Field(default="", description="The cell's text (a list of lines as stored on disk is joined).")
    execution_count: int | None = None
    outputs: list[dict[str, Any]] = Field(default_factory=list, description="nbformat v4 outputs.")
    id: str | None = None


class NotebookClaimRequest(Body):
    client_id: str = Field(min_length=1, max_length=200, description="The window claiming the notebook.")
    written_through: int | None = Field(
        default=None, ge=0, description="Seq of the last event whose cell the window has put in its notebook."
    )
    cells: list[NotebookCell] | None = Field(
        default=None, max_length=10_000,
        description="The window's live cells (id, type, source), sent when the user changed them: an agent's "
        "edit of a cell the user changed since the model saw it runs as a new cell.",
    )


class NotebookClaimResponse(Model):
    client_id: str
    expires_in: float = Field(description="Seconds the claim lasts unless renewed.")
    written_through: int | None


class NotebookContext(Model):
    """The notebook the user works in, for the model: the live cells (unsaved edits included)."""

    cells: list[NotebookCell] = Field(default_factory=list, max_length=10_000)
    active_cell_index: int | None = None
    selected_cell_indices: list[int] = Field(default_factory=list)


class ChatRequest(Body):
    message: str = Field(max_length=200_000)
    notebook_context: NotebookContext | None = Field(
        default=None,
        description="The user's notebook as the client shows it; without it an attached session reads the saved notebook.",
    )
    edit_cells: bool = Field(
        default=True,
        description="False: in an attached notebook the agent only adds cells, never rewrites one (the panel's Explain).",
    )


class EditedCell(Model):
    """The user's notebook cell a round rewrote (``<code cell="N">``) instead of adding a cell."""

    index: int = Field(description="The cell's index as the model was shown the notebook.")
    id: str | None = Field(default=None, description="The cell's nbformat id.")
    previous_source: str = Field(description="What the cell held before the edit.")
    cell_type: Literal["code", "markdown"] = "code"


class ChatResponseModel(Model):
    content: str
    code: str | None = None
    cell: EditedCell | None = Field(default=None, description="Set when the code was the new source of a notebook cell.")
    execution_result: ExecutionResult | None = None
    plan: PlanResponse | None = None
    has_answer: bool = False
    answer: str | None = None
    thinking: str | None = None
    is_complete: bool = False


class ActionResponse(Model):
    success: bool
    message: str


class HITLDecision(Model):
    """A human decision taken during a round, or a pause that timed out."""

    request_type: Literal["plan", "code", "error", "answer"]
    round: int
    action: str
    message: str | None = None
    modified_plan: str | None = None
    modified_code: str | None = None
    by: str
    timed_out: bool = False


class RoundResult(ChatResponseModel):
    """One round as streamed in ``round_complete``."""

    round: int
    usage: Usage | None = None
    stop_reason: Literal["answer", "no_code", "max_rounds", "cancelled", "rejected", "interrupted"] | None = Field(
        default=None,
        description="Why the task ended with this round; null while it goes on. "
        "``interrupted``: the server stopped without closing the task (killed), and closed it when it started again.",
    )
    hitl: list[HITLDecision] = Field(default_factory=list, description="Human decisions taken in this round.")
    images_seen: int = Field(
        default=0,
        description="Images the model was shown with this round's request: the figures the previous round's cell "
        "displayed, or the user's notebook images that came with the task's message (0 for a model without vision).",
    )


class ChatResponse(ChatResponseModel):
    """Sync chat: the last round's fields at top level, as the reference, plus every round."""

    rounds: list[RoundResult] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


class ConversationTurn(RoundResult):
    timestamp: datetime
    user_message: str | None = None
    restore: RestoreProgress | None = Field(
        default=None,
        description="Set on a kernel restore's entry (its ``round`` is 0: not a round of a task): how it ended.",
    )


class TurnsResponse(Model):
    turns: list[ConversationTurn]
    total: int
    has_more: bool
    last_event_id: int = Field(
        default=0,
        description="Seq of the session's last logged event when this page was read: a client showing the "
        "history follows what happens next from it (``Last-Event-ID`` on ``GET .../chat/stream``).",
    )


class WSClientMessage(Body):
    """A message a client sends on the chat WebSocket."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["chat", "execute", "cancel", "approve", "reject", "respond"]
    content: str | None = Field(default=None, max_length=200_000)
    code: str | None = Field(default=None, max_length=1_000_000)
    action: str | None = None
    message: str | None = Field(default=None, max_length=100_000)
    modified_plan: str | None = Field(default=None, max_length=100_000)
    modified_code: str | None = Field(default=None, max_length=1_000_000)
    notebook_context: NotebookContext | None = None
    edit_cells: bool = True
