"""``/api/policy``: what the admin allows, and what the caller has spent against it."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..governance.spending import Spending, session_spent
from ..models import HITL_ORDER, PolicyResponse, SpendingLimits
from ..store.ledger import today
from .base import DSAgentHandler


class PolicyHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The effective policy and limits, the caller's spending today (and a session's, if named)."""
        policy = self.service.policy
        spending: Spending = self.settings["dsagent_spending"]
        limits = spending.settings
        session_id = self.get_query_argument("session_id", None)
        spent = spending.today(self.identity)
        daily = limits.max_cost_per_user_per_day
        self.reply(
            PolicyResponse(
                allowed_models=list(policy.settings.allowed_models),
                blocked_models=list(policy.settings.blocked_models),
                min_hitl_mode=policy.min_hitl_mode,
                hitl_modes=[mode for mode in HITL_ORDER if policy.allows_hitl_mode(mode)],
                default_model=self.service.settings.default_model,
                default_hitl_mode=policy.default_hitl_mode,
                limits=SpendingLimits(
                    max_tokens_per_task=limits.max_tokens_per_task,
                    max_cost_per_session=limits.max_cost_per_session,
                    max_cost_per_user_per_day=daily,
                ),
                user=self.identity,
                day=today(),
                spent_today=spent,
                remaining_today_usd=None if daily is None else max(0.0, daily - spent.cost_usd),
                session_spent=session_spent(self.session(session_id).events.read()) if session_id else None,
            )
        )
