"""The admin's policy, spending against it, and the model catalogue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import HITLMode, Model
from .execution import Usage


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
