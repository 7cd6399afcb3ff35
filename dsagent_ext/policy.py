"""The admin's policy: which models may be used and how little human oversight a session may have.

The policy is read from the ``DSAgent`` settings at each check, and enforced by the services (create,
update, every way of starting a task), so no client path can go around it: a user picks within it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from .models import HITLMode

if TYPE_CHECKING:
    from .app import DSAgent

# from least to most human oversight: ``min_hitl_mode`` refuses every mode before it
HITL_ORDER: tuple[HITLMode, ...] = (
    HITLMode.none,
    HITLMode.on_error,
    HITLMode.plan_only,
    HITLMode.plan_and_answer,
    HITLMode.full,
)


class PolicyViolation(ValueError):
    """A request the admin's policy forbids: 400, with a message naming the setting."""

    http_status = 400


class UnroutableModel(ValueError):
    """A model name litellm sends to no provider with the server's settings: 400, with litellm's reason."""

    http_status = 400


def matches(model: str, patterns: list[str]) -> bool:
    """``model`` is one of ``patterns``: exact names or fnmatch globs (``ollama/*``), case-sensitive
    like litellm's names."""
    model = model.strip()
    return any(fnmatchcase(model, pattern.strip()) for pattern in patterns)


class Policy:
    """The checks of the admin's policy, on the live settings."""

    def __init__(self, config: DSAgent) -> None:
        self.config = config

    @property
    def min_hitl_mode(self) -> HITLMode:
        return HITLMode(self.config.min_hitl_mode)

    def allows_model(self, model: str) -> bool:
        allowed, blocked = self.config.allowed_models, self.config.blocked_models
        return (not allowed or matches(model, allowed)) and not matches(model, blocked)

    def check_model(self, model: str) -> None:
        if matches(model, self.config.blocked_models):
            raise PolicyViolation(f"Model {model} is blocked by the server's policy (blocked_models)")
        allowed = self.config.allowed_models
        if allowed and not matches(model, allowed):
            raise PolicyViolation(
                f"Model {model} is not allowed by the server's policy (allowed_models: {', '.join(allowed)})"
            )

    def allows_hitl_mode(self, mode: HITLMode) -> bool:
        return HITL_ORDER.index(mode) >= HITL_ORDER.index(self.min_hitl_mode)

    def check_hitl_mode(self, mode: HITLMode) -> None:
        if not self.allows_hitl_mode(mode):
            minimum = self.min_hitl_mode.value
            stricter = ", ".join(m.value for m in HITL_ORDER if self.allows_hitl_mode(m))
            raise PolicyViolation(
                f"HITL mode {mode.value} is below the server's policy (min_hitl_mode: {minimum}); use one of: {stricter}"
            )

    @property
    def default_hitl_mode(self) -> HITLMode:
        """The configured default, raised to the minimum when it lies below it."""
        mode = HITLMode(self.config.default_hitl_mode)
        return mode if self.allows_hitl_mode(mode) else self.min_hitl_mode
