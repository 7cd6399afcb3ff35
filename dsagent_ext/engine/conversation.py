"""What the model is told between rounds and across tasks: bounded, never the raw firehose."""

from __future__ import annotations

from typing import Any

from ..models import ExecutionResult
from .hitl import describe_decision


def cap_middle(text: str, limit: int) -> str:
    """Keep the head and the tail of a long text (where the data and the error usually are)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"


def execution_feedback(result: ExecutionResult, limit: int, images: str | None = None) -> str:
    """The user message that reports a cell's outcome to the model; ``images`` replaces the sentence about
    the cell's images (for a model that is shown them)."""
    if not result.success:
        return (
            "The code failed:\n"
            + cap_middle((result.error or result.stderr or "unknown error").strip(), limit)
            + "\n\nExplain the cause in one sentence and send corrected code."
        )
    parts = ["The code ran successfully."]
    output = "\n".join(p for p in (result.stdout.rstrip(), result.stderr.rstrip()) if p)
    parts.append("Output:\n" + cap_middle(output, limit) if output else "It printed nothing.")
    if result.images:
        parts.append(images or f"It displayed {len(result.images)} image(s), which the user can see.")
    parts.append("Continue with the next step, or give the <answer> if the task is complete.")
    return "\n".join(parts)


def history_from_turns(turns: list[dict[str, Any]], limit: int, summary: str | None = None) -> list[dict[str, str]]:
    """The model's view of earlier tasks, rebuilt from stored rounds (so it survives restarts).

    ``summary`` stands for the turns before ``turns`` once the conversation has been summarised.
    """
    messages: list[dict[str, str]] = []
    if summary:
        messages.append({"role": "system", "content": f"Summary of the earlier conversation:\n{summary}"})
    for turn in turns:
        if turn.get("user_message"):
            messages.append({"role": "user", "content": turn["user_message"]})
        messages.append({"role": "assistant", "content": turn.get("content") or ""})
        # what followed the reply, in order: decisions before the code ran, its result, decisions on a failure
        decisions = turn.get("hitl") or []
        parts = [_review(d, limit) for d in decisions if d.get("request_type") != "error"]
        result = turn.get("execution_result")
        if result is not None:
            parts.append(execution_feedback(ExecutionResult(**result), limit))
        parts += [_review(d, limit) for d in decisions if d.get("request_type") == "error"]
        if parts:
            messages.append({"role": "user", "content": "\n".join(parts)})
    return messages


def _review(decision: dict[str, Any], limit: int) -> str:
    """A human decision of an earlier round, so the model knows what was approved or declined, and why."""
    return "Human review: " + cap_middle(describe_decision(decision), limit)


SUMMARY_INSTRUCTIONS = """\
Summarise this data-analysis conversation so the work can continue without it. Keep: the user's \
goals, the data sources and file names, the variables and dataframes created in the kernel (with \
their columns), the results and numbers found, files saved under artifacts/, and what remains to \
do. Be factual and concise; use markdown bullet points."""


def summary_request(history: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """The messages asking the model to summarise ``history`` (each message capped)."""
    transcript = "\n\n".join(f"[{m['role']}] {cap_middle(m['content'], limit)}" for m in history)
    return [{"role": "system", "content": SUMMARY_INSTRUCTIONS}, {"role": "user", "content": transcript}]
