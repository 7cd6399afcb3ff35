"""The admin's policy through a real server: models and HITL minimum, allowed and refused, on create,
PUT, sync chat, SSE and the WebSocket."""

from __future__ import annotations

from dataclasses import replace

import pytest
from client import refused_everywhere, ws_reply

from dsagent_ext.models import HITLMode

POLICY = {
    "allowed_models": ["scripted", "ollama/*"],
    "blocked_models": ["ollama/bad*"],
    "min_hitl_mode": "plan_only",
    "default_hitl_mode": "none",
}


@pytest.fixture
def dsagent_config(agent_config):
    return {**agent_config, **POLICY}


async def test_models_allowed_and_refused(client, policy, jp_ws_fetch, fake_llm):
    r = await client.call("POST", "/api/sessions", json={"model": "gpt-4o"})
    assert r.status_code == 400
    assert r.json()["detail"] == "Model gpt-4o is not allowed by the server's policy (allowed_models: scripted, ollama/*)"
    r = await client.call("POST", "/api/sessions", json={"model": "ollama/bad-model"})
    assert r.status_code == 400 and "blocked_models" in r.json()["detail"]
    r = await client.call("POST", "/api/sessions", json={"model": "ollama/llama3"})
    assert r.status_code == 201 and r.json()["model"] == "ollama/llama3"
    sid = await client.session()  # the default model, inside the policy
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"model": "anthropic/claude-sonnet-4-20250514"})
    assert r.status_code == 400 and "allowed_models" in r.json()["detail"]
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"model": "ollama/bad1"})
    assert r.status_code == 400 and "blocked_models" in r.json()["detail"]
    assert (await client.call("GET", f"/api/sessions/{sid}")).json()["model"] == "scripted"
    # a chat body cannot carry a model past the policy: it has no such field
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi", "model": "gpt-4o"})
    assert r.status_code == 422
    r = await client.call("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "hi", "model": "gpt-4o"})
    assert r.status_code == 422
    # nor a WebSocket message: the extra field is ignored and the session's own model answers
    fake_llm.script("<answer>one", "<answer>two", "<answer>three")
    ws = await ws_reply(jp_ws_fetch, sid, {"type": "chat", "content": "hi", "model": "gpt-4o"}, until=("done",))
    assert [m["type"] for m in ws if m["type"] == "error"] == []
    assert fake_llm.requests[-1]["model"] == "scripted"
    # allowed: every transport runs the task
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
    assert r.status_code == 200 and r.json()["answer"] == "two"
    events = await client.chat_stream(sid, "hi")
    assert events[-1]["event"] == "done" and events[-2]["data"]["answer"] == "three"
    # the policy tightens: a session created before it can no longer run its model anywhere
    policy.settings = replace(policy.settings, allowed_models=("ollama/*",))
    await refused_everywhere(client, jp_ws_fetch, sid, 400, ("scripted", "allowed_models"))
    policy.settings = replace(policy.settings, allowed_models=tuple(POLICY["allowed_models"]), blocked_models=("scr*",))
    await refused_everywhere(client, jp_ws_fetch, sid, 400, ("scripted", "blocked_models"))


async def test_min_hitl_mode(client, policy, jp_ws_fetch, fake_llm):
    r = await client.call("POST", "/api/sessions", json={})
    assert r.status_code == 201 and r.json()["hitl_mode"] == "plan_only"  # the default follows the minimum
    sid = r.json()["id"]
    for mode in ("none", "on_error"):
        r = await client.call("POST", "/api/sessions", json={"hitl_mode": mode})
        assert r.status_code == 400
        assert r.json()["detail"] == (
            f"HITL mode {mode} is below the server's policy (min_hitl_mode: plan_only); "
            "use one of: plan_only, plan_and_answer, full"
        )
        r = await client.call("PUT", f"/api/sessions/{sid}", json={"hitl_mode": mode})
        assert r.status_code == 400 and "min_hitl_mode" in r.json()["detail"]
    for mode in ("plan_and_answer", "full", "plan_only"):
        r = await client.call("PUT", f"/api/sessions/{sid}", json={"hitl_mode": mode})
        assert r.status_code == 200 and r.json()["hitl_mode"] == mode
    # allowed: a question without a plan does not pause in plan_only
    fake_llm.script("<answer>fine", "<answer>also fine")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
    assert r.status_code == 200 and r.json()["answer"] == "fine"
    ws = await ws_reply(jp_ws_fetch, sid, {"type": "chat", "content": "hi"}, until=("done",))
    assert ws[-2]["data"]["answer"] == "also fine"
    # a stricter minimum: the session's mode no longer runs until it is raised
    policy.settings = replace(policy.settings, min_hitl_mode=HITLMode.full)
    await refused_everywhere(client, jp_ws_fetch, sid, 400, ("plan_only", "min_hitl_mode: full"))
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"hitl_mode": "full"})
    assert r.status_code == 200
    fake_llm.script("<answer>strict")
    seen = []
    async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "hi"}):
        seen.append(ev["event"])
        if ev["event"] == "hitl_request":  # full mode pauses before the answer
            r = await client.call("POST", f"/api/sessions/{sid}/hitl/approve", json={})
            assert r.status_code == 200
        if ev["event"] == "done":
            break
    assert "hitl_resolved" in seen and seen[-1] == "done"


async def test_policy_endpoint(client):
    r = await client.call("GET", "/api/policy")
    assert r.status_code == 200
    body = r.json()
    assert body["allowed_models"] == ["scripted", "ollama/*"] and body["blocked_models"] == ["ollama/bad*"]
    assert body["min_hitl_mode"] == "plan_only" and body["default_hitl_mode"] == "plan_only"
    assert body["hitl_modes"] == ["plan_only", "plan_and_answer", "full"]
    assert body["limits"] == {"max_tokens_per_task": None, "max_cost_per_session": None, "max_cost_per_user_per_day": None}
    assert body["spent_today"] == {"cost_usd": 0.0, "tokens": 0, "unpriced_tokens": 0}
    assert body["remaining_today_usd"] is None and body["user"]


def test_settings_from_the_environment(monkeypatch):
    """Every policy setting falls back to its DSAGENT_ variable, as a hub's ``singleuser.extraEnv`` sets them."""
    from traitlets import TraitError

    from dsagent_ext.app import DSAgent
    from dsagent_ext.settings import PolicySettings, SpendingSettings

    env = {
        "DSAGENT_MODELS": "gpt-4o-mini, ollama/llama3",
        "DSAGENT_ALLOWED_MODELS": "gpt-4o*,ollama/*",
        "DSAGENT_BLOCKED_MODELS": "ollama/big*",
        "DSAGENT_MIN_HITL_MODE": "plan_and_answer",
        "DSAGENT_MAX_TOKENS_PER_TASK": "100000",
        "DSAGENT_MAX_COST_PER_SESSION": "2.5",
        "DSAGENT_MAX_COST_PER_USER_PER_DAY": "5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = DSAgent()
    assert app.models == ["gpt-4o-mini", "ollama/llama3"]
    assert app.allowed_models == ["gpt-4o*", "ollama/*"] and app.blocked_models == ["ollama/big*"]
    assert app.min_hitl_mode == "plan_and_answer"
    assert (app.max_tokens_per_task, app.max_cost_per_session, app.max_cost_per_user_per_day) == (100000, 2.5, 5.0)
    # the services receive them as settings objects
    assert app.policy_settings() == PolicySettings(
        ("gpt-4o*", "ollama/*"), ("ollama/big*",), HITLMode.plan_and_answer, HITLMode(app.default_hitl_mode)
    )
    assert app.spending_settings() == SpendingSettings(100000, 2.5, 5.0)
    assert app.catalogue_settings().models == ("gpt-4o-mini", "ollama/llama3")
    for name in env:
        monkeypatch.delenv(name)
    app = DSAgent()
    assert app.models == app.allowed_models == app.blocked_models == [] and app.min_hitl_mode == "none"
    assert app.max_tokens_per_task is app.max_cost_per_session is app.max_cost_per_user_per_day is None
    for name, bad in [("max_cost_per_session", -1.0), ("max_tokens_per_task", 0), ("min_hitl_mode", "sometimes")]:
        with pytest.raises((TraitError, ValueError)):
            setattr(app, name, bad)
