"""Spending limits: tokens per task, cost per session, cost per user per day.

Spending is counted from the usage each round already records (``round_complete``): a session's from
its event log, a user's from the ledger, to which every round adds as it is logged. Limits are checked
before a task starts (429 while one is reached) and after each round of a running task, which then
ends with an ``error`` naming the limit and ``done``: a round in progress always finishes, so a task
can pass a limit by at most one model call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..models import Spent, Usage
from ..settings import SpendingSettings
from ..store.ledger import Ledger
from ..store.records import write_atomic


class LimitReached(RuntimeError):
    """A spending limit stops the task: 429 until the limit allows again."""

    http_status = 429

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(event["error"])
        self.event = event


def usd(amount: float) -> str:
    """Dollars as people read them: cents, or two significant digits below a cent (never 1e-05)."""
    if amount == 0 or amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${Decimal(f'{amount:.2g}'):f}"


def session_spent(events: Iterable[dict[str, Any]]) -> Spent:
    """What a session has spent, from the usage of every round in its log."""
    spent = Spent()
    for record in events:
        if record["event"] == "round_complete" and record["data"].get("usage"):
            spent = spent.plus(Usage(**record["data"]["usage"]))
    return spent


class Spending:
    """Checks the limits and keeps the per-user ledger."""

    def __init__(self, settings: SpendingSettings, ledger: Ledger, log: logging.Logger) -> None:
        self.settings = settings
        self.ledger = ledger
        self.log = log
        self._writing = asyncio.Lock()  # ledger writes in order: the newest figures land last

    def today(self, user: str) -> Spent:
        return self.ledger.spent(user)

    def over(self, user: str, session: Spent, task: Usage | None = None) -> dict[str, Any] | None:
        """The ``error`` event of the first limit reached, or None. ``session`` is what the session had
        spent before the task; ``task`` what the task has used so far."""
        limits = self.settings
        task = task or Usage()
        if limits.max_tokens_per_task is not None and task.total_tokens >= limits.max_tokens_per_task:
            return _event(
                "max_tokens_per_task",
                task.total_tokens,
                limits.max_tokens_per_task,
                f"Token limit reached: this task used {task.total_tokens:,} tokens of the "
                f"{limits.max_tokens_per_task:,} allowed per task (max_tokens_per_task)",
            )
        cost = session.plus(task).cost_usd
        if limits.max_cost_per_session is not None and cost >= limits.max_cost_per_session:
            return _event(
                "max_cost_per_session",
                cost,
                limits.max_cost_per_session,
                f"Spending limit reached: this session has cost {usd(cost)} of the "
                f"{usd(limits.max_cost_per_session)} allowed per session (max_cost_per_session)",
            )
        daily = self.today(user).cost_usd
        if limits.max_cost_per_user_per_day is not None and daily >= limits.max_cost_per_user_per_day:
            return _event(
                "max_cost_per_user_per_day",
                daily,
                limits.max_cost_per_user_per_day,
                f"Daily spending limit reached: {user} has spent {usd(daily)} of the "
                f"{usd(limits.max_cost_per_user_per_day)} allowed per user per day "
                f"(max_cost_per_user_per_day); it resets at 00:00 UTC",
            )
        return None

    def check_start(self, user: str, session: Spent) -> None:
        """Refuse a new task while a session or daily limit is reached."""
        event = self.over(user, session)
        if event is not None:
            raise LimitReached(event)

    async def record(self, user: str, usage: Usage) -> None:
        """Add one round's usage to the user's day and write the ledger (off the event loop)."""
        self.ledger.add(user, usage)
        text = self.ledger.dump()
        async with self._writing:
            try:
                await asyncio.to_thread(write_atomic, self.ledger.path, text)
            except OSError as e:  # the figures stay counted in memory
                self.log.warning("DSAgent: could not write the spending ledger: %s", e)


def _event(limit: str, spent: float, maximum: float, message: str) -> dict[str, Any]:
    # rounded: the same spending summed in another order (log vs running task) gives the same figures
    return {"error": message, "limit": limit, "spent": round(spent, 9), "maximum": maximum}
