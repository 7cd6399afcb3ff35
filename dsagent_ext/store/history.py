"""``/messages`` and ``/turns``, derived from the event log alone.

Deriving (rather than keeping a second, summarised history) makes both views lossless and identical
before and after a restart: a turn is exactly the ``round_complete`` event that was streamed live.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import ConversationTurn, MessageResponse

# event name -> message role
_MESSAGE_EVENTS = {
    "user_message": "user",
    "llm_response": "assistant",
    "code_result": "execution",
    "summary": "system",
}


def derive_messages(events: Iterable[dict[str, Any]]) -> list[MessageResponse]:
    messages = []
    code = None
    for record in events:
        if record["event"] == "code_executing":
            code = record["data"].get("code")
        role = _MESSAGE_EVENTS.get(record["event"])
        if role is None:
            continue
        data = {**record["data"], "code": code} if role == "execution" else record["data"]
        messages.append(
            MessageResponse(
                id=f"msg_{record['seq']}",
                role=role,
                content=_message_content(role, data),
                timestamp=record["ts"],
                metadata=_message_metadata(role, data),
            )
        )
    return messages


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
    """One turn per ``round_complete``; the user message goes on the first round after it."""
    turns = []
    pending_user: str | None = None
    for record in events:
        if record["event"] == "user_message":
            pending_user = record["data"].get("message")
        elif record["event"] == "round_complete":
            turns.append(
                ConversationTurn(**record["data"], timestamp=record["ts"], user_message=pending_user)
            )
            pending_user = None
    return turns
