"""Every DSAgent setting, as a traitlet of the extension app (``c.DSAgent.<name>`` in a Jupyter config file).

Each default falls back to the DSAgent environment variable of the same meaning, so a DSAgent deployment
keeps its configuration. This is the only settings source: the app builds from it (``*_settings()``)
the narrow settings object each service receives.
"""

from __future__ import annotations

from traitlets import Bool, Enum, Float, Integer, List, Unicode, default, validate

from ..models import HITLMode
from . import (
    ApiSettings,
    CatalogueSettings,
    MCPSettings,
    ModelSettings,
    NotebookSettings,
    PolicySettings,
    RestoreSettings,
    RunSettings,
    SessionSettings,
    SpendingSettings,
    VisionSettings,
)
from .environment import env, env_bool, env_list
from .policy_traits import AdminPolicyTraits


class DSAgentSettings(AdminPolicyTraits):
    """The traitlets of ``DSAgent`` (the admin's policy and limits in ``AdminPolicyTraits``), and the
    settings objects built from them."""

    default_model = Unicode(
        help="""Model used when neither the request nor the session names one (litellm names,
        e.g. ``gpt-4o``, ``anthropic/claude-sonnet-4-20250514``, ``ollama/llama3``).
        Falls back to DSAGENT_DEFAULT_MODEL, then LLM_MODEL, then ``gpt-4o``.""",
    ).tag(config=True)

    @default("default_model")
    def _default_model_default(self) -> str:
        return env("DSAGENT_DEFAULT_MODEL") or env("LLM_MODEL") or "gpt-4o"

    api_base = Unicode(
        allow_none=True,
        help="""Base URL of an OpenAI-compatible endpoint (proxy, vLLM, LM Studio...). When set,
        models without a provider prefix are sent as ``openai/<model>``. Falls back to LLM_API_BASE.""",
    ).tag(config=True)

    @default("api_base")
    def _api_base_default(self) -> str | None:
        return env("LLM_API_BASE")

    api_key = Unicode(
        allow_none=True,
        help="""Shared key for DSAgent clients: ``X-API-Key`` on REST and SSE, ``?api_key=`` on the
        WebSocket. None leaves authentication to the Jupyter server alone. Falls back to DSAGENT_API_KEY.""",
    ).tag(config=True)

    @default("api_key")
    def _api_key_default(self) -> str | None:
        return env("DSAGENT_API_KEY")

    require_api_key = Bool(
        help="Refuse to start without ``api_key``. Falls back to DSAGENT_REQUIRE_API_KEY.",
    ).tag(config=True)

    @default("require_api_key")
    def _require_api_key_default(self) -> bool:
        return env_bool("DSAGENT_REQUIRE_API_KEY")

    max_upload_mb = Float(
        help="Largest accepted upload per file, in MB; 0 means no limit. Falls back to DSAGENT_MAX_UPLOAD_MB, then 50.",
    ).tag(config=True)

    @default("max_upload_mb")
    def _max_upload_mb_default(self) -> float:
        return float(env("DSAGENT_MAX_UPLOAD_MB", "50"))

    @validate("max_upload_mb")
    def _validate_max_upload_mb(self, proposal: dict) -> float:
        if proposal["value"] < 0:
            raise ValueError("max_upload_mb must be >= 0 (0 means no limit)")
        return proposal["value"]

    default_hitl_mode = Unicode(
        help="""HITL mode of sessions created without one (raised to ``min_hitl_mode`` when below it).
        Falls back to DSAGENT_DEFAULT_HITL_MODE, then ``none``.""",
    ).tag(config=True)

    @default("default_hitl_mode")
    def _default_hitl_mode_default(self) -> str:
        return env("DSAGENT_DEFAULT_HITL_MODE", "none")

    @validate("default_hitl_mode")
    def _validate_default_hitl_mode(self, proposal: dict) -> str:
        return HITLMode(proposal["value"]).value

    models = List(
        Unicode(),
        help="""Models offered first in the model picker (``GET /api/models``), in this order, besides
        those of providers whose keys are set and those an ``api_base`` reports. Empty (the default)
        offers only those. Falls back to DSAGENT_MODELS (comma-separated).""",
    ).tag(config=True)

    @default("models")
    def _models_default(self) -> list[str]:
        return env_list("DSAGENT_MODELS")

    workspace_dir = Unicode(
        help="""Folder, relative to the server's root_dir, holding ``sessions/<id>/``. It must lie inside
        root_dir so notebooks are visible in the file browser. Falls back to DSAGENT_SESSIONS_DIR, then ``dsagent``.""",
    ).tag(config=True)

    @default("workspace_dir")
    def _workspace_dir_default(self) -> str:
        return env("DSAGENT_SESSIONS_DIR", "dsagent")

    max_rounds = Integer(
        help="Most model calls per user message. Falls back to DSAGENT_MAX_ROUNDS, then 30.",
    ).tag(config=True)

    @default("max_rounds")
    def _max_rounds_default(self) -> int:
        return int(env("DSAGENT_MAX_ROUNDS", "30"))

    code_timeout = Float(
        help="Seconds a cell may run before the kernel is interrupted. Falls back to DSAGENT_CODE_TIMEOUT, then 300.",
    ).tag(config=True)

    @default("code_timeout")
    def _code_timeout_default(self) -> float:
        return float(env("DSAGENT_CODE_TIMEOUT", "300"))

    model_timeout = Float(
        help="""Seconds to wait for the model's reply (each attempt; failed attempts are retried 3 times).
        Falls back to DSAGENT_MODEL_TIMEOUT, then 120.""",
    ).tag(config=True)

    @default("model_timeout")
    def _model_timeout_default(self) -> float:
        return float(env("DSAGENT_MODEL_TIMEOUT", "120"))

    temperature = Float(
        help="Sampling temperature. Falls back to DSAGENT_TEMPERATURE, then 0.3.",
    ).tag(config=True)

    @default("temperature")
    def _temperature_default(self) -> float:
        return float(env("DSAGENT_TEMPERATURE", "0.3"))

    max_tokens = Integer(
        help="Most tokens per model reply. Falls back to DSAGENT_MAX_TOKENS, then 4096.",
    ).tag(config=True)

    @default("max_tokens")
    def _max_tokens_default(self) -> int:
        return int(env("DSAGENT_MAX_TOKENS", "4096"))

    model_workers = Integer(
        help="""Worker processes that make the model calls (started on the first call, restarted when one
        dies), so litellm's per-chunk CPU stays off the server's event loop. 0 makes the calls in the server
        process. Falls back to DSAGENT_MODEL_WORKERS, then 1.""",
    ).tag(config=True)

    @default("model_workers")
    def _model_workers_default(self) -> int:
        return int(env("DSAGENT_MODEL_WORKERS", "1"))

    @validate("model_workers")
    def _validate_model_workers(self, proposal: dict) -> int:
        if proposal["value"] < 0:
            raise ValueError("model_workers must be >= 0 (0 means calls in the server process)")
        return proposal["value"]

    model_fast_path = Bool(
        help="""Stream the replies of OpenAI-compatible and Anthropic models with DSAgent's own reader (litellm
        still builds each request and prices it); False sends every call through litellm's own stream.
        Falls back to DSAGENT_MODEL_FAST_PATH, then true.""",
    ).tag(config=True)

    @default("model_fast_path")
    def _model_fast_path_default(self) -> bool:
        return (env("DSAGENT_MODEL_FAST_PATH") or "true").lower() not in {"0", "false", "no", "off"}

    vision = Enum(
        ["auto", "on", "off"],
        help="""Whether the model is shown the figures the agent's cells display (and the user's notebook images
        it is asked about): ``auto`` when litellm knows the model accepts images, ``on`` for any model (a local
        or unknown vision model), ``off`` never. Falls back to DSAGENT_VISION, then ``auto``.""",
    ).tag(config=True)
    vision_max_side = Integer(
        help="Pixels of an image's long side as the model is shown it, at most. DSAGENT_VISION_MAX_SIDE, then 1024.",
    ).tag(config=True)
    vision_max_images = Integer(help="Images per model request, at most. DSAGENT_VISION_MAX_IMAGES, then 4.").tag(config=True)

    @default("vision")
    def _vision_default(self) -> str:
        return env("DSAGENT_VISION", "auto").lower()

    @default("vision_max_side")
    def _vision_max_side_default(self) -> int:
        return int(env("DSAGENT_VISION_MAX_SIDE", "1024"))

    @default("vision_max_images")
    def _vision_max_images_default(self) -> int:
        return int(env("DSAGENT_VISION_MAX_IMAGES", "4"))

    @validate("vision_max_side", "vision_max_images")
    def _validate_vision_limits(self, proposal: dict) -> int:
        if proposal["value"] < 1:
            raise ValueError(f"{proposal['trait'].name} must be >= 1")
        return proposal["value"]

    hitl_timeout = Float(
        help="""Seconds a human-in-the-loop pause waits before it counts as a reject.
        Falls back to DSAGENT_HITL_TIMEOUT, then 1800.""",
    ).tag(config=True)

    @default("hitl_timeout")
    def _hitl_timeout_default(self) -> float:
        return float(env("DSAGENT_HITL_TIMEOUT", "1800"))

    context_tokens = Integer(
        help="""Tokens of earlier conversation sent to the model before older turns are summarised.
        Falls back to DSAGENT_CONTEXT_TOKENS, then 60000.""",
    ).tag(config=True)

    @default("context_tokens")
    def _context_tokens_default(self) -> int:
        return int(env("DSAGENT_CONTEXT_TOKENS", "60000"))

    restore_kernel = Enum(
        ["off", "ask", "auto"],
        help="""Whether the agent rebuilds a session's kernel on its own when it is new (a server restart,
        a crash, a cull): ``auto`` replays the history's cells before the next task; ``ask`` (and ``off``)
        leave it to the user (``POST .../kernel/restore``, the panel's button), the model being told the
        kernel is new either way. Falls back to DSAGENT_RESTORE_KERNEL, then ``ask``.""",
    ).tag(config=True)

    @default("restore_kernel")
    def _restore_kernel_default(self) -> str:
        return env("DSAGENT_RESTORE_KERNEL", "ask").lower()

    restore_slow_cell_seconds = Float(
        help="""A restore lists, instead of running again, the cells that took longer than this when they ran.
        Falls back to DSAGENT_RESTORE_SLOW_CELL_SECONDS, then 60.""",
    ).tag(config=True)

    @default("restore_slow_cell_seconds")
    def _restore_slow_cell_seconds_default(self) -> float:
        return float(env("DSAGENT_RESTORE_SLOW_CELL_SECONDS", "60"))

    sse_keepalive = Float(15.0, help="Seconds between ``: keepalive`` comments on an idle event stream.").tag(config=True)

    kernel_name = Unicode(
        "python3",
        help="""Kernel spec started for each session, and for a notebook a session attaches to when the
        notebook names no kernel spec this server has.""",
    ).tag(config=True)

    notebook_markdown_cells = Bool(
        True,
        help="""Write the agent's plan and final answer into an attached notebook as markdown cells
        (its code cells are always written).""",
    ).tag(config=True)

    mount_at_root = Bool(
        False,
        help="""Serve the DSAgent URLs at the server root (``/health``, ``/api/sessions``...) instead of
        under ``dsagent/``. Only ``dsagent serve`` sets this: in a JupyterLab server the root belongs to Jupyter.""",
    ).tag(config=True)

    notebook_claim_lease = Float(
        30.0,
        help="""Seconds a window's claim on an attached notebook lasts without a renewal; once it lapses,
        the server appends the agent's cells to the file itself.""",
    ).tag(config=True)

    mcp_enabled = Bool(
        help="""Serve the MCP endpoint (``{base_url}dsagent/mcp``, ``/mcp`` under ``dsagent serve``) for MCP
        clients (Claude Code, Cursor, VS Code...). It grants nothing the REST API does not grant the same
        credentials. Falls back to DSAGENT_MCP_ENABLED, then on.""",
    ).tag(config=True)

    @default("mcp_enabled")
    def _mcp_enabled_default(self) -> bool:
        return (env("DSAGENT_MCP_ENABLED") or "true").lower() in {"1", "true", "yes", "on"}

    mcp_allow_agent_approval = Bool(
        help="""Let MCP clients answer approvals with ``respond_approval``. Off by default: an agent that
        approves its own code is no human gate (humans still answer through the client's elicitation
        prompt, the panel or REST). Falls back to DSAGENT_MCP_ALLOW_AGENT_APPROVAL.""",
    ).tag(config=True)

    @default("mcp_allow_agent_approval")
    def _mcp_allow_agent_approval_default(self) -> bool:
        return env_bool("DSAGENT_MCP_ALLOW_AGENT_APPROVAL")

    # --- the settings each service receives ---------------------------------------------------------

    def model_settings(self) -> ModelSettings:
        return ModelSettings(
            default_model=self.default_model,
            api_base=self.api_base,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout=self.model_timeout,
            workers=self.model_workers,
            fast_path=self.model_fast_path,
            admin_models=tuple(self.models),
        )

    def policy_settings(self) -> PolicySettings:
        return PolicySettings(
            allowed_models=tuple(self.allowed_models),
            blocked_models=tuple(self.blocked_models),
            min_hitl_mode=HITLMode(self.min_hitl_mode),
            default_hitl_mode=HITLMode(self.default_hitl_mode),
        )

    def spending_settings(self) -> SpendingSettings:
        return SpendingSettings(
            max_tokens_per_task=self.max_tokens_per_task,
            max_cost_per_session=self.max_cost_per_session,
            max_cost_per_user_per_day=self.max_cost_per_user_per_day,
        )

    def catalogue_settings(self) -> CatalogueSettings:
        return CatalogueSettings(models=tuple(self.models), default_model=self.default_model, api_base=self.api_base)

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            default_model=self.default_model,
            api_base=self.api_base,
            kernel_name=self.kernel_name,
            code_timeout=self.code_timeout,
            hitl_timeout=self.hitl_timeout,
            notebook=NotebookSettings(
                kernel_name=self.kernel_name,
                markdown_cells=self.notebook_markdown_cells,
                claim_lease=self.notebook_claim_lease,
            ),
        )

    def run_settings(self) -> RunSettings:
        return RunSettings(
            max_rounds=self.max_rounds,
            code_timeout=self.code_timeout,
            context_tokens=self.context_tokens,
            model=self.model_settings(),
            vision=VisionSettings(self.vision, self.vision_max_side, self.vision_max_images),
        )

    def restore_settings(self) -> RestoreSettings:
        return RestoreSettings(self.restore_kernel, self.restore_slow_cell_seconds, self.code_timeout)

    def api_settings(self, prefix: str) -> ApiSettings:
        return ApiSettings(
            prefix=prefix, sse_keepalive=self.sse_keepalive, max_upload_mb=self.max_upload_mb, kernel_name=self.kernel_name
        )

    def mcp_settings(self) -> MCPSettings:
        return MCPSettings(self.mcp_allow_agent_approval, self.sse_keepalive, self.code_timeout)
