"""``/api/policy``: what the admin allows, and what the caller has spent against it."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import PolicyResponse, SpendingLimits
from ..policy import HITL_ORDER
from ..spending import Spending, session_spent
from ..store.ledger import today
from .base import DSAgentHandler


class PolicyHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The effective policy and limits, the caller's spending today (and a session's, if named)."""
        config = self.service.config
        policy = self.service.policy
        spending: Spending = self.settings["dsagent_spending"]
        session_id = self.get_query_argument("session_id", None)
        spent = spending.today(self.identity)
        daily = config.max_cost_per_user_per_day
        self.reply(
            PolicyResponse(
                allowed_models=config.allowed_models,
                blocked_models=config.blocked_models,
                min_hitl_mode=policy.min_hitl_mode,
                hitl_modes=[mode for mode in HITL_ORDER if policy.allows_hitl_mode(mode)],
                default_model=config.default_model,
                default_hitl_mode=policy.default_hitl_mode,
                limits=SpendingLimits(
                    max_tokens_per_task=config.max_tokens_per_task,
                    max_cost_per_session=config.max_cost_per_session,
                    max_cost_per_user_per_day=daily,
                ),
                user=self.identity,
                day=today(),
                spent_today=spent,
                remaining_today_usd=None if daily is None else max(0.0, daily - spent.cost_usd),
                session_spent=session_spent(self.session(session_id).events.read()) if session_id else None,
            )
        )
