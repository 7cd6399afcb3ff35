"""Human-in-the-loop pauses asked through MCP elicitation, and shown to agents as ``Approval``.

The pause belongs to the session's gate, so whoever answers first decides: the MCP client's human
(accept → approve, or modify when the code or plan was edited; decline → reject), the JupyterLab panel
or a REST client. A client that cancels the elicitation leaves the pause to them.
"""

from __future__ import annotations

from typing import Any

from mcp.server.fastmcp import Context
from pydantic import BaseModel, Field

from ..engine.hitl import ALLOWED, Decision, HITLError, HITLGate, Pause
from ..models import HITLAction
from .results import Approval


class CodeAnswer(BaseModel):
    modified_code: str = Field(default="", description="Edit the code here to run your version; leave empty to run it as shown.")


class PlanAnswer(BaseModel):
    modified_plan: str = Field(default="", description="Edit the plan here to follow your version; leave empty to keep it.")


class NoteAnswer(BaseModel):
    message: str = Field(default="", description="Optional words for the agent.")


def approval(pause: Pause) -> Approval:
    return Approval(
        type=pause.kind,
        message=str(pause.request(0)["message"]),
        plan=pause.plan.raw_text if pause.plan else None,
        code=pause.code,
        error=pause.error,
        answer=pause.answer,
        allowed_actions=sorted(a.value for a in ALLOWED[pause.kind]),
    )


def supports_elicitation(ctx: Context[Any, Any, Any]) -> bool:
    params = ctx.session.client_params
    return params is not None and params.capabilities.elicitation is not None


def question(pause: Pause) -> str:
    """The elicitation message: the prompt with what it is about."""
    text = str(pause.request(0)["message"])
    if pause.plan is not None:
        text += f"\n\nPlan:\n{pause.plan.raw_text}"
    if pause.code:
        text += f"\n\nCode:\n```python\n{pause.code}\n```"
    if pause.error:
        text += f"\n\nError:\n{pause.error}"
    if pause.answer:
        text += f"\n\nAnswer:\n{pause.answer}"
    return text


async def ask(ctx: Context[Any, Any, Any], gate: HITLGate, pause: Pause, by: str) -> str:
    """Ask the client's human about ``pause`` and apply the answer; returns what happened
    (``approve``, ``modify``, ``reject``, ``cancel``, or ``answered`` when someone else decided first)."""
    schema: type[BaseModel] = CodeAnswer if pause.kind in ("code", "error") else PlanAnswer if pause.kind == "plan" else NoteAnswer
    result = await ctx.elicit(question(pause), schema)
    client = _client_name(ctx)
    if result.action == "cancel":
        return "cancel"
    if result.action == "decline":
        decision = Decision(HITLAction.reject, message=f"Declined in {client}", by=by)
    else:
        data = result.data.model_dump()
        if data.get("modified_code", "").strip() and data["modified_code"].strip() != (pause.code or "").strip():
            decision = Decision(HITLAction.modify, modified_code=data["modified_code"], by=by)
        elif data.get("modified_plan", "").strip() and pause.plan is not None and data["modified_plan"].strip() != pause.plan.raw_text.strip():
            decision = Decision(HITLAction.modify, modified_plan=data["modified_plan"], by=by)
        else:
            decision = Decision(HITLAction.approve, message=data.get("message") or None, by=by)
    return resolve(gate, pause, decision)


def resolve(gate: HITLGate, pause: Pause, decision: Decision) -> str:
    """Decide ``pause`` through the gate, unless it was decided meanwhile (or replaced by another)."""
    if gate.pending is not pause or pause.future.done():
        return "answered"
    try:
        gate.resolve(decision)
    except HITLError:  # decided in the same instant elsewhere
        return "answered"
    return decision.action.value


def _client_name(ctx: Context[Any, Any, Any]) -> str:
    params = ctx.session.client_params
    return f"the MCP client {params.clientInfo.name}" if params is not None else "the MCP client"

