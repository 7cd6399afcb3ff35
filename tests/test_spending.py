"""Spending limits through a real server: a task ends cleanly when it reaches one (``error`` naming the
limit, then ``done``), and the next message is refused with 429 and the same message on sync chat,
SSE and the WebSocket, until the limit allows.

``gpt-4o-mini`` behind the scripted server's ``api_base`` is sent as ``openai/gpt-4o-mini``, whose
price litellm knows: the costs below are litellm's, from the scripted server's reported usage.
"""

from __future__ import annotations

import json
import signal
from dataclasses import replace

import httpx
import pytest
from client import refused_everywhere, ws_reply
from fake_llm import _usage
from launch import child_env
from test_serve import KEY, Served

CODE = ["<code>print(1)", "<code>print(2)", "<code>print(3)", "<code>print(4)", "<answer>never reached"]


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, "default_model": "gpt-4o-mini", **getattr(request, "param", {})}


def names(events):
    return [e["event"] for e in events if e["event"] != "llm_delta"]


@pytest.mark.parametrize("dsagent_config", [{"max_tokens_per_task": 1, "default_model": "scripted"}], indirect=True)
async def test_tokens_per_task(client, jp_ws_fetch, fake_llm):
    sid = await client.session()
    fake_llm.script(CODE[0])  # the task ends after its first round: nothing else is asked
    events = await client.chat_stream(sid, "count")
    assert names(events)[-3:] == ["round_complete", "error", "done"] and len(fake_llm.requests) == 1
    used = events[-1]["data"]["usage"]["total_tokens"]
    assert events[-2]["data"] == {
        "error": f"Token limit reached: this task used {used:,} tokens of the 1 allowed per task (max_tokens_per_task)",
        "limit": "max_tokens_per_task",
        "spent": used,
        "maximum": 1,
    }
    assert events[-3]["data"]["execution_result"]["stdout"] == "1\n"  # the round ran to its end
    # sync chat: the limit is the answer, 429
    fake_llm.script(CODE[0])
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "count"})
    assert r.status_code == 429 and r.json()["detail"].startswith("Token limit reached: this task used")
    fake_llm.script(CODE[0])
    ws = await ws_reply(jp_ws_fetch, sid, {"type": "chat", "content": "count"}, until=("done",))
    assert [m["type"] for m in ws][-2:] == ["error", "done"] and ws[-2]["data"]["limit"] == "max_tokens_per_task"
    # a per-task limit never refuses the next task; one finished in its first round is not cut
    fake_llm.script("<answer>short")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "short"})
    assert r.status_code == 200 and r.json()["answer"] == "short"


async def test_cost_per_session(client, spending, jp_ws_fetch, fake_llm):
    sid = await client.session()
    fake_llm.script("<answer>cheap")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
    first = r.json()["usage"]["cost_usd"]
    assert r.status_code == 200 and first > 0
    spending.settings = replace(spending.settings, max_cost_per_session=first * 2.5)
    fake_llm.script(*CODE)
    events = await client.chat_stream(sid, "count")
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    error = events[-2]["data"]
    assert names(events)[-2:] == ["error", "done"] and error["limit"] == "max_cost_per_session"
    assert 1 <= len(rounds) < 4 and error["spent"] >= spending.settings.max_cost_per_session > first
    assert error["spent"] == pytest.approx(first + sum(r["usage"]["cost_usd"] for r in rounds))
    assert error["error"].startswith("Spending limit reached: this session has cost $")
    assert error["error"].endswith("allowed per session (max_cost_per_session)")
    # every next message is refused with the same figures
    refusal = await refused_everywhere(client, jp_ws_fetch, sid, 429, ())
    assert refusal == error
    policy = (await client.call("GET", "/api/policy", params={"session_id": sid})).json()
    assert policy["session_spent"]["cost_usd"] == pytest.approx(error["spent"])
    assert policy["limits"]["max_cost_per_session"] == spending.settings.max_cost_per_session
    # another session has its own budget; a higher limit lets this one go on
    fake_llm._replies.clear()  # the rounds the limit cut short were never asked for
    other = await client.session()
    fake_llm.script("<answer>fresh")
    assert (await client.call("POST", f"/api/sessions/{other}/chat", json={"message": "hi"})).status_code == 200
    spending.settings = replace(spending.settings, max_cost_per_session=error["spent"] * 10)
    fake_llm.script("<answer>again")
    assert (await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})).json()["answer"] == "again"


async def test_cost_per_user_per_day(client, spending, jp_ws_fetch, fake_llm, jp_root_dir):
    spending.settings = replace(spending.settings, max_cost_per_user_per_day=1e-9)
    sid = await client.session()
    fake_llm.script(*CODE)
    events = await client.chat_stream(sid, "count")
    error = events[-2]["data"]
    assert names(events)[-2:] == ["error", "done"] and error["limit"] == "max_cost_per_user_per_day"
    user = (await client.call("GET", "/api/policy")).json()["user"]
    assert error["error"].startswith(f"Daily spending limit reached: {user} has spent $")
    assert error["error"].endswith("(max_cost_per_user_per_day); it resets at 00:00 UTC")
    # the same user is refused in every session, with the same message
    other = await client.session()
    assert await refused_everywhere(client, jp_ws_fetch, other, 429, ()) == error
    policy = (await client.call("GET", "/api/policy")).json()
    assert policy["spent_today"]["cost_usd"] == pytest.approx(error["spent"]) and policy["remaining_today_usd"] == 0
    assert policy["spent_today"]["tokens"] == events[-1]["data"]["usage"]["total_tokens"]
    ledger = json.loads((jp_root_dir / "dsagent" / "spending.json").read_text())
    assert ledger[policy["day"]][user]["cost_usd"] == pytest.approx(error["spent"])
    spending.settings = replace(spending.settings, max_cost_per_user_per_day=1.0)
    fake_llm._replies.clear()
    fake_llm.script("<answer>allowed again")
    r = await client.call("POST", f"/api/sessions/{other}/chat", json={"message": "hi"})
    assert r.status_code == 200 and r.json()["answer"] == "allowed again"
    policy = (await client.call("GET", "/api/policy")).json()
    assert policy["remaining_today_usd"] == pytest.approx(1.0 - policy["spent_today"]["cost_usd"])


def test_daily_ledger_survives_restart(tmp_path, fake_llm):
    """``dsagent serve`` with the API key: one identity, its day's spending kept across a kill -9;
    the limits set through the environment."""
    root = tmp_path / "root"
    root.mkdir()
    env = child_env(
        DSAGENT_API_KEY=KEY,
        LLM_API_BASE=fake_llm.api_base,
        DSAGENT_DEFAULT_MODEL="gpt-4o-mini",
        DSAGENT_MAX_COST_PER_USER_PER_DAY="0.000000001",
    )
    h = {"X-API-Key": KEY}
    served = Served(root, env).start()
    try:
        sid = httpx.post(f"{served.url}/api/sessions", json={}, headers=h).json()["id"]
        r = httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "hi"}, headers=h, timeout=60)
        assert r.status_code == 200, r.text  # one round that answers: nothing to cut
        r = httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "hi"}, headers=h, timeout=60)
        assert r.status_code == 429
        refusal = r.json()["detail"]
        assert refusal.startswith("Daily spending limit reached: dsagent-api-key has spent $")
    finally:
        served.stop(signal.SIGKILL)
    served = Served(root, env).start()
    try:
        sid = httpx.post(f"{served.url}/api/sessions", json={}, headers=h).json()["id"]
        r = httpx.post(f"{served.url}/api/sessions/{sid}/chat/stream", json={"message": "hi"}, headers=h)
        assert r.status_code == 429 and r.json()["detail"] == refusal
        policy = httpx.get(f"{served.url}/api/policy", headers=h).json()
        assert policy["user"] == "dsagent-api-key" and policy["limits"]["max_cost_per_user_per_day"] == 1e-9
        # the catalogue at the reference's root URLs too: the api_base's models, behind the key
        assert httpx.get(f"{served.url}/api/models").status_code == 401
        listed = httpx.get(f"{served.url}/api/models", headers=h, timeout=60).json()["models"]
        ids = [m["id"] for m in listed]
        assert ids == ["gpt-4o-mini", "llama3:8b", "openai/meta-llama/Llama-3.1-8B-Instruct", "scripted"]
    finally:
        served.stop()


@pytest.mark.parametrize("dsagent_config", [{"context_tokens": 10}], indirect=True)
async def test_summary_call_is_counted(client, fake_llm):
    """The call that summarises a long history is a model call of the task that needed it: its tokens
    and cost are in that task's first round, its ``done``, the session's spending and the user's day."""
    sid = await client.session()
    for i in range(5):
        fake_llm.script(f"<answer>reply {i}")
        await client.chat_stream(sid, f"question {i}")
    before = (await client.call("GET", "/api/policy", params={"session_id": sid})).json()
    fake_llm.script("- the user asked five questions", "<answer>after summary")
    events = await client.chat_stream(sid, "question 5")
    summary_call, task_call = fake_llm.requests[-2:]
    assert not summary_call.get("stream") and task_call.get("stream")
    summary = _usage(summary_call, "- the user asked five questions")
    (round_,) = [e["data"] for e in events if e["event"] == "round_complete"]
    usage = round_["usage"]
    assert usage["prompt_tokens"] == summary["prompt_tokens"] + _usage(task_call, "")["prompt_tokens"]
    assert usage["total_tokens"] > summary["total_tokens"] and usage["cost_usd"] > 0
    assert events[-1]["data"]["usage"] == usage
    after = (await client.call("GET", "/api/policy", params={"session_id": sid})).json()
    assert after["spent_today"]["tokens"] - before["spent_today"]["tokens"] == usage["total_tokens"]
    spent = after["spent_today"]["cost_usd"] - before["spent_today"]["cost_usd"]
    assert spent == pytest.approx(usage["cost_usd"])
    assert after["session_spent"]["cost_usd"] - before["session_spent"]["cost_usd"] == pytest.approx(usage["cost_usd"])
