"""``/messages`` and ``/turns``, derived from the event log alone.

Deriving (rather than keeping a second, summarised history) makes both views lossless and identical
before and after a restart: a turn is exactly the ``round_complete`` event that was streamed live.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import (
    RESTORE_ENDS,
    RESTORE_EVENT,
    ConversationTurn,
    ExecutionResult,
    MessageResponse,
    PlanResponse,
    RestoreProgress,
    RoundResult,
    Usage,
)

INTERRUPTED = "Task interrupted: the server stopped before it finished."

# event name -> message role
_MESSAGE_EVENTS = {
    "user_message": "user",
    "llm_response": "assistant",
    "code_result": "execution",
    "summary": "system",
}


def derive_messages(events: Iterable[dict[str, Any]]) -> list[MessageResponse]:
    return [_message(*source) for source in _message_sources(events)]


def messages_page(
    events: Iterable[dict[str, Any]], offset: int, limit: int, role: str | None = None
) -> tuple[list[MessageResponse], int]:
    """One page of ``derive_messages`` (of one role, if given) and the total: only the page is built,
    as validating every message of a long history cost more than the whole request should."""
    sources = [s for s in _message_sources(events) if role is None or s[0] == role]
    return [_message(*source) for source in sources[offset : offset + limit]], len(sources)


def _message_sources(events: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(role, record, data) of each message, in order; an execution's data carries the code that ran."""
    sources = []
    code = None
    for record in events:
        if record["event"] == "code_executing":
            code = record["data"].get("code")
        role = _MESSAGE_EVENTS.get(record["event"])
        if role is not None:
            sources.append((role, record, {**record["data"], "code": code} if role == "execution" else record["data"]))
    return sources


def _message(role: str, record: dict[str, Any], data: dict[str, Any]) -> MessageResponse:
    return MessageResponse(
        id=f"msg_{record['seq']}",
        role=role,
        content=_message_content(role, data),
        timestamp=record["ts"],
        metadata=_message_metadata(role, data),
    )


def _message_content(role: str, data: dict[str, Any]) -> str:
    if role == "execution":
        status = "succeeded" if data.get("success") else "failed"
        body = data.get("stdout", "") if data.get("success") else data.get("error") or data.get("stderr", "")
        return f"Code execution {status}.\n\n{body}".rstrip()
    return data.get("message") or data.get("content") or ""


def _message_metadata(role: str, data: dict[str, Any]) -> dict[str, Any]:
    if role == "execution":
        return {key: data.get(key) for key in ("code", "success", "stdout", "stderr", "error", "images")}
    return {key: value for key, value in data.items() if key not in {"message", "content"}}


def derive_turns(events: Iterable[dict[str, Any]]) -> list[ConversationTurn]:
    """One turn per ``round_complete`` (the user message goes on the first round after it), and one
    per kernel restore, where it ended."""
    return [_turn(*source) for source in _turn_sources(events)]


def turns_page(events: Iterable[dict[str, Any]], offset: int, limit: int) -> tuple[list[ConversationTurn], int]:
    """One page of ``derive_turns`` and the total, building only the page."""
    sources = _turn_sources(events)
    return [_turn(*source) for source in sources[offset : offset + limit]], len(sources)


def stored_turns(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rounds as logged (already JSON), for the model's history: restores are not conversation."""
    return [{**record["data"], "user_message": user} for record, user in _turn_sources(events, restores=False)]


def _turn_sources(events: Iterable[dict[str, Any]], restores: bool = True) -> list[tuple[dict[str, Any], str | None]]:
    sources = []
    pending_user: str | None = None
    for record in events:
        if record["event"] == "user_message":
            pending_user = record["data"].get("message")
        elif record["event"] == "round_complete":
            sources.append((record, pending_user))
            pending_user = None
        elif restores and record["event"] == RESTORE_EVENT and record["data"].get("status") in RESTORE_ENDS:
            sources.append((record, None))
    return sources


def _turn(record: dict[str, Any], user_message: str | None) -> ConversationTurn:
    if record["event"] == RESTORE_EVENT:
        restore = RestoreProgress(**record["data"])
        return ConversationTurn(
            round=0, content=restore_summary(restore), is_complete=True, timestamp=record["ts"], restore=restore
        )
    return ConversationTurn(**record["data"], timestamp=record["ts"], user_message=user_message)


def restore_summary(restore: RestoreProgress) -> str:
    """One line on how a kernel restore ended."""
    skipped = f"; {len(restore.skipped)} cell(s) not re-run" if restore.skipped else ""
    if restore.status == "completed":
        return f"Kernel restored: {restore.replayed} of {restore.total} cell(s) replayed{skipped}."
    if restore.status == "failed":
        where = f" at cell {restore.cell} of {restore.total}" if restore.cell else ""
        return f"Kernel restore failed{where}: {restore.error or 'unknown error'}"
    return f"Kernel restore cancelled after {restore.replayed} of {restore.total} cell(s){skipped}."


def unfinished_task(events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The events of the last task when it never reached ``done`` (the server was killed), else None."""
    start = next((i for i in range(len(events) - 1, -1, -1) if events[i]["event"] == "user_message"), None)
    if start is None or any(r["event"] == "done" for r in events[start:]):
        return None
    return events[start:]


def closing_round(task: list[dict[str, Any]]) -> tuple[RoundResult, Usage]:
    """The round an interrupted task ends with, from what its log holds (as a cancel would close it),
    and the usage of the whole task."""
    rounds = [r for r in task if r["event"] == "round_complete"]
    partial = task[task.index(rounds[-1]) + 1 :] if rounds else task
    last = {r["event"]: r["data"] for r in partial}
    plans = [r["data"] for r in task if r["event"] == "plan"]
    usage = Usage()
    for data in (r["data"].get("usage") for r in rounds):
        if data:
            usage.prompt_tokens += data.get("prompt_tokens", 0)
            usage.completion_tokens += data.get("completion_tokens", 0)
            usage.total_tokens += data.get("total_tokens", 0)
    result = last.get("code_result")
    closing = RoundResult(
        round=len(rounds) + 1,
        content=last.get("llm_response", {}).get("content", ""),
        code=last.get("code_executing", {}).get("code"),
        execution_result=ExecutionResult(**result) if result else None,
        plan=PlanResponse(**plans[-1]) if plans else None,
        answer=INTERRUPTED,
        is_complete=True,
        stop_reason="interrupted",
    )
    return closing, usage
