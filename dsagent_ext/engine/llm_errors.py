"""What a failed model call means: whether to try again, and one line a user can act on.

litellm wraps provider errors in layers of its own classes and text; these read the whole chain.
"""

from __future__ import annotations

import json
import re

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_LITELLM_NOISE = re.compile(r"^(?:litellm\.)?\w*(?:Error|Exception|Timeout)(?::|\s+-)\s*")


class LLMError(Exception):
    """A model call that failed for good; ``str()`` is a one-line message for the user."""


class EmptyReply(Exception):
    """The model finished its reply without any text (a filtered or truncated reply): worth a retry."""


def _classify(exc: BaseException) -> tuple[str, int | None]:
    """The kind of failure (timeout, invalid, empty, connection or status) and the HTTP status.

    litellm wraps transport failures in status errors (a refused connection becomes a 500), so
    the whole exception chain is searched for the real cause.
    """
    import openai

    chain = _chain(exc)
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    if status is not None and 400 <= status < 500 and status not in _RETRYABLE_STATUS:
        return "status", status  # the server answered and refused: whatever else is in the chain
    if any(isinstance(err, (openai.APITimeoutError, TimeoutError)) for err in chain):
        return "timeout", status
    if any(isinstance(err, json.JSONDecodeError) for err in chain):
        return "invalid", status
    if any(isinstance(err, EmptyReply) for err in chain):
        return "empty", status
    if any(isinstance(err, (openai.APIConnectionError, ConnectionError)) for err in chain):
        return "connection", status
    return "status", status


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 20 and all(current is not seen for seen in chain):
        chain.append(current)
        current = getattr(current, "original_exception", None) or current.__cause__ or current.__context__
    return chain


def retryable(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts and broken connections may pass on a second try."""
    kind, status = _classify(exc)
    return kind != "status" or (status is not None and (status in _RETRYABLE_STATUS or status >= 500))


def describe_failure(exc: BaseException, model: str, attempt: int, streaming: bool, timeout: float) -> str:
    """One line a user can act on, instead of litellm's layered exception text."""
    kind, status = _classify(exc)
    # For a broken transport the innermost error says what happened ("Connection error." does not).
    detail = provider_detail(_chain(exc)[-1] if streaming or kind == "connection" else exc)
    tries = f" after {attempt} {'retry' if attempt == 1 else 'retries'}" if attempt else ""
    if streaming:
        return f"the reply of {model} broke off mid-stream: {detail}"
    if kind == "timeout":
        return f"model {model} timed out{tries}: no reply within {timeout:g}s"
    if kind == "empty":
        return f"model {model} sent an empty reply{tries}"
    if kind == "invalid":
        return f"model server sent an invalid reply for {model}{tries}: {detail}"
    if kind == "connection":
        return f"cannot reach the model server for {model}{tries}: {detail}"
    if status in (401, 403):
        return f"model server rejected the API key for {model}: {detail}"
    if status == 404:
        return f"model {model} not found: {detail}"
    if status is None:
        return f"model call for {model} failed: {detail}"
    if status < 500 and status not in _RETRYABLE_STATUS:
        return f"model {model} rejected the request: {detail}"
    return f"model server returned {status}{tries}: {detail}"


def provider_detail(exc: BaseException) -> str:
    """The provider's own message: first line, litellm's class-name prefixes removed, capped."""
    text = str(getattr(exc, "message", None) or exc).split("Original exception:")[0]
    text = next((line.strip() for line in text.splitlines() if line.strip()), "")
    while (stripped := _LITELLM_NOISE.sub("", text, count=1)) != text:
        text = stripped
    text = text.strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
