"""Human in the loop: where a run pauses, and the awaited decision that resumes it.

A pause is one future per session. Any connection (REST, SSE client, WebSocket, another terminal)
resolves it; nobody answering within the timeout counts as a reject.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..models import HITLAction, HITLMode, HITLStatusResponse, PendingPlan, PlanResponse

PauseKind = Literal["plan", "code", "error", "answer"]

PAUSES: dict[HITLMode, frozenset[str]] = {
    HITLMode.none: frozenset(),
    HITLMode.plan_only: frozenset({"plan"}),
    HITLMode.on_error: frozenset({"error"}),
    HITLMode.plan_and_answer: frozenset({"plan", "answer"}),
    HITLMode.full: frozenset({"plan", "code", "error", "answer"}),
}

# which actions make sense at which pause; the rest are refused with a clear message
ALLOWED: dict[str, frozenset[HITLAction]] = {
    "plan": frozenset({HITLAction.approve, HITLAction.reject, HITLAction.modify, HITLAction.skip, HITLAction.feedback}),
    "code": frozenset({HITLAction.approve, HITLAction.reject, HITLAction.modify, HITLAction.skip, HITLAction.feedback}),
    "error": frozenset(HITLAction),
    "answer": frozenset({HITLAction.approve, HITLAction.reject, HITLAction.feedback}),
}


# what a client shows the human at each kind of pause
PROMPTS: dict[str, str] = {
    "plan": "Approve this plan?",
    "code": "Run this code?",
    "error": "This cell failed: retry, skip or give guidance?",
    "answer": "Accept this answer?",
}
# what each kind of pause was about, in a sentence about it
SUBJECTS: dict[str, str] = {"plan": "the plan", "code": "the code", "error": "the failed code", "answer": "the answer"}
_DID = {
    "approve": "approved",
    "reject": "declined",
    "modify": "changed",
    "retry": "asked to retry",
    "skip": "skipped",
    "feedback": "sent feedback on",
}


def describe_decision(record: dict[str, object]) -> str:
    """A recorded decision (a ``hitl`` entry of a round) as one sentence, for the model's history of
    earlier tasks and for the notebook."""
    subject = SUBJECTS.get(str(record.get("request_type")), "the request")
    message = record.get("message")
    if record.get("timed_out"):
        return f"Nobody answered the request about {subject}. {message}."
    action = str(record.get("action"))
    sentence = f"The user {_DID.get(action, action)} {subject}"
    if action == "reject":
        sentence += " and stopped the task"
    return f"{sentence}, saying: {message}" if message else f"{sentence}."


class HITLError(ValueError):
    """A decision that cannot apply: nothing pending (409) or an action that does not fit (400)."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass
class Decision:
    action: HITLAction
    message: str | None = None
    modified_plan: str | None = None
    modified_code: str | None = None
    by: str = "unknown"
    timed_out: bool = False

    def record(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "message": self.message,
            "modified_plan": self.modified_plan,
            "modified_code": self.modified_code,
            "by": self.by,
            "timed_out": self.timed_out,
        }


@dataclass
class Pause:
    kind: PauseKind
    plan: PlanResponse | None = None
    code: str | None = None
    error: str | None = None
    answer: str | None = None
    cell: dict[str, object] | None = None  # the notebook cell the code rewrites (``CellEdit.event()``)
    future: asyncio.Future[Decision] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def request(self, timeout: float) -> dict[str, object]:
        """The ``hitl_request`` event payload (the reference's, plus ``answer``, ``timeout`` and a
        ``message`` for clients to show as the prompt, and ``cell`` when the code rewrites a notebook cell)."""
        request: dict[str, object] = {
            "request_type": self.kind,
            "message": self.prompt,
            "plan": self.plan.model_dump(mode="json") if self.plan else None,
            "code": self.code,
            "error": self.error,
            "answer": self.answer,
            "timeout": timeout,
        }
        if self.cell is not None:
            request["cell"] = self.cell
        return request

    @property
    def prompt(self) -> str:
        if self.cell is not None and self.kind == "code":
            return f"Replace cell [{self.cell['index']}] with this code and run it?"
        return PROMPTS[self.kind]


class HITLGate:
    """The pause points of one session; the mode is read at each pause, so changes apply from the next."""

    def __init__(self, mode: Callable[[], HITLMode], timeout: float) -> None:
        self.mode = mode
        self.timeout = timeout
        self.pending: Pause | None = None

    def wants(self, kind: PauseKind) -> bool:
        return kind in PAUSES[self.mode()]

    def open(self, pause: Pause) -> Pause:
        """Make ``pause`` the pending request, visible to status and ready to be resolved."""
        self.pending = pause
        return pause

    async def wait(self, pause: Pause) -> Decision:
        """Hold the run until a decision arrives or the timeout rejects it."""
        try:
            return await asyncio.wait_for(asyncio.shield(pause.future), self.timeout)
        except asyncio.TimeoutError:
            return Decision(
                HITLAction.reject,
                message=f"No decision within {self.timeout:g}s: the task was stopped",
                by="timeout",
                timed_out=True,
            )
        finally:
            self.pending = None

    def resolve(self, decision: Decision) -> str:
        """Apply a human decision to the pending pause; returns the reference's confirmation text."""
        pause = self.pending
        if pause is None or pause.future.done():
            raise HITLError("Nothing is awaiting approval in this session", 409)
        action = decision.action
        if action not in ALLOWED[pause.kind]:
            raise HITLError(f"Action {action.value} does not apply to a {pause.kind} approval", 400)
        if action == HITLAction.modify and not (decision.modified_plan or decision.modified_code):
            raise HITLError("Modify action requires modified_plan or modified_code", 400)
        if action == HITLAction.modify and pause.kind == "plan" and not decision.modified_plan:
            raise HITLError("Modifying a plan requires modified_plan", 400)
        if action == HITLAction.modify and pause.kind != "plan" and not decision.modified_code:
            raise HITLError("Modifying code requires modified_code", 400)
        if action == HITLAction.feedback and not decision.message:
            raise HITLError("Feedback action requires a message", 400)
        pause.future.set_result(decision)
        return CONFIRMATIONS[action] if action != HITLAction.modify else (
            "Plan modification accepted" if pause.kind == "plan" else "Code modification accepted"
        )

    def status(self) -> HITLStatusResponse:
        mode = self.mode()
        pause = self.pending if self.pending is not None and not self.pending.future.done() else None
        return HITLStatusResponse(
            enabled=mode != HITLMode.none,
            mode=mode,
            awaiting_feedback=pause is not None,
            awaiting_type=pause.kind if pause else None,
            pending_plan=PendingPlan(raw_text=pause.plan.raw_text, steps=pause.plan.steps) if pause and pause.plan else None,
            pending_code=pause.code if pause else None,
            pending_error=pause.error if pause else None,
            pending_answer=pause.answer if pause else None,
            pending_message=pause.prompt if pause else None,
            pending_cell=pause.cell if pause else None,
        )


CONFIRMATIONS = {
    HITLAction.approve: "Approved",
    HITLAction.reject: "Rejected - task aborted",
    HITLAction.retry: "Retrying operation",
    HITLAction.skip: "Step skipped",
    HITLAction.feedback: "Feedback sent",
}
