"""Pydantic bodies of the DSAgent HTTP contract.

Field names and nullability follow the DSAgent API reference: external clients already parse them.
Additive fields (``model``, ``hitl_mode``, ``usage``, ``rounds``, ``mime``) never rename or drop one.
"""

from __future__ import annotations

from .base import (
    ArtifactType,
    Body,
    ErrorResponse,
    FileCategory,
    HITLMode,
    HealthResponse,
    Model,
    ReadinessResponse,
    SessionStatus,
)
from .sessions import (
    CreateSessionRequest,
    MessageResponse,
    MessagesResponse,
    NOTEBOOK_PATH,
    RunningTask,
    SessionListResponse,
    SessionResponse,
    UpdateSessionRequest,
)
from .execution import (
    ExecuteCodeRequest,
    ExecutionResult,
    ImageOutput,
    PlanResponse,
    PlanStep,
    ResetKernelRequest,
    Usage,
)
from .policy import (
    CatalogueModel,
    ModelCatalogue,
    PolicyResponse,
    SpendingLimits,
    Spent,
)
from .chat import (
    ActionResponse,
    ChatRequest,
    ChatResponse,
    ChatResponseModel,
    ConversationTurn,
    HITLDecision,
    NotebookCell,
    NotebookClaimRequest,
    NotebookClaimResponse,
    NotebookContext,
    RoundResult,
    TurnsResponse,
    WSClientMessage,
)
from .kernel import (
    DataFrameInfo,
    KernelState,
    KernelVariable,
    RESTORE_ENDS,
    RESTORE_EVENT,
    RestoreProgress,
    RestoreRequest,
    SkippedCell,
)
from .files import (
    ArtifactInfo,
    ArtifactListResponse,
    FileInfo,
    FileListResponse,
    FileUploadResponse,
)
from .hitl import (
    HITLAction,
    HITLActionRequest,
    HITLStatusResponse,
    HITLWords,
    PendingPlan,
)
