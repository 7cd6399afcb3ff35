"""Pydantic bodies of the DSAgent HTTP contract.

Field names and nullability follow the DSAgent API reference: external clients already parse them.
Additive fields (``model``, ``hitl_mode``, ``usage``, ``rounds``, ``mime``) never rename or drop one.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field


class HITLMode(str, Enum):
    """When the agent stops for a human decision."""

    none = "none"
    plan_only = "plan_only"
    on_error = "on_error"
    plan_and_answer = "plan_and_answer"
    full = "full"


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


# --- health -------------------------------------------------------------------------------------


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


# --- sessions -----------------------------------------------------------------------------------


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


# --- execution, plan, chat rounds ---------------------------------------------------------------


class ImageOutput(Model):
    format: str
    mime: str
    data: str


class ExecutionResult(Model):
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    images: list[ImageOutput] = Field(default_factory=list)
    success: bool = True
    execution_time_ms: float | None = None
    truncated: bool = False
    outputs: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The cell's outputs in nbformat v4 form, in order (``stream``, ``execute_result``, "
        "``display_data`` with whole mime bundles, ``error``); each capped, a truncated rich output has "
        "``metadata.dsagent_truncated``.",
    )
    execution_count: int | None = Field(default=None, description="The kernel's execution count of the cell.")

    @computed_field(description="What a notebook shows as text: stdout, then stderr, then the error.")  # type:ignore[prop-decorator]
    @property
    def output(self) -> str:
        text = self.stdout + self.stderr
        if self.error:
            text += ("\n" if text and not text.endswith("\n") else "") + self.error
        return text


class ExecuteCodeRequest(Body):
    code: str = Field(max_length=1_000_000)


class ResetKernelRequest(Body):
    restart_user_kernel: bool = False


class NotebookClaimRequest(Body):
    client_id: str = Field(min_length=1, max_length=200, description="The window claiming the notebook.")
    written_through: int | None = Field(
        default=None, ge=0, description="Seq of the last event whose cell the window has put in its notebook."
    )


class NotebookClaimResponse(Model):
    client_id: str
    expires_in: float = Field(description="Seconds the claim lasts unless renewed.")
    written_through: int | None


class PlanStep(Model):
    number: int
    description: str
    completed: bool


class PlanResponse(Model):
    steps: list[PlanStep]
    raw_text: str
    total_steps: int
    completed_steps: int
    is_complete: bool


class Usage(Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None


class Spent(Model):
    """Spending counted against the limits: cost where litellm knows the model's price, tokens always."""

    cost_usd: float = 0.0
    tokens: int = 0
    unpriced_tokens: int = Field(default=0, description="Tokens of models without a known price (no cost counted).")

    def plus(self, usage: Usage) -> Spent:
        priced = usage.cost_usd is not None
        return Spent(
            cost_usd=self.cost_usd + (usage.cost_usd or 0.0),
            tokens=self.tokens + usage.total_tokens,
            unpriced_tokens=self.unpriced_tokens + (0 if priced else usage.total_tokens),
        )


class CatalogueModel(Model):
    """A model a user may pick (``id`` is what to send as ``model``)."""

    id: str
    provider: str
    label: str
    available: bool = Field(description="False until the server has the provider's key.")
    missing_api_key: str | None = Field(default=None, description="Environment variable the model needs, if unset.")
    default: bool = False
    source: Literal["admin", "provider", "api_base"]
    context_window: int | None = Field(default=None, description="Input tokens, when litellm knows them.")
    input_usd_per_million: float | None = None
    output_usd_per_million: float | None = None


class ModelCatalogue(Model):
    models: list[CatalogueModel]
    default_model: str
    warning: str | None = Field(
        default=None, description="Why part of the list is missing (an api_base that did not answer)."
    )


class SpendingLimits(Model):
    """The admin's limits; null: no limit."""

    max_tokens_per_task: int | None = None
    max_cost_per_session: float | None = None
    max_cost_per_user_per_day: float | None = None


class PolicyResponse(Model):
    """The effective policy, and the caller's spending against it."""

    allowed_models: list[str] = Field(description="Names or glob patterns; empty: every model not blocked.")
    blocked_models: list[str]
    min_hitl_mode: HITLMode
    hitl_modes: list[HITLMode] = Field(description="The HITL modes sessions may use, least oversight first.")
    default_model: str
    default_hitl_mode: HITLMode
    limits: SpendingLimits
    user: str = Field(description="The identity spending is counted for.")
    day: str = Field(description="The UTC day ``spent_today`` covers (YYYY-MM-DD).")
    spent_today: Spent
    remaining_today_usd: float | None = Field(description="Left of max_cost_per_user_per_day; null: no limit.")
    session_spent: Spent | None = Field(default=None, description="Spent by the session given as ``?session_id=``.")
class NotebookCell(Model):
    """One cell of the user's notebook, as the panel's live notebook model holds it."""

    cell_type: Literal["code", "markdown", "raw"]
    source: str | list[str] = Field(default="", description="The cell's text (a list of lines as stored on disk is joined).")
    execution_count: int | None = None
    outputs: list[dict[str, Any]] = Field(default_factory=list, description="nbformat v4 outputs.")
    id: str | None = None


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


class ChatResponseModel(Model):
    content: str
    code: str | None = None
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


# --- kernel -------------------------------------------------------------------------------------


class KernelVariable(Model):
    name: str
    type: str
    value_preview: str | None = None


class DataFrameInfo(Model):
    name: str
    shape: list[int]
    columns: list[str]
    dtypes: dict[str, str]
    memory_mb: float


class KernelState(Model):
    variables: list[KernelVariable] = Field(default_factory=list)
    dataframes: list[DataFrameInfo] = Field(default_factory=list)
    imports: list[str] = Field(default_factory=list)
    is_running: bool = False
    # false when the kernel runs where the session folder is not visible (a gateway host without
    # the server's files): uploads cannot be read and saved files do not become artifacts
    workspace_reachable: bool = True
    is_new: bool = Field(
        default=False,
        description="The session's history was built in a kernel process that is gone: this one (or the one "
        "its next use starts) has none of its variables. ``POST .../kernel/restore`` replays them.",
    )


# --- kernel restore -----------------------------------------------------------------------------

RESTORE_EVENT = "restore_progress"
RESTORE_ENDS = frozenset({"completed", "failed", "cancelled"})


class RestoreRequest(Body):
    replay_all: bool = Field(
        default=False,
        description="Re-run the cells that only wrote files or ran longer than ``restore_slow_cell_seconds`` "
        "too, instead of listing them as skipped.",
    )


class SkippedCell(Model):
    """A cell of the history that a restore lists instead of running again."""

    code: str
    reason: Literal["writes_files", "slow"]
    execution_time_ms: float | None = None


class RestoreProgress(Model):
    """The data of a ``restore_progress`` event: one per step of a restore, the last one ends it."""

    status: Literal["started", "running", "completed", "failed", "cancelled"]
    auto: bool = Field(default=False, description="Started by the agent before a task (``restore_kernel: auto``).")
    total: int = Field(description="Cells this restore replays.")
    cell: int | None = Field(default=None, description="The cell running, or the one that failed or was cancelled (1-based).")
    replayed: int = Field(default=0, description="Cells replayed successfully so far.")
    code: str | None = None
    error: str | None = None
    skipped: list[SkippedCell] = Field(default_factory=list)
    kernel: KernelState | None = Field(default=None, description="The kernel's description when the restore ended.")


# --- files and artifacts ------------------------------------------------------------------------


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


# --- human in the loop --------------------------------------------------------------------------


class HITLAction(str, Enum):
    approve = "approve"
    reject = "reject"
    modify = "modify"
    retry = "retry"
    skip = "skip"
    feedback = "feedback"


class PendingPlan(Model):
    raw_text: str
    steps: list[PlanStep]


class HITLStatusResponse(Model):
    enabled: bool
    mode: HITLMode
    awaiting_feedback: bool
    awaiting_type: Literal["plan", "code", "error", "answer"] | None = None
    pending_plan: PendingPlan | None = None
    pending_code: str | None = None
    pending_error: str | None = None
    pending_answer: str | None = None


class HITLActionRequest(Body):
    action: HITLAction
    message: str | None = Field(default=None, max_length=100_000)
    modified_plan: str | None = Field(default=None, max_length=100_000)
    modified_code: str | None = Field(default=None, max_length=1_000_000)


class HITLWords(Model):
    """Optional body of approve and reject: the words that go with the decision, under any of the names
    clients send them (``feedback`` on approve and ``reason`` on reject by DSAgent's VS Code client).

    Unlike other bodies, unknown fields are ignored: clients add their own, and refusing them left a
    task paused until the timeout behind a client that never looks at the status.
    """

    model_config = ConfigDict(extra="ignore")

    message: str | None = Field(default=None, max_length=100_000)
    feedback: str | None = Field(default=None, max_length=100_000)
    reason: str | None = Field(default=None, max_length=100_000)

    @property
    def text(self) -> str | None:
        """The first of ``message``, ``feedback``, ``reason`` given and not blank."""
        return next((t for t in (self.message, self.feedback, self.reason) if t and t.strip()), None)
