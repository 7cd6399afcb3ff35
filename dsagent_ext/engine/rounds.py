"""The bookkeeping of one round of a task: what it has produced so far, what humans decided on the way,
the prompt it leads to, and the ``RoundResult`` it closes with.

The runner (``runner.py``) drives the loop and fills a ``Round`` as the model replies, pauses resolve
and the cell runs; whatever ends the round (an answer, the round limit, a cancel, a reject), it closes
from what the ``Round`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import ExecutionResult, PlanResponse, RoundResult, Usage
from .conversation import execution_feedback
from .hitl import Decision, PauseKind
from .protocol import ParsedReply

CONTINUE = "Continue with the next step of your plan, or give the <answer> if the task is complete."


@dataclass
class Round:
    """What one round has produced so far, to close it properly whatever interrupts it."""

    number: int
    content: str = ""
    reply: ParsedReply = field(default_factory=ParsedReply)
    code: str | None = None
    result: ExecutionResult | None = None
    executing: bool = False
    usage: Usage | None = None
    images_seen: int = 0  # images in the conversation this round's model call was given
    steer: str | None = None  # replaces the next prompt: a human redirected the task
    note: str | None = None  # put before the next prompt: what a human decided on the way
    decisions: list[dict[str, Any]] = field(default_factory=list)
    decision: Decision | None = None  # the latest, until the step it concerns applies it

    def add_note(self, text: str) -> None:
        self.note = f"{self.note}\n{text}" if self.note else text

    def take(self, kind: PauseKind) -> Decision | None:
        """The decision of the pause of this kind just taken, if any (consumed once)."""
        decision, self.decision = self.decision, None
        if decision is not None and self.decisions[-1]["request_type"] == kind:
            return decision
        return None

    def next_prompt(self, feedback_chars: int, images: str | None = None) -> str:
        """The user message that follows this round: a human's steer, the cell's outcome, or "go on";
        ``images``: the outcome's sentence about the cell's images, for a model that is shown them."""
        if self.steer:
            prompt = self.steer
        elif self.result is None:
            prompt = CONTINUE
        else:
            prompt = execution_feedback(self.result, feedback_chars, images)
        return f"{self.note}\n{prompt}" if self.note else prompt

    def close(self, plan: PlanResponse | None, *, last: bool, max_rounds: int) -> RoundResult:
        """The round's result; complete on an answer, a reply without code, or the last round allowed."""
        reply = self.reply
        # a steer, or words approved with a plan that came without code, must reach the model first
        revising = self.steer is not None or (self.note is not None and self.code is None)
        stop = None
        if reply.has_answer and not revising:
            stop = "answer"
        elif self.code is None and not revising:
            stop = "no_code"
        content = self.content
        if stop is None and last:
            stop = "max_rounds"
            content += f"\n\n[Max rounds ({max_rounds}) reached]"
        return RoundResult(
            round=self.number,
            content=content,
            code=self.code,
            execution_result=self.result,
            plan=plan,
            has_answer=reply.has_answer,
            answer=reply.answer,
            thinking=reply.thinking,
            is_complete=stop is not None,
            usage=self.usage,
            stop_reason=stop,
            hitl=self.decisions,
            images_seen=self.images_seen,
        )

    def stopped(self, plan: PlanResponse | None, reason: str, answer: str) -> dict[str, Any]:
        """The final round of a task ended from outside (cancel, reject)."""
        return RoundResult(
            round=self.number,
            content=self.content,
            code=self.code,
            execution_result=self.result,
            plan=plan,
            answer=answer,
            is_complete=True,
            usage=self.usage,
            stop_reason=reason,
            hitl=self.decisions,
            images_seen=self.images_seen,
        ).model_dump(mode="json")


def add_usage(total: Usage, usage: Usage) -> None:
    """Add one model call's usage to the task's."""
    total.prompt_tokens += usage.prompt_tokens
    total.completion_tokens += usage.completion_tokens
    total.total_tokens += usage.total_tokens
    if usage.cost_usd is not None:
        total.cost_usd = (total.cost_usd or 0.0) + usage.cost_usd
