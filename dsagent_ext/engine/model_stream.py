"""The agent's own model stream for OpenAI chat-completions and Anthropic Messages providers.

litellm's stream wrapper builds pydantic objects for every chunk and rebuilds the whole reply at
the end: about a millisecond of CPU per chunk, where reading the SSE with httpx costs tens of
microseconds. For the providers whose streams are plain SSE in one of these two formats (the
``WIRE`` table of ``model_requests``), litellm stays the control plane and this module is the data
plane:

- ``model_requests.prepare`` has litellm build the provider request (URL, headers, body), exactly
  as it would send it.
- ``stream`` sends that request through one shared ``httpx.AsyncClient`` and parses the SSE
  itself: text, reasoning text, finish reason, usage, errors inside a 200 stream.
- Failures become litellm's exceptions (``exception_type``), so retries and messages are the same
  as through ``litellm.acompletion``; usage is litellm's reading of the provider's numbers.

Every other provider (and everything, when the fast path is switched off) keeps ``acompletion``.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .model_requests import SDK_ROUTE, ModelRequest


@dataclass
class StreamResult:
    """What a stream reported besides its text: filled in as the stream is read."""

    reasoning: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


@dataclass
class Reported:
    """The usage a provider reported, as litellm reads it (the attributes ``LLMClient`` prices)."""

    prompt_tokens: int
    completion_tokens: int


_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def shared_client(litellm: Any) -> httpx.AsyncClient:
    """One client per event loop (the worker has one), kept alive between calls, built by litellm's
    own factory: the same transport, TLS settings, certificates and proxies as its calls."""
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None or client.is_closed:
        from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

        _CLIENTS[loop] = client = AsyncHTTPHandler().client
    return client


async def stream(
    litellm: Any, request: ModelRequest, timeout: float, result: StreamResult
) -> AsyncIterator[str]:
    """Yield the reply's text as it arrives; ``result`` gets the rest. Failures raise litellm's exceptions.

    Cancelling the consumer (or closing this generator) closes the HTTP stream at once.
    """
    try:
        async with shared_client(litellm).stream(
            "POST", request.url, headers=request.headers, json=request.body, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _status_error(litellm, request, response)
            parse = _openai_event if request.wire == "openai" else _anthropic_event
            sent: list[str] = []
            try:
                async for data in _sse_data(response):
                    text = parse(data, result, request.provider)
                    if text is None:
                        break
                    if text:
                        sent.append(text)
                        yield text
            except Exception as e:
                raise _midstream(litellm, request, e, response, "".join(sent)) from e
    except httpx.TimeoutException as e:
        raise litellm.Timeout(message=f"{type(e).__name__}: {e}", model=request.model, llm_provider=request.provider) from e
    except httpx.ConnectError as e:
        raise litellm.APIConnectionError(message=str(e), llm_provider=request.provider, model=request.model) from e


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data:`` payloads of an SSE stream (a multi-line payload joined), in order."""
    buffer = b""
    data: list[str] = []
    async for block in response.aiter_bytes():
        buffer += block
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" ").decode())
    if data:
        yield "\n".join(data)


# litellm's parser for the OpenAI-compatible providers it streams itself fails a stream that a server
# (vLLM) aborted; the SDK's stream and OpenRouter's parser end it with that finish reason
_ABORT_IS_AN_END = SDK_ROUTE | {"openrouter"}


class _StreamError(Exception):
    """An error object inside a 200 stream."""

    def __init__(self, status: Any, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _openai_event(data: str, result: StreamResult, provider: str) -> str | None:
    """The text of one chat-completions chunk ("" for none), or None at ``[DONE]``."""
    if data == "[DONE]":
        return None
    chunk = json.loads(data)
    error = chunk.get("error")
    if error:
        raise _chunk_error(error, provider, chunk)
    if chunk.get("usage"):
        result.usage = chunk["usage"]
    choices = chunk.get("choices") or ()
    if not choices:
        return ""
    choice = choices[0]
    if choice.get("finish_reason") == "abort" and provider not in _ABORT_IS_AN_END:
        raise _StreamError(500, "Upstream generation aborted (finish_reason=abort)")
    if choice.get("finish_reason"):
        result.finish_reason = choice["finish_reason"]
    delta = choice.get("delta") or {}
    content = delta.get("content")
    if isinstance(content, list):  # Mistral's reasoning models: text and thinking blocks
        return _content_blocks(content, result)
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning:
        result.reasoning.append(reasoning)
    return content or ""


def _content_blocks(blocks: list[dict[str, Any]], result: StreamResult) -> str:
    """The text of a delta made of content blocks; thinking blocks go to the reasoning, as litellm
    reads them (``MistralChatResponseIterator``)."""
    text = [block.get("text", "") for block in blocks if block.get("type") == "text"]
    thoughts = [
        "".join(part.get("text", "") for part in block.get("thinking", []) if part.get("type") == "text")
        for block in blocks
        if block.get("type") == "thinking"
    ]
    if any(thoughts):
        result.reasoning.append("\n".join(thought for thought in thoughts if thought))
    return "".join(text)


def _chunk_error(error: Any, provider: str, chunk: dict[str, Any]) -> _StreamError:
    """An error object inside a chunk, worded as litellm's parser for the provider words it."""
    if provider == "openrouter" and isinstance(error, dict):  # every detail in the message, the code as status
        details = (error.get("message"), error.get("metadata", {}), error.get("user_id", ""))
        message = "Message: {}, Metadata: {}, User ID: {}".format(*details)
        return _StreamError(error.get("code"), message)
    message = error.get("message") if isinstance(error, dict) else str(error)
    status = error.get("code") if isinstance(error, dict) else None
    return _StreamError(status if isinstance(status, int) and status >= 400 else 500, str(message or chunk))


def _anthropic_event(data: str, result: StreamResult, provider: str) -> str | None:
    """The text of one Messages event ("" for none), or None at ``message_stop``."""
    event = json.loads(data)
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            return delta.get("text") or ""
        if delta.get("type") == "thinking_delta" and delta.get("thinking"):
            result.reasoning.append(delta["thinking"])
    elif kind == "message_start":
        result.usage = dict((event.get("message") or {}).get("usage") or {})
    elif kind == "message_delta":
        usage = {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
        result.usage = {**(result.usage or {}), **usage}
        result.finish_reason = (event.get("delta") or {}).get("stop_reason") or result.finish_reason
    elif kind == "message_stop":
        return None
    elif kind == "error":
        error = event.get("error") or {}
        raise _StreamError(500, str(error.get("message") or event))
    return ""


def reported_usage(litellm: Any, request: ModelRequest, result: StreamResult) -> Reported | None:
    """The usage the stream reported, read as litellm reads it; None when it reported none."""
    if not result.usage:
        return None
    if request.wire == "anthropic":
        usage = litellm.AnthropicConfig().calculate_usage(usage_object=result.usage, reasoning_content=None)
        return Reported(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
    return Reported(int(result.usage.get("prompt_tokens") or 0), int(result.usage.get("completion_tokens") or 0))


def finish_reason(request: ModelRequest, result: StreamResult) -> str | None:
    """The finish reason in OpenAI's words, as litellm maps the provider's."""
    if result.finish_reason is None:
        return None
    from litellm.litellm_core_utils.core_helpers import map_finish_reason

    return str(map_finish_reason(result.finish_reason))


def _status_error(litellm: Any, request: ModelRequest, response: httpx.Response) -> Exception:
    """litellm's exception for an HTTP error answer, worded as the route litellm takes words it."""
    message: Any = response.text
    if request.provider in SDK_ROUTE:  # the openai SDK's wording: "Error code: N - the body's message"
        message = f"Error code: {response.status_code}"
        try:
            body: Any = json.loads(response.text.strip())
        except ValueError:
            body = None
        error = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
            message += f" - {error['message']}"
        from litellm.llms.openai.common_utils import OpenAIError

        sdk_error = OpenAIError(response.status_code, message, headers=response.headers, body=error)
        return _mapped_exception(litellm, request, sdk_error)
    elif request.wire == "anthropic":  # litellm's Anthropic handler passes the body's bytes
        message = response.content
    return _mapped(litellm, request, response.status_code, message, response.headers)


def _midstream(litellm: Any, request: ModelRequest, error: Exception, response: httpx.Response, sent: str) -> Exception:
    """A failure while the stream is read, as litellm's stream wrapper reports it: mapped, and wrapped
    in ``MidStreamFallbackError`` unless it is a client error (4xx but 429) or a read timeout."""
    import openai
    from litellm.exceptions import MidStreamFallbackError

    if isinstance(error, _StreamError) and request.provider in SDK_ROUTE:  # the openai SDK raises its own
        sdk_error = openai.APIError(error.message, request=response.request, body=None)
        mapped: Exception = _mapped_exception(litellm, request, sdk_error)
    elif isinstance(error, _StreamError):
        mapped = _mapped(litellm, request, error.status, error.message, None)
    else:
        mapped = _mapped_exception(litellm, request, error)
    status = getattr(mapped, "status_code", None)
    timeout = isinstance(error, httpx.TimeoutException)
    if not timeout and isinstance(status, int) and 400 <= status < 500 and status != 429:
        return mapped
    return MidStreamFallbackError(
        message=str(mapped), model=request.model.split("/", 1)[-1], llm_provider=request.provider,
        original_exception=mapped, generated_content=sent, is_pre_first_chunk=not sent,
    )  # fmt: skip


def _mapped_exception(litellm: Any, request: ModelRequest, error: Exception) -> Exception:
    try:
        return litellm.exception_type(
            model=request.model.split("/", 1)[-1], original_exception=error, custom_llm_provider=request.provider
        )
    except Exception as mapped:  # exception_type raises its answer
        return mapped


def _mapped(litellm: Any, request: ModelRequest, status: int, message: Any, headers: httpx.Headers | None) -> Exception:
    config = litellm.ProviderConfigManager.get_provider_chat_config(
        model=request.model.split("/", 1)[-1], provider=litellm.LlmProviders(request.provider)
    )
    error = config.get_error_class(error_message=message, status_code=status, headers=headers or {})
    return _mapped_exception(litellm, request, error)
