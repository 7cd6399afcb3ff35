"""The admin's policy: which models may be used and how little human oversight a session may have.

The policy is its settings object (``PolicySettings``), read at each check and enforced by the services (create,
update, every way of starting a task), so no client path can go around it: a user picks within it.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from ..models import HITL_ORDER, HITLMode
from ..settings import PolicySettings


class PolicyViolation(ValueError):
    """A request the admin's policy forbids: 400, with a message naming the setting."""

    http_status = 400


class UnroutableModel(ValueError):
    """A model name litellm sends to no provider with the server's settings: 400, with litellm's reason."""

    http_status = 400


def matches(model: str, patterns: Iterable[str]) -> bool:
    """``model`` is one of ``patterns``: exact names or fnmatch globs (``ollama/*``), case-sensitive
    like litellm's names."""
    model = model.strip()
    return any(fnmatchcase(model, pattern.strip()) for pattern in patterns)


class Policy:
    """The checks of the admin's policy."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings

    @property
    def min_hitl_mode(self) -> HITLMode:
        return self.settings.min_hitl_mode

    def allows_model(self, model: str) -> bool:
        allowed, blocked = self.settings.allowed_models, self.settings.blocked_models
        return (not allowed or matches(model, allowed)) and not matches(model, blocked)

    def check_model(self, model: str) -> None:
        if matches(model, self.settings.blocked_models):
            raise PolicyViolation(f"Model {model} is blocked by the server's policy (blocked_models)")
        allowed = self.settings.allowed_models
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
        mode = self.settings.default_hitl_mode
        return mode if self.allows_hitl_mode(mode) else self.min_hitl_mode
