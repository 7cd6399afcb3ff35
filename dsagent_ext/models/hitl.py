"""Human-in-the-loop status and decisions."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import ConfigDict, Field

from .base import Body, HITLMode, Model
from .execution import PlanStep


class HITLAction(str, Enum):
    approve = "approve"
    reject = "reject"
    modify = "modify"
    retry = "retry"
    skip = "skip"
    feedback = "feedback"


class PendingPlan(Model):
    raw_text: str
    steps: list[PlanStep]


class HITLStatusResponse(Model):
    enabled: bool
    mode: HITLMode
    awaiting_feedback: bool
    awaiting_type: Literal["plan", "code", "error", "answer"] | None = None
    pending_plan: PendingPlan | None = None
    pending_code: str | None = None
    pending_error: str | None = None
    pending_answer: str | None = None
    pending_message: str | None = None  # the prompt the pause's ``hitl_request`` carries
    pending_cell: dict[str, Any] | None = None  # the notebook cell the pending code rewrites


class HITLActionRequest(Body):
    action: HITLAction
    message: str | None = Field(default=None, max_length=100_000)
    modified_plan: str | None = Field(default=None, max_length=100_000)
    modified_code: str | None = Field(default=None, max_length=1_000_000)


class HITLWords(Model):
    """Optional body of approve and reject: the words that go with the decision, under any of the names
    clients send them (``feedback`` on approve and ``reason`` on reject by DSAgent's VS Code client).

    Unlike other bodies, unknown fields are ignored: clients add their own, and refusing them left a
    task paused until the timeout behind a client that never looks at the status.
    """

    model_config = ConfigDict(extra="ignore")

    message: str | None = Field(default=None, max_length=100_000)
    feedback: str | None = Field(default=None, max_length=100_000)
    reason: str | None = Field(default=None, max_length=100_000)

    @property
    def text(self) -> str | None:
        """The first of ``message``, ``feedback``, ``reason`` given and not blank."""
        return next((t for t in (self.message, self.feedback, self.reason) if t and t.strip()), None)
