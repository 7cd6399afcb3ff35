"""The admin's policy and spending limits, as traitlets of ``DSAgent``: users choose within them, and no
request can go around them."""

from __future__ import annotations

from traitlets import Float, HasTraits, Integer, List, Unicode, default, validate

from ..models import HITL_ORDER, HITLMode
from .environment import env, env_float, env_list


def _positive_or_none(proposal: dict) -> float | None:
    if proposal["value"] is not None and proposal["value"] <= 0:
        raise ValueError(f"{proposal['trait'].name} must be > 0, or None for no limit")
    return proposal["value"]


class AdminPolicyTraits(HasTraits):
    """Which models users may pick, how little oversight a session may have, and what it may spend."""

    allowed_models = List(
        Unicode(),
        help="""Models users may pick: exact litellm names or glob patterns (``gpt-4o*``, ``ollama/*``).
        Empty (the default) allows every model not blocked. Sessions, updates and tasks with any other
        model are refused with 400. Falls back to DSAGENT_ALLOWED_MODELS (comma-separated).""",
    ).tag(config=True)

    @default("allowed_models")
    def _allowed_models_default(self) -> list[str]:
        return env_list("DSAGENT_ALLOWED_MODELS")

    blocked_models = List(
        Unicode(),
        help="""Models users may not pick, even when ``allowed_models`` matches them: exact names or glob
        patterns. Empty (the default) blocks nothing. Falls back to DSAGENT_BLOCKED_MODELS (comma-separated).""",
    ).tag(config=True)

    @default("blocked_models")
    def _blocked_models_default(self) -> list[str]:
        return env_list("DSAGENT_BLOCKED_MODELS")

    min_hitl_mode = Unicode(
        help=f"""Least human oversight a session may have, in the order {" < ".join(m.value for m in HITL_ORDER)}.
        Sessions cannot be created, updated or run below it (400), and the default HITL mode is raised
        to it. ``none`` (the default) sets no minimum. Falls back to DSAGENT_MIN_HITL_MODE.""",
    ).tag(config=True)

    @default("min_hitl_mode")
    def _min_hitl_mode_default(self) -> str:
        return env("DSAGENT_MIN_HITL_MODE", "none")

    @validate("min_hitl_mode")
    def _validate_min_hitl_mode(self, proposal: dict) -> str:
        return HITLMode(proposal["value"]).value

    max_tokens_per_task = Integer(
        None,
        allow_none=True,
        help="""Most tokens (prompt + completion, all rounds) one task may use; the task ends after the
        round that reaches it. None (the default) means no limit. Falls back to DSAGENT_MAX_TOKENS_PER_TASK.""",
    ).tag(config=True)

    @default("max_tokens_per_task")
    def _max_tokens_per_task_default(self) -> int | None:
        value = env("DSAGENT_MAX_TOKENS_PER_TASK")
        return int(value) if value else None

    max_cost_per_session = Float(
        None,
        allow_none=True,
        help="""Most USD one session may spend in all (litellm's prices; models without a known price count
        tokens only and do not reach it). Tasks end when it is reached and new ones are refused (429).
        None (the default) means no limit. Falls back to DSAGENT_MAX_COST_PER_SESSION.""",
    ).tag(config=True)

    @default("max_cost_per_session")
    def _max_cost_per_session_default(self) -> float | None:
        return env_float("DSAGENT_MAX_COST_PER_SESSION")

    max_cost_per_user_per_day = Float(
        None,
        allow_none=True,
        help="""Most USD each user (the server's ``current_user``) may spend per UTC day, over all sessions;
        kept in a ledger under ``workspace_dir`` so restarts do not reset it. Tasks end when it is reached
        and new ones are refused (429) until the next day. None (the default) means no limit.
        Falls back to DSAGENT_MAX_COST_PER_USER_PER_DAY.""",
    ).tag(config=True)

    @default("max_cost_per_user_per_day")
    def _max_cost_per_user_per_day_default(self) -> float | None:
        return env_float("DSAGENT_MAX_COST_PER_USER_PER_DAY")

    @validate("max_tokens_per_task", "max_cost_per_session", "max_cost_per_user_per_day")
    def _validate_limit(self, proposal: dict) -> float | None:
        return _positive_or_none(proposal)
