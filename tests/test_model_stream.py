"""Parity of the fast model path (``engine/model_stream.py``) with litellm's own stream.

Both paths run against the scripted model server: the same recorded streams give the same text,
finish reason, reasoning, usage and cost; the same HTTP failures give the same exception classes,
retries and messages; and the request sent is byte for byte the request litellm sends. These tests
are what to run on every litellm upgrade (litellm is pinned exactly in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from dsagent_ext.engine import model_requests, model_stream
from dsagent_ext.engine.llm import LLMChunk, LLMClient, LLMError, load_litellm

from fake_llm import FakeLLM, FakeReply

STREAMS = Path(__file__).parent / "streams"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
STOP = ["</code>", "</answer>"]
# model names as a user picks them, one per fast-path family and route
AZURE = "azure/gpt-4o"  # a deployment named after its model, as the Azure portal proposes
TOGETHER, OPENROUTER, MISTRAL = (
    "together_ai/Qwen/Qwen2.5-7B-Instruct-Turbo", "openrouter/deepseek/deepseek-r1", "mistral/mistral-large-latest",
)
OPENAI_MODELS = [
    "gpt-4o", "hosted_vllm/my-local-model", "groq/llama-3.3-70b-versatile", "deepseek/deepseek-chat", "xai/grok-3",
    AZURE, TOGETHER, OPENROUTER, MISTRAL,
]
ANTHROPIC = "anthropic/claude-sonnet-4-20250514"
MODELS = [*OPENAI_MODELS, ANTHROPIC]
# what an HTTP client adds by itself (the openai SDK names itself, httpx and tornado differ in framing)
TRANSPORT = {"user-agent", "accept-encoding", "connection", "content-length", "host", "accept"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    for var in ("OPENAI_API_KEY", "HOSTED_VLLM_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "AZURE_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_API_KEY", "azure-key-test")
    monkeypatch.setenv("MISTRAL_API_KEY", "key-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    for var in ("GROQ_API_KEY", "DEEPSEEK_API_KEY", "XAI_API_KEY", "TOGETHERAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.setenv(var, "key-test")
    with FakeLLM() as server:
        yield server


def frames(name: str) -> list[str]:
    """A recorded stream, frame by frame."""
    return [frame + "\n\n" for frame in (STREAMS / name).read_text().split("\n\n") if frame.strip()]


def client(fake: FakeLLM, fast: bool, model: str = "gpt-4o", **kwargs: Any) -> LLMClient:
    options = {"temperature": 0.3, "max_tokens": 256, "backoff": 0.01, "timeout": 10, "fast_path": fast, **kwargs}
    on_resource = model.startswith(("anthropic/", "azure/"))  # a base URL without /v1 (Azure: the resource endpoint)
    return LLMClient(fake.base_url if on_resource else fake.api_base, **options)


async def outcome(llm: LLMClient, model: str) -> tuple[str, Any, str | None, BaseException | None]:
    """Text, usage, error message and the error's cause of one streamed call through ``LLMClient``."""
    chunks: list[LLMChunk] = []
    try:
        async for chunk in llm.stream(model, MESSAGES, stop=STOP):
            chunks.append(chunk)
    except LLMError as e:
        return "".join(c.text for c in chunks), None, str(e), e.__cause__
    return "".join(c.text for c in chunks), chunks[-1].usage, None, None


def both(fake: FakeLLM, model: str, *replies: FakeReply, **options: Any) -> tuple[Any, Any]:
    """The outcome through litellm's stream, then through the fast path, each answered by ``replies``."""
    fake.script(*replies, *replies)
    slow = asyncio.run(outcome(client(fake, False, model, **options), model))
    fast = asyncio.run(outcome(client(fake, True, model, **options), model))
    return slow, fast


def test_fast_path_is_taken_for_the_families_and_not_for_others(fake: FakeLLM) -> None:
    async def main() -> dict[str, Any]:
        litellm = await load_litellm()
        models = [*MODELS, "gemini/gemini-2.0-flash"]
        return {m: await (llm := client(fake, True, m))._prepare(litellm, llm._request(m, MESSAGES, None)) for m in models}

    prepared = asyncio.run(main())
    assert {m: r.wire for m, r in prepared.items() if r is not None} == {
        **{m: "openai" for m in OPENAI_MODELS}, ANTHROPIC: "anthropic"
    }
    assert asyncio.run(client(fake, False)._prepare(None, {})) is None  # switched off: litellm only


@pytest.mark.parametrize(
    ("env", "fast"),
    [
        ({}, True),
        ({"AZURE_API_VERSION": "2024-10-21"}, True),  # the version litellm picks goes in the query
        ({"AZURE_API_VERSION": "v1"}, False),  # /openai/v1 with a plain OpenAI client
        ({"AZURE_AD_TOKEN": "entra-token"}, False),  # a Bearer token instead of the key
        # a token provider (built with azure-identity; without it litellm fails before any request)
        ({"AZURE_USERNAME": "me", "AZURE_PASSWORD": "pw", "AZURE_CLIENT_ID": "app"}, False),
    ],
)
def test_azure_takes_the_fast_path_only_where_the_request_is_known(
    fake: FakeLLM, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fast: bool
) -> None:
    """litellm hands Azure requests to the ``AzureOpenAI`` client: the fast path builds what that client
    sends for a key on a resource endpoint, and leaves every other configuration to litellm."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def prepared() -> model_requests.ModelRequest | None:
        litellm = await load_litellm()
        llm = client(fake, True, AZURE)
        return await llm._prepare(litellm, llm._request(AZURE, MESSAGES, None))

    request = asyncio.run(prepared())
    assert (request is not None) is fast
    if fast:
        both(fake, AZURE, FakeReply(text="hello there"))
        slow, sent = fake.received
        assert (sent.path, sent.query, sent.body) == (slow.path, slow.query, slow.body)
        assert sent.headers["Api-Key"] == slow.headers["Api-Key"] == "azure-key-test"  # as the server spells it
        assert f"api-version={env.get('AZURE_API_VERSION', '')}" in slow.query


@pytest.mark.parametrize("model", MODELS)
def test_request_is_the_one_litellm_sends(fake: FakeLLM, model: str) -> None:
    both(fake, model, FakeReply(text="hello there"))
    slow, fast = fake.received
    assert (fast.path, fast.query) == (slow.path, slow.query)
    assert fast.body == slow.body
    assert slow.body["stream"] is True
    if model not in (ANTHROPIC, MISTRAL):  # Mistral takes no stream_options: it reports usage at the end anyway
        assert slow.body["stream_options"] == {"include_usage": True}

    def meaningful(headers: dict[str, str]) -> dict[str, str]:
        return {k.lower(): v for k, v in headers.items() if k.lower() not in TRANSPORT and not k.lower().startswith("x-stainless")}

    assert meaningful(fast.headers) == meaningful(slow.headers)
    assert {"authorization", "x-api-key", "api-key"} & set(meaningful(fast.headers))


@pytest.mark.parametrize(
    ("model", "stream"),
    [
        ("gpt-4o", "openai_usage.sse"),
        ("hosted_vllm/deepseek-reasoner", "openai_reasoning.sse"),
        ("deepseek-reasoner", "openai_reasoning.sse"),
        ("openai/my-local-model", "openai_no_usage.sse"),
        (AZURE, "azure.sse"),
        (TOGETHER, "openai_usage.sse"),
        (OPENROUTER, "openrouter_reasoning.sse"),
        (MISTRAL, "mistral.sse"),
        ("mistral/magistral-medium-latest", "mistral_thinking.sse"),
        (ANTHROPIC, "anthropic.sse"),
        ("anthropic/claude-3-7-sonnet-20250219", "anthropic_thinking.sse"),
    ],
)
def test_recorded_stream_gives_the_same_text_usage_and_cost(fake: FakeLLM, model: str, stream: str) -> None:
    slow, fast = both(fake, model, FakeReply(frames=frames(stream)))
    assert slow[2] is None and fast[2] is None
    assert fast[0] == slow[0] and fast[0]
    assert fast[1] == slow[1]  # prompt, completion and total tokens, and cost


@pytest.mark.parametrize(
    ("model", "stream"),
    [
        ("gpt-4o", "openai_usage.sse"),
        ("hosted_vllm/deepseek-reasoner", "openai_reasoning.sse"),
        (AZURE, "azure.sse"),
        (TOGETHER, "openai_usage.sse"),
        (OPENROUTER, "openrouter_reasoning.sse"),
        (MISTRAL, "mistral.sse"),
        ("mistral/magistral-medium-latest", "mistral_thinking.sse"),
        (ANTHROPIC, "anthropic.sse"),
        ("anthropic/claude-3-7-sonnet-20250219", "anthropic_thinking.sse"),
    ],
)
def test_recorded_stream_gives_the_same_finish_reason_and_reasoning(fake: FakeLLM, model: str, stream: str) -> None:
    """What ``LLMClient`` does not pass on, read straight from litellm's chunks and from our parser."""
    recorded = FakeReply(frames=frames(stream))
    fake.script(recorded, recorded)
    kwargs = client(fake, True, model)._request(model, MESSAGES, None)

    async def through_litellm() -> tuple[str, str | None, str]:
        litellm = await load_litellm()
        text, finish, reasoning = [], None, []
        async for chunk in await litellm.acompletion(**kwargs, stream=True, stream_options={"include_usage": True}):
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                reasoning.append(getattr(choice.delta, "reasoning_content", None) or "")
                finish = choice.finish_reason or finish
        return "".join(text), finish, "".join(reasoning)

    async def through_our_reader() -> tuple[str, str | None, str]:
        litellm = await load_litellm()
        request = await model_requests.prepare(litellm, {**kwargs, "stream_options": {"include_usage": True}})
        assert request is not None
        result = model_stream.StreamResult()
        text = [piece async for piece in model_stream.stream(litellm, request, 10, result)]
        return "".join(text), model_stream.finish_reason(request, result), "".join(result.reasoning)

    slow, fast = asyncio.run(through_litellm()), asyncio.run(through_our_reader())
    assert fast == slow
    assert fast[1] in {"stop", "length"}


def _reset_mid_stream() -> FakeReply:
    return FakeReply(text="x" * 40, chunk_size=4, cut_after=3, reset=True)


FAILURES: dict[str, list[FakeReply]] = {
    "401": [FakeReply(status=401)],
    "404": [FakeReply(status=404)],
    "429 with Retry-After, then ok": [FakeReply(status=429, headers={"Retry-After": "0"}), FakeReply(text="ok now")],
    "429 for good": [FakeReply(status=429, headers={"Retry-After": "1"})] * 3,
    "500 for good": [FakeReply(status=500)] * 3,
    "500 with a body that is not JSON": [FakeReply(status=500, garbage=True)] * 3,
    "reset mid-stream": [_reset_mid_stream()],
    "cut before any text, then ok": [FakeReply(text="never", cut_after=0), FakeReply(text="ok now")],
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", list(FAILURES))
def test_failures_give_the_same_errors_and_retries(fake: FakeLLM, model: str, case: str) -> None:
    slow, fast = both(fake, model, *FAILURES[case], retries=2)
    half = len(fake.requests) // 2
    assert fast[:3] == slow[:3]  # text before the failure, usage, the user's message
    assert type(fast[3]) is type(slow[3])  # the exception class retries and messages are decided on
    assert half == len(FAILURES[case]) or case.endswith("then ok")


@pytest.mark.parametrize(
    ("model", "stream"),
    [
        ("gpt-4o", "openai_error.sse"), ("hosted_vllm/m", "openai_error.sse"), (AZURE, "azure_error.sse"),
        (TOGETHER, "openai_error.sse"),
        (MISTRAL, "openai_error.sse"), (OPENROUTER, "openrouter_error.sse"), (ANTHROPIC, "anthropic_error.sse"),
        ("hosted_vllm/m", "openai_abort.sse"), (TOGETHER, "openai_abort.sse"), (MISTRAL, "openai_abort.sse"),
    ],  # fmt: skip
)
def test_error_inside_a_200_stream_gives_the_same_error(fake: FakeLLM, model: str, stream: str) -> None:
    recorded = FakeReply(frames=frames(stream))
    slow, fast = both(fake, model, recorded, recorded, recorded, retries=2)
    assert slow[2] is not None and fast[:3] == slow[:3]
    assert type(fast[3]) is type(slow[3])
    assert len(fake.requests) == 6  # retried alike: nothing had streamed


@pytest.mark.parametrize(("env", "expected"), [(None, True), ("1", True), ("0", False), ("false", False), ("off", False)])
def test_the_switch_falls_back_to_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: bool
) -> None:
    from dsagent_ext.settings.traits import DSAgentSettings

    if env is None:
        monkeypatch.delenv("DSAGENT_MODEL_FAST_PATH", raising=False)
    else:
        monkeypatch.setenv("DSAGENT_MODEL_FAST_PATH", env)
    assert DSAgentSettings().model_settings().fast_path is expected
    assert DSAgentSettings(model_fast_path=not expected).model_settings().fast_path is not expected


PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)  # one pixel


@pytest.mark.parametrize("model", ["gpt-4o", ANTHROPIC])
def test_a_request_with_a_figure_is_the_one_litellm_sends(fake: FakeLLM, model: str) -> None:
    """The agent shows vision models its figures: the image part goes out as litellm would send it."""
    figure = [{"type": "text", "text": "the plot"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    messages = [MESSAGES[0], {"role": "user", "content": figure}]
    fake.script("seen", "seen")
    for fast in (False, True):
        llm = client(fake, fast, model)
        asyncio.run(_drain(llm, model, messages))
    slow, fast_request = fake.received
    assert fast_request.path == slow.path and fast_request.body == slow.body
    assert PNG in json.dumps(slow.body)


async def _drain(llm: LLMClient, model: str, messages: list[dict]) -> None:
    async for _ in llm.stream(model, messages):
        pass
