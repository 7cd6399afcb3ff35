"""What the model is told between rounds and across tasks: bounded, never the raw firehose."""

from __future__ import annotations

from typing import Any

from ..models import ExecutionResult


def cap_middle(text: str, limit: int) -> str:
    """Keep the head and the tail of a long text (where the data and the error usually are)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"


def execution_feedback(result: ExecutionResult, limit: int) -> str:
    """The user message that reports a cell's outcome to the model."""
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
        parts.append(f"It displayed {len(result.images)} image(s), which the user can see.")
    parts.append("Continue with the next step, or give the <answer> if the task is complete.")
    return "\n".join(parts)


def history_from_turns(turns: list[dict[str, Any]], limit: int) -> list[dict[str, str]]:
    """The model's view of earlier tasks, rebuilt from stored rounds (so it survives restarts)."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        if turn.get("user_message"):
            messages.append({"role": "user", "content": turn["user_message"]})
        messages.append({"role": "assistant", "content": turn.get("content") or ""})
        result = turn.get("execution_result")
        if result is not None:
            messages.append({"role": "user", "content": execution_feedback(ExecutionResult(**result), limit)})
    return messages
