"""The litellm adapter, through real litellm against the scripted model server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from dsagent_ext.engine.llm import LLMChunk, LLMClient, LLMError, missing_api_key, resolve_model

from fake_llm import FakeLLM, FakeReply, _usage

KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHERAI_API_KEY",
)
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake(no_keys: None):
    with FakeLLM() as server:
        yield server


def client(fake: FakeLLM, **kwargs) -> LLMClient:
    options = {"temperature": 0.3, "max_tokens": 256, "backoff": 0.01, "timeout": 10, **kwargs}
    return LLMClient(fake.api_base, **options)


def collect(llm: LLMClient, model: str = "gpt-4o", **kwargs) -> list[LLMChunk]:
    async def main() -> list[LLMChunk]:
        return [chunk async for chunk in llm.stream(model, MESSAGES, **kwargs)]

    return asyncio.run(main())


def text_of(chunks: list[LLMChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


def failure(llm: LLMClient, model: str = "gpt-4o") -> tuple[str, list[LLMChunk]]:
    """Stream until the call fails; the error message and the chunks received before it."""
    received: list[LLMChunk] = []

    async def main() -> None:
        async for chunk in llm.stream(model, MESSAGES):
            received.append(chunk)

    with pytest.raises(LLMError) as info:
        asyncio.run(main())
    return str(info.value), received


def assert_one_line(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message and len(message) < 400


def test_stream_yields_deltas_in_order_then_usage(fake: FakeLLM) -> None:
    reply = "Loading the data first. <code>import pandas as pd"
    fake.script(FakeReply(text=reply, chunk_size=5))
    chunks = collect(client(fake))
    deltas = [chunk for chunk in chunks if chunk.text]
    assert len(deltas) == len(reply) // 5 + 1
    assert text_of(chunks) == reply
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].text == ""
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.cost_usd is not None and usage.cost_usd > 0  # gpt-4o has a price


def test_request_carries_settings_and_a_placeholder_key(fake: FakeLLM) -> None:
    collect(client(fake, temperature=0.1, max_tokens=99), stop=["</code>", "</answer>"])
    (body,) = fake.requests
    assert body["model"] == "gpt-4o"
    assert body["messages"] == MESSAGES
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.1 and body["max_tokens"] == 99
    assert body["stop"] == ["</code>", "</answer>"]


def test_unknown_model_has_no_cost(fake: FakeLLM) -> None:
    fake.script("hello")
    chunks = collect(client(fake), model="my-local-model")
    assert text_of(chunks) == "hello"
    assert chunks[-1].usage is not None and chunks[-1].usage.cost_usd is None
    assert fake.requests[0]["model"] == "my-local-model"


def test_stop_sequence_cuts_the_reply(fake: FakeLLM) -> None:
    fake.script("<code>print(1)</code>\nmore text <answer>x</answer>")
    chunks = collect(client(fake), stop=["</code>", "</answer>"])
    assert text_of(chunks) == "<code>print(1)"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_error_is_retried(fake: FakeLLM, status: int) -> None:
    fake.script(FakeReply(status=status), "recovered")
    assert text_of(collect(client(fake))) == "recovered"
    assert len(fake.requests) == 2


def test_permanent_500_raises_a_clear_error(fake: FakeLLM) -> None:
    fake.script(*[FakeReply(status=500)] * 4)
    message, received = failure(client(fake, retries=3))
    assert received == []
    assert len(fake.requests) == 4
    assert message.startswith("model server returned 500 after 3 retries")
    assert "scripted 500" in message
    assert_one_line(message)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "model gpt-4o rejected the request"),
        (401, "model server rejected the API key for gpt-4o"),
        (404, "model gpt-4o not found"),
    ],
)
def test_client_errors_fail_at_once(fake: FakeLLM, status: int, expected: str) -> None:
    fake.script(FakeReply(status=status))
    message, _ = failure(client(fake))
    assert len(fake.requests) == 1
    assert message.startswith(expected)
    assert_one_line(message)


def test_garbage_stream_raises(fake: FakeLLM) -> None:
    fake.script(FakeReply(garbage=True), FakeReply(garbage=True))
    message, received = failure(client(fake, retries=1))
    assert received == [] and len(fake.requests) == 2
    assert message.startswith("model server sent an invalid reply for gpt-4o after 1 retry")
    assert_one_line(message)


def test_unparsable_error_body_still_reports_the_status(fake: FakeLLM) -> None:
    fake.script(FakeReply(status=503, garbage=True))
    message, _ = failure(client(fake, retries=0))
    assert message.startswith("model server returned 503")
    assert_one_line(message)


def test_unreachable_server_is_retried_then_reported(no_keys: None) -> None:
    with FakeLLM() as gone:
        pass  # its port is now closed
    message, _ = failure(client(gone, retries=1))
    assert message.startswith("cannot reach the model server for gpt-4o after 1 retry")
    assert_one_line(message)


def test_cut_stream_is_not_retried_after_text(fake: FakeLLM) -> None:
    fake.script(FakeReply(text="x" * 40, chunk_size=4, cut_after=3))
    message, received = failure(client(fake))
    assert text_of(received) == "x" * 12
    assert len(fake.requests) == 1  # a retry would repeat text the caller already has
    assert message.startswith("the reply of gpt-4o broke off mid-stream")
    assert_one_line(message)


def test_timeout_before_first_chunk_is_retried(fake: FakeLLM) -> None:
    fake.script(FakeReply(text="late", delay=2), "on time")
    assert text_of(collect(client(fake, timeout=0.3))) == "on time"
    assert len(fake.requests) == 2


def test_permanent_timeout_raises(fake: FakeLLM) -> None:
    fake.script(*[FakeReply(text="late", delay=2)] * 2)
    message, _ = failure(client(fake, timeout=0.3, retries=1))
    assert message.startswith("model gpt-4o timed out after 1 retry")
    assert_one_line(message)


def test_cancelling_the_consumer_stops_the_stream(fake: FakeLLM) -> None:
    fake.script(FakeReply(text="y" * 50, chunk_size=1, chunk_delay=0.5))
    llm = client(fake)

    async def main() -> float:
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in llm.stream("gpt-4o", MESSAGES):
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - start

    assert asyncio.run(main()) < 0.5


def test_complete_returns_the_whole_reply(fake: FakeLLM) -> None:
    fake.script(FakeReply(status=502), "a short summary")
    reply = asyncio.run(client(fake).complete("gpt-4o", MESSAGES))
    assert reply.text == "a short summary"
    assert len(fake.requests) == 2 and not fake.requests[1].get("stream")
    reported = _usage(fake.requests[1], "a short summary")  # what the server reported, and its price
    assert reply.usage.model_dump(exclude={"cost_usd"}) == reported and reply.usage.cost_usd > 0


def test_missing_key_fails_before_any_request(no_keys: None) -> None:
    llm = LLMClient(None, temperature=0.3, max_tokens=100)
    expected = "^no API key for model gpt-4o: set OPENAI_API_KEY or pick another model$"
    with pytest.raises(LLMError, match=expected):
        collect(llm)
    with pytest.raises(LLMError, match="set ANTHROPIC_API_KEY"):
        asyncio.run(llm.complete("anthropic/claude-sonnet-4-20250514", MESSAGES))


def test_count_tokens() -> None:
    llm = LLMClient(None, temperature=0.3, max_tokens=100)
    assert llm.count_tokens("gpt-4o", MESSAGES) > 0
    long = [{"role": "user", "content": "word " * 1000}]
    assert llm.count_tokens("gpt-4o", long) > 500


@pytest.mark.parametrize(
    ("model", "api_base", "expected"),
    [
        ("gpt-4o", None, "gpt-4o"),
        ("gpt-4o", "http://proxy/v1", "openai/gpt-4o"),
        ("llama3", "http://localhost:8080/v1", "openai/llama3"),
        ("openai/llama3", "http://localhost:8080/v1", "openai/llama3"),
        ("anthropic/claude-sonnet-4-20250514", "http://proxy/v1", "anthropic/claude-sonnet-4-20250514"),
        ("ollama/llama3", None, "ollama/llama3"),
    ],
)
def test_resolve_model(model: str, api_base: str | None, expected: str) -> None:
    assert resolve_model(model, api_base) == expected


@pytest.mark.parametrize(
    ("model", "api_base", "expected"),
    [
        ("gpt-4o", None, "OPENAI_API_KEY"),
        ("o1-mini", None, "OPENAI_API_KEY"),
        ("o3", None, "OPENAI_API_KEY"),
        ("openai/gpt-4o", None, "OPENAI_API_KEY"),
        ("some-model", None, "OPENAI_API_KEY"),
        ("claude-3-5-sonnet-latest", None, "ANTHROPIC_API_KEY"),
        ("anthropic/claude-sonnet-4-20250514", None, "ANTHROPIC_API_KEY"),
        ("gemini/gemini-2.0-flash", None, "GEMINI_API_KEY"),
        ("groq/llama3-70b", None, "GROQ_API_KEY"),
        ("mistral/mistral-large", None, "MISTRAL_API_KEY"),
        ("deepseek/deepseek-chat", None, "DEEPSEEK_API_KEY"),
        ("openrouter/meta/llama-3", None, "OPENROUTER_API_KEY"),
        ("together_ai/meta/llama-3", None, "TOGETHERAI_API_KEY"),
        ("ollama/llama3", None, None),
        ("ollama_chat/llama3", None, None),
        ("gpt-4o", "http://proxy/v1", None),
        ("anthropic/claude-sonnet-4-20250514", "http://proxy/v1", None),
    ],
)
def test_missing_api_key(no_keys: None, model: str, api_base: str | None, expected: str | None) -> None:
    assert missing_api_key(model, api_base) == expected


def test_missing_api_key_sees_set_keys(no_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GOOGLE_API_KEY", "g-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "  ")
    assert missing_api_key("gpt-4o", None) is None
    assert missing_api_key("gemini/gemini-2.0-flash", None) is None
    assert missing_api_key("claude-3-5-haiku-latest", None) == "ANTHROPIC_API_KEY"


def test_importing_the_adapter_does_not_import_litellm() -> None:
    code = "import dsagent_ext.engine.llm, sys; assert 'litellm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
