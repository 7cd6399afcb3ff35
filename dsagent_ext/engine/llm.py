"""The model side of the agent: a thin litellm adapter with streaming, retries and usage.

litellm takes seconds to import, so it is imported on the first call, never when the extension
loads, and in a worker thread so the server keeps answering meanwhile. Errors reach the caller as
``LLMError`` with a one-line message a user can act on.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..models import Usage
from .llm_errors import EmptyReply, LLMError, describe_failure, provider_detail, retryable

if TYPE_CHECKING:
    from . import model_requests

# A key for servers that ignore it (local OpenAI-compatible servers, ollama); the SDK insists on one.
PLACEHOLDER_KEY = "sk-no-key-needed"

# the environment variables holding each provider's key, in the order the catalogue lists providers
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY",),
}
_KEYLESS_PREFIXES = frozenset({"ollama", "ollama_chat"})


@dataclass
class Completion:
    """A reply that came all at once (a summary), and what it cost."""

    text: str
    usage: Usage


@dataclass
class LLMChunk:
    """A piece of a streamed reply: a text delta, or (last) the usage of the whole call."""

    text: str = ""
    usage: Usage | None = None


def resolve_model(model: str, api_base: str | None) -> str:
    """The litellm model name: behind an OpenAI-compatible ``api_base``, bare names go via ``openai/``."""
    model = model.strip()
    if api_base and "/" not in model:
        return f"openai/{model}"
    return model


def missing_api_key(model: str, api_base: str | None) -> str | None:
    """The environment variable this model needs but is unset, or None.

    Cheap and litellm-free: it runs when a session is created. Providers not listed here are
    left to litellm, whose error then says what is missing.
    """
    if api_base:
        return None
    name = model.strip().lower()
    prefix = name.split("/", 1)[0] if "/" in name else ""
    if prefix in _KEYLESS_PREFIXES:
        return None
    if not prefix:
        prefix = "anthropic" if name.startswith("claude") else "openai"
    names = PROVIDER_KEYS.get(prefix)
    if not names or any(os.environ.get(var, "").strip() for var in names):
        return None
    return names[0]


def surely_routed(model: str, api_base: str | None) -> bool:
    """litellm routes this name, as told without importing it: a bare name behind an ``api_base`` (sent
    as ``openai/<name>``), or the prefix of a provider litellm serves whose key we know. Any other name
    is for litellm itself to judge (``LLMClient.route``)."""
    name = resolve_model(model, api_base).lower()
    prefix = name.split("/", 1)[0] if "/" in name else ""
    return prefix in PROVIDER_KEYS or prefix in _KEYLESS_PREFIXES


def _litellm() -> Any:
    """Import litellm on first use, quietly and without fetching the remote price list."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


_IMPORTED: dict[str, Any] = {}  # "litellm" once loaded


async def load_litellm() -> Any:
    """litellm, configured as the product uses it, for a coroutine: the first import (seconds) runs in
    a thread, not on the event loop."""
    if "litellm" not in _IMPORTED:
        _IMPORTED["litellm"] = await asyncio.to_thread(_litellm)
    return _IMPORTED["litellm"]


class LLMClient:
    """Calls one model at a time through litellm with the session's settings."""

    def __init__(
        self,
        api_base: str | None,
        temperature: float,
        max_tokens: int,
        timeout: float = 120,
        retries: int = 3,
        backoff: float = 0.5,
        fast_path: bool = True,
    ) -> None:
        self.api_base = api_base or None
        self.fast_path = fast_path
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    @property
    def options(self) -> dict[str, Any]:
        """The settings as the constructor takes them: a model worker builds the same client from them."""
        return {
            "api_base": self.api_base,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
            "retries": self.retries,
            "backoff": self.backoff,
            "fast_path": self.fast_path,
        }

    async def stream(
        self, model: str, messages: list[dict], *, stop: list[str] | None = None
    ) -> AsyncIterator[LLMChunk]:
        """Yield text deltas as they arrive, then one chunk with the usage.

        Providers with a fast path (``model_stream``) are streamed by our own reader from the request
        litellm builds; the others through ``litellm.acompletion``. A failed attempt is retried only
        while it has yielded nothing, so the caller never sees text twice. Cancelling the consuming
        task closes the HTTP stream; a consumer that stops early without being cancelled should
        iterate under ``contextlib.aclosing``.
        """
        litellm = await load_litellm()
        kwargs = self._request(model, messages, stop)
        kwargs["stream_options"] = {"include_usage": True}  # else litellm tokenizes the history at the end
        request = await self._prepare(litellm, kwargs)
        for attempt in range(self.retries + 1):
            parts: list[str] = []
            reported: list[Any] = []
            try:
                pieces = (
                    self._litellm_stream(litellm, kwargs, reported)
                    if request is None
                    else self._own_stream(litellm, request, reported)
                )
                async with aclosing(pieces):
                    async for delta in pieces:
                        parts.append(delta)
                        yield LLMChunk(text=delta)
                if not parts:
                    raise EmptyReply("the reply has no text")
            except Exception as exc:  # litellm maps every provider failure onto its exceptions
                await self._backoff_or_raise(exc, model, attempt, streamed=bool(parts))
                continue
            yield LLMChunk(usage=self._usage(kwargs, reported[-1] if reported else None, "".join(parts)))
            return

    async def _prepare(self, litellm: Any, kwargs: dict[str, Any]) -> model_requests.ModelRequest | None:
        """The request our own reader sends, or None for ``acompletion`` (no fast path, or switched off).

        A request litellm refuses to build is left to ``acompletion``, which fails the same way.
        """
        if not self.fast_path:
            return None
        from . import model_requests

        try:
            return await model_requests.prepare(litellm, kwargs)
        except Exception:
            return None

    async def _own_stream(
        self, litellm: Any, request: model_requests.ModelRequest, reported: list[Any]
    ) -> AsyncIterator[str]:
        from . import model_stream  # httpx, on the first model call only

        result = model_stream.StreamResult()
        async for text in model_stream.stream(litellm, request, self.timeout, result):
            yield text
        usage = model_stream.reported_usage(litellm, request, result)
        if usage is not None:
            reported.append(usage)

    @staticmethod
    async def _litellm_stream(litellm: Any, kwargs: dict[str, Any], reported: list[Any]) -> AsyncIterator[str]:
        response = await litellm.acompletion(**kwargs, stream=True)
        try:
            async for chunk in response:
                usage = getattr(chunk, "usage", None)
                if usage:
                    reported.append(usage)
                delta = _delta_text(chunk)
                if delta:
                    yield delta
        finally:
            await response.aclose()

    async def complete(self, model: str, messages: list[dict]) -> Completion:
        """One non-streamed reply (summaries) and its usage, with the same retries."""
        litellm = await load_litellm()
        kwargs = self._request(model, messages, None)
        attempt = 0
        while True:
            try:
                response = await litellm.acompletion(**kwargs)
                text = response.choices[0].message.content or ""
                return Completion(text, self._usage(kwargs, getattr(response, "usage", None), text))
            except Exception as exc:
                await self._backoff_or_raise(exc, model, attempt, streamed=False)
                attempt += 1

    async def _backoff_or_raise(self, exc: Exception, model: str, attempt: int, *, streamed: bool) -> None:
        """Wait before the next attempt, or raise the final ``LLMError``.

        Nothing is retried once text has streamed: the caller already has it.
        """
        if streamed or attempt >= self.retries or not retryable(exc):
            raise LLMError(describe_failure(exc, model, attempt, streamed, self.timeout)) from exc
        await asyncio.sleep(self.backoff * 2**attempt)

    async def accepts_images(self, model: str) -> bool:
        """Whether litellm knows this model accepts image parts (``supports_vision``); False when it cannot tell."""
        litellm = await load_litellm()
        try:
            return bool(litellm.supports_vision(model=resolve_model(model, self.api_base)))
        except Exception:
            return False

    async def route(self, model: str) -> str:
        """The provider litellm sends ``model`` to with these settings (no network call, no key needed);
        ``LLMError`` carrying litellm's reason when it can send it nowhere."""
        litellm = await load_litellm()
        try:
            _, provider, _, _ = litellm.get_llm_provider(resolve_model(model, self.api_base), api_base=self.api_base)
        except Exception as e:  # litellm says why in a BadRequestError
            raise LLMError(provider_detail(e)) from e
        return str(provider)

    async def count(self, model: str, messages: list[dict]) -> int:
        """``count_tokens`` for a coroutine: tokenizing a long history takes tens of milliseconds."""
        await load_litellm()
        return await asyncio.to_thread(self.count_tokens, model, messages)

    def count_tokens(self, model: str, messages: list[dict]) -> int:
        """Tokens these messages take for ``model``; a character estimate when litellm cannot tell."""
        try:
            return int(_litellm().token_counter(model=resolve_model(model, self.api_base), messages=messages))
        except Exception:
            return estimate_tokens(messages)

    @staticmethod
    def _count_reply(model: str, text: str) -> int:
        """Tokens of a reply's text, counted as litellm counts a stream that reported no usage."""
        try:
            return int(_litellm().token_counter(model=model, text=text, count_response_tokens=True))
        except Exception:
            return len(text) // 4

    def _request(self, model: str, messages: list[dict], stop: list[str] | None) -> dict[str, Any]:
        """The litellm arguments; fails at once, without a network call, when the key is missing."""
        missing = missing_api_key(model, self.api_base)
        if missing:
            raise LLMError(f"no API key for model {model}: set {missing} or pick another model")
        resolved = resolve_model(model, self.api_base)
        kwargs: dict[str, Any] = {
            "model": resolved,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
            "max_retries": 0,  # retries are ours, so text is never duplicated
            "drop_params": True,  # e.g. models that reject ``stop`` or ``temperature``
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if stop:
            kwargs["stop"] = stop
        if _needs_placeholder_key(resolved, self.api_base):
            kwargs["api_key"] = PLACEHOLDER_KEY
        return kwargs

    def _usage(self, kwargs: dict[str, Any], reported: Any, text: str) -> Usage:
        """Usage as the server reported it, else counted locally, with the cost when litellm knows it."""
        model = kwargs["model"]
        if reported is not None:
            prompt = int(getattr(reported, "prompt_tokens", 0) or 0)
            completion = int(getattr(reported, "completion_tokens", 0) or 0)
        else:
            prompt = self.count_tokens(model, kwargs["messages"])
            completion = self._count_reply(model, text)
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cost_usd=_cost(model, prompt, completion),
        )


def estimate_tokens(messages: list[dict]) -> int:
    """About four characters a token: for when the tokenizer cannot tell."""
    return sum(len(str(m.get("content") or "")) for m in messages) // 4


def _needs_placeholder_key(model: str, api_base: str | None) -> bool:
    prefix = model.split("/", 1)[0].lower() if "/" in model else ""
    if prefix in _KEYLESS_PREFIXES:
        return not os.environ.get("OLLAMA_API_KEY")
    return bool(api_base) and prefix == "openai" and not os.environ.get("OPENAI_API_KEY")


def _delta_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return getattr(delta, "content", None) or ""


# Models litellm has no price for: finding that out again cost about a millisecond per call.
_UNPRICED: set[str] = set()


def _cost(model: str, prompt: int, completion: int) -> float | None:
    if model in _UNPRICED:
        return None
    litellm = _litellm()
    try:
        response = litellm.ModelResponse(
            model=model,
            usage=litellm.Usage(
                prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
            ),
        )
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception:  # models litellm has no price for
        _UNPRICED.add(model)
        return None
