"""The narrow settings each service receives, built by the app from its traitlets (``settings.traits``).

A service is given only what it reads, frozen: no service holds the app, so none imports it, and a
test or another app can build one from plain values. Changing a setting of a running server means
handing the service a new object (``dataclasses.replace``), as the tests do for the admin's policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..models import HITLMode

RestoreMode = Literal["off", "ask", "auto"]
VisionMode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class ModelSettings:
    """How the model is called: which one by default, where, and with what sampling and timeout."""

    default_model: str
    api_base: str | None
    temperature: float
    max_tokens: int
    timeout: float  # seconds per attempt
    workers: int  # model worker processes; 0: calls in the server process
    fast_path: bool  # our own stream reader for OpenAI-compatible and Anthropic models
    admin_models: tuple[str, ...] = ()  # the admin's list (``models``): names taken as configured


@dataclass(frozen=True)
class PolicySettings:
    """The admin's policy: which models users may pick and how little human oversight a session may have."""

    allowed_models: tuple[str, ...]
    blocked_models: tuple[str, ...]
    min_hitl_mode: HITLMode
    default_hitl_mode: HITLMode  # raised to ``min_hitl_mode`` by the policy when below it


@dataclass(frozen=True)
class SpendingSettings:
    """The spending limits; None means no limit."""

    max_tokens_per_task: int | None
    max_cost_per_session: float | None
    max_cost_per_user_per_day: float | None


@dataclass(frozen=True)
class CatalogueSettings:
    """What the model picker offers besides the providers' models."""

    models: tuple[str, ...]  # the admin's list, offered first
    default_model: str
    api_base: str | None


@dataclass(frozen=True)
class NotebookSettings:
    """Sessions attached to a user's notebook."""

    kernel_name: str  # for a notebook naming no kernel spec this server has
    markdown_cells: bool  # the agent's plan and answer written as markdown cells too
    claim_lease: float  # seconds a window's claim lasts without a renewal


@dataclass(frozen=True)
class SessionSettings:
    """Sessions and their kernels."""

    default_model: str
    api_base: str | None  # tells which provider key a session's model lacks
    kernel_name: str
    code_timeout: float
    hitl_timeout: float
    notebook: NotebookSettings


@dataclass(frozen=True)
class VisionSettings:
    """When the model is shown the figures (and the user's notebook images), how many, how large."""

    mode: VisionMode = "auto"  # auto: when litellm knows the model accepts images
    max_side: int = 1024  # px on an image's long side
    max_images: int = 4  # per model request


@dataclass(frozen=True)
class RunSettings:
    """Agent tasks: their bounds and their model calls."""

    max_rounds: int
    code_timeout: float
    context_tokens: int  # earlier conversation sent verbatim before older turns are summarised
    model: ModelSettings
    vision: VisionSettings = VisionSettings()


@dataclass(frozen=True)
class RestoreSettings:
    """Kernel restores."""

    mode: RestoreMode
    slow_cell_seconds: float
    code_timeout: float


@dataclass(frozen=True)
class ApiSettings:
    """What the handlers themselves read."""

    prefix: str  # URL path under which every DSAgent route is served
    sse_keepalive: float
    max_upload_mb: float
    kernel_name: str  # the readiness check looks it up


@dataclass(frozen=True)
class MCPSettings:
    """The MCP endpoint's tools."""

    allow_agent_approval: bool  # respond_approval answers approvals (off: only humans do)
    keepalive: float  # seconds between progress keep-alives while a task waits
    code_timeout: float  # execute_code's default
