"""``GET /api/models`` through a real server: the admin's list, providers whose keys are set in the
server's environment, an api_base whose model list works, hangs or fails; only allowed models."""

from __future__ import annotations

import asyncio

import pytest
from launch import free_port

from dsagent_ext.engine.llm import PROVIDER_KEYS

ADMIN = {
    "models": ["gpt-4o", "anthropic/claude-sonnet-4-5", "ollama/llama3", "gpt-4.1-nano"],
    "default_model": "gpt-4o",
    "blocked_models": ["*nano*"],
}


@pytest.fixture
def no_keys(monkeypatch):
    """The server's environment without any provider key."""
    for names in PROVIDER_KEYS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def dsagent_config(request, fake_llm):
    config = getattr(request, "param", ADMIN)
    if config.get("api_base") == "fake":
        config = {**config, "api_base": fake_llm.api_base}
    return config


async def models(client) -> dict:
    r = await client.call("GET", "/api/models")
    assert r.status_code == 200, r.text
    return r.json()


async def test_admin_list_and_provider_keys(client, no_keys):
    body = await models(client)
    assert body["warning"] is None and body["default_model"] == "gpt-4o"
    by_id = {m["id"]: m for m in body["models"]}
    assert list(by_id) == ["gpt-4o", "anthropic/claude-sonnet-4-5", "ollama/llama3"]  # the blocked one is left out
    gpt = by_id["gpt-4o"]
    assert gpt["default"] and gpt["source"] == "admin" and gpt["provider"] == "openai" and gpt["label"] == "gpt-4o"
    assert not gpt["available"] and gpt["missing_api_key"] == "OPENAI_API_KEY"
    assert gpt["context_window"] >= 128000 and gpt["input_usd_per_million"] > 0 and gpt["output_usd_per_million"] > 0
    claude = by_id["anthropic/claude-sonnet-4-5"]
    assert claude["provider"] == "anthropic" and claude["label"] == "claude-sonnet-4-5"
    assert claude["missing_api_key"] == "ANTHROPIC_API_KEY" and not claude["default"]
    assert by_id["ollama/llama3"]["available"] and by_id["ollama/llama3"]["provider"] == "ollama"
    # a key set in the server's environment: that provider's chat models join, the admin's first
    no_keys.setenv("OPENAI_API_KEY", "sk-test")
    listed = (await models(client))["models"]
    assert [m["id"] for m in listed[:3]] == ["gpt-4o", "anthropic/claude-sonnet-4-5", "ollama/llama3"]
    assert listed[0]["available"] and listed[0]["missing_api_key"] is None
    provided = [m for m in listed if m["source"] == "provider"]
    assert 3 <= len(provided) <= 12 and {m["provider"] for m in provided} == {"openai"}
    assert all(m["available"] and "nano" not in m["id"] for m in provided)
    assert not any(m["id"].startswith("ft:") or m["id"][-10:-6] == "-20" for m in provided)  # no snapshots
    assert listed[1]["missing_api_key"] == "ANTHROPIC_API_KEY"  # still without its key
    no_keys.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    providers = [m["provider"] for m in (await models(client))["models"] if m["source"] == "provider"]
    assert providers.index("anthropic") > providers.index("openai") and "gemini" not in providers


@pytest.mark.parametrize(
    "dsagent_config",
    [{"api_base": "fake", "default_model": "scripted", "allowed_models": ["scripted", "llama*", "openai/*"]}],
    indirect=True,
)
async def test_api_base_models(client, fake_llm, no_keys):
    fake_llm.models.append("mistral-large")  # not allowed
    body = await models(client)
    assert body["warning"] is None
    assert [m["id"] for m in body["models"]] == ["scripted", "llama3:8b", "openai/meta-llama/Llama-3.1-8B-Instruct"]
    assert all(m["available"] and m["missing_api_key"] is None for m in body["models"])
    assert [m["source"] for m in body["models"]] == ["admin", "api_base", "api_base"]
    assert body["models"][0]["default"] and body["models"][0]["provider"] == "api_base"
    assert body["models"][2]["label"] == "meta-llama/Llama-3.1-8B-Instruct"
    await models(client)
    assert fake_llm.model_requests == 1  # cached
    # a listed model works as a session's model
    sid = await client.session(model="llama3:8b")
    fake_llm.script("<answer>from llama")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
    assert r.status_code == 200 and fake_llm.requests[-1]["model"] == "llama3:8b"


@pytest.mark.parametrize(
    "dsagent_config, mode, reason",
    [
        ({"api_base": "fake", "default_model": "scripted"}, "hang", "no answer within 3s"),
        ({"api_base": "fake", "default_model": "scripted"}, "fail", "HTTP 500"),
        ({"api_base": f"http://127.0.0.1:{free_port()}/v1", "default_model": "scripted"}, "ok", "Connection refused"),
    ],
    indirect=["dsagent_config"],
)
async def test_api_base_that_does_not_answer(client, fake_llm, mode, reason):
    fake_llm.models_mode = mode
    body, same = await asyncio.gather(models(client), models(client))  # two pickers opening at once
    assert same == body
    assert reason in body["warning"] and "type a model name instead" in body["warning"]
    assert [m["id"] for m in body["models"]] == ["scripted"]
    # asked once for both, and again only after a while: the next pages open at once
    again = await models(client)
    assert again == body and fake_llm.model_requests == (1 if mode != "ok" else 0)
