"""Human in the loop: every mode's pause points, every action's effect, on sync, SSE and WebSocket."""

from __future__ import annotations

import asyncio
import json

import pytest

PLAN = "<intent>complex</intent><plan>\n1. [ ] Compute\n2. [ ] Report\n</plan><code>x = 6 * 7\nprint(x)"
DONE = "<plan>\n1. [x] Compute\n2. [x] Report\n</plan><answer>x is 42"


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, **getattr(request, "param", {})}


async def start_stream(client, sid, message):
    """Run a streamed task in the background; returns (task, queue of events as they arrive)."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump():
        events = []
        async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": message}):
            if ev["event"] not in ("comment", "llm_delta", "code_output"):
                events.append(ev)
                await queue.put(ev)
        return events

    return asyncio.ensure_future(pump()), queue


async def next_request(queue) -> dict:
    while True:
        ev = await asyncio.wait_for(queue.get(), 60)
        if ev["event"] == "hitl_request":
            return ev["data"]
        assert ev["event"] != "done", "task ended without pausing"


def names(events):
    return [e["event"] for e in events]


async def test_none_never_pauses(client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="none")
    events = await client.chat_stream(sid, "go")
    assert "hitl_request" not in names(events)
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert status == {
        "enabled": False, "mode": "none", "awaiting_feedback": False, "awaiting_type": None,
        "pending_plan": None, "pending_code": None, "pending_error": None, "pending_answer": None,
        "pending_message": None,
        "pending_cell": None,
    }


async def test_plan_only_pauses_on_plan_and_approve(client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="plan_only")
    task, queue = await start_stream(client, sid, "go")
    request = await next_request(queue)
    assert request["request_type"] == "plan" and request["plan"]["total_steps"] == 2
    assert request["message"] == "Approve this plan?"
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert status["awaiting_feedback"] and status["awaiting_type"] == "plan" and status["enabled"]
    assert [s["description"] for s in status["pending_plan"]["steps"]] == ["Compute", "Report"]
    assert status["pending_plan"]["raw_text"].startswith("1. [ ] Compute")
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    assert r.json() == {"success": True, "message": "Approved"}
    events = await task
    assert names(events)[:5] == ["thinking", "llm_response", "plan", "hitl_request", "hitl_resolved"]
    assert names(events)[5:8] == ["code_executing", "code_result", "round_complete"]
    # ticking steps does not pause again; only one request in the task
    assert names(events).count("hitl_request") == 1 and events[-2]["data"]["answer"] == "x is 42"
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    assert rounds[0]["hitl"][0]["action"] == "approve" and rounds[0]["hitl"][0]["by"]
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert turns[0]["hitl"] == rounds[0]["hitl"]
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert not status["awaiting_feedback"] and status["pending_plan"] is None
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    assert r.status_code == 409 and r.json()["detail"] == "Nothing is awaiting approval in this session"


async def test_sync_chat_blocks_until_a_concurrent_approve(client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="plan_only")
    chat = asyncio.ensure_future(client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "go"}))
    for _ in range(200):
        status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
        if status["awaiting_feedback"]:
            break
        await asyncio.sleep(0.05)
    assert status["awaiting_type"] == "plan" and not chat.done()
    assert (await client.call("POST", f"/api/sessions/{sid}/hitl/approve")).status_code == 200
    r = await chat
    assert r.status_code == 200 and r.json()["answer"] == "x is 42"


async def test_reject_aborts(client, fake_llm):
    fake_llm.script(PLAN)
    sid = await client.session(hitl_mode="plan_only")
    task, queue = await start_stream(client, sid, "go")
    await next_request(queue)
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/reject", params={"message": "not now"})
    assert r.json() == {"success": True, "message": "Rejected - task aborted"}
    events = await task
    final = events[-2]["data"]
    assert final["stop_reason"] == "rejected" and final["answer"] == "Task aborted by user." and final["is_complete"]
    assert final["execution_result"] is None and final["hitl"][0]["message"] == "not now"
    assert names(events)[-1] == "done" and "code_executing" not in names(events)
    assert len(fake_llm.requests) == 1


async def test_modify_plan_and_feedback_reach_the_model(client, fake_llm):
    fake_llm.script(
        PLAN,
        "<plan>\n1. [ ] Compute carefully\n2. [ ] Report\n</plan><code>print(1)",
        "<plan>\n1. [x] Compute carefully\n2. [x] Report\n</plan><answer>done",
    )
    sid = await client.session(hitl_mode="plan_only")
    task, queue = await start_stream(client, sid, "go")
    await next_request(queue)
    r = await client.call(
        "POST", f"/api/sessions/{sid}/hitl/respond",
        json={"action": "modify", "modified_plan": "1. [ ] Compute carefully\n2. [ ] Report"},
    )
    assert r.json()["message"] == "Plan modification accepted"
    # the modified plan is what the model is told; its reply with that plan does not pause again
    events = await task
    assert "Compute carefully" in fake_llm.requests[1]["messages"][-1]["content"]
    assert names(events).count("hitl_request") == 1
    first = [e["data"] for e in events if e["event"] == "round_complete"][0]
    assert first["execution_result"] is None and first["plan"]["steps"][0]["description"] == "Compute carefully"

    fake_llm.script(PLAN, PLAN, DONE)
    task, queue = await start_stream(client, sid, "again")
    await next_request(queue)
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "feedback", "message": "use numpy"})
    assert r.json()["message"] == "Feedback sent"
    # nothing ran; the model revised and its plan is up for approval again
    request = await next_request(queue)
    assert request["request_type"] == "plan"
    assert "use numpy" in fake_llm.requests[-1]["messages"][-1]["content"]
    await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = await task
    assert names(events).count("code_executing") == 1


@pytest.mark.parametrize("dsagent_config", [{"hitl_timeout": 0.5}], indirect=True)
async def test_timeout_rejects(client, fake_llm):
    fake_llm.script(PLAN)
    sid = await client.session(hitl_mode="plan_only")
    events = await client.chat_stream(sid, "go")
    resolved = [e["data"] for e in events if e["event"] == "hitl_resolved"][0]
    assert resolved["timed_out"] and resolved["action"] == "reject" and resolved["by"] == "timeout"
    assert events[-2]["data"]["stop_reason"] == "rejected"
    log = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"][-1]["hitl"][0]
    assert log["timed_out"] and log["message"] == "No decision within 0.5s: the task was stopped"
    # the next task's model hears that the plan went unanswered and the task was stopped
    fake_llm.script("<answer>ok")
    await client.call("PUT", f"/api/sessions/{sid}", json={"hitl_mode": "none"})
    await client.chat_stream(sid, "and now?")
    history = "\n".join(m["content"] for m in fake_llm.requests[-1]["messages"])
    assert "Nobody answered the request about the plan. No decision within 0.5s: the task was stopped." in history


async def test_full_code_pause_modify_runs_the_modified_code(client, fake_llm):
    fake_llm.script("<code>print('original')", "<answer>done")
    sid = await client.session(hitl_mode="full")
    task, queue = await start_stream(client, sid, "go")
    request = await next_request(queue)
    assert request["request_type"] == "code" and request["code"] == "print('original')"
    assert request["message"] == "Run this code?"
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert status["pending_code"] == "print('original')"
    await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "modify", "modified_code": "print('edited')"})
    request = await next_request(queue)  # full also pauses before the answer
    assert request["request_type"] == "answer" and request["answer"] == "done"
    assert request["message"] == "Accept this answer?"
    await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = await task
    result = [e["data"] for e in events if e["event"] == "code_result"][0]
    assert result["stdout"] == "edited\n"
    assert [e["data"]["code"] for e in events if e["event"] == "code_executing"] == ["print('edited')"]
    assert "print('edited')" in fake_llm.requests[1]["messages"][-1]["content"]


async def test_full_code_skip(client, fake_llm):
    fake_llm.script("<code>print('never')", "<answer>skipped it")
    sid = await client.session(hitl_mode="full")
    task, queue = await start_stream(client, sid, "go")
    await next_request(queue)
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "skip"})
    assert r.json()["message"] == "Step skipped"
    await next_request(queue)
    await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = await task
    assert "code_executing" not in names(events)
    assert "skipped" in fake_llm.requests[1]["messages"][-1]["content"]


async def test_on_error_retry_and_skip(client, fake_llm, tmp_path):
    flag = tmp_path / "flag"
    code = f"import os\nif not os.path.exists({str(flag)!r}):\n    raise RuntimeError('not yet')\nprint('ok')"
    fake_llm.script(f"<code>{code}", "<answer>worked")
    sid = await client.session(hitl_mode="on_error")
    task, queue = await start_stream(client, sid, "go")
    request = await next_request(queue)
    assert request["request_type"] == "error" and "RuntimeError" in request["error"]
    assert request["message"] == "This cell failed: retry, skip or give guidance?"
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert "not yet" in status["pending_error"]
    assert status["pending_message"] == request["message"]  # a client reloading asks in the same words
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "modify"})
    assert r.status_code == 400 and "modified_code" in r.json()["detail"]
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "dance"})
    assert r.status_code == 422
    flag.write_text("")
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "retry"})
    assert r.json()["message"] == "Retrying operation"
    events = await task
    results = [e["data"] for e in events if e["event"] == "code_result"]
    assert [r["success"] for r in results] == [False, True] and results[1]["stdout"] == "ok\n"
    assert names(events).count("hitl_request") == 1  # plan_only points are not on_error's

    fake_llm.script("<code>1/0", "<answer>moved on")
    task, queue = await start_stream(client, sid, "divide")
    await next_request(queue)
    await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "skip"})
    await task
    assert "skip" in fake_llm.requests[-1]["messages"][-1]["content"]


async def test_plan_and_answer_feedback_revises(client, fake_llm):
    fake_llm.script("<answer>draft", "<answer>final")
    sid = await client.session(hitl_mode="plan_and_answer")
    task, queue = await start_stream(client, sid, "summarise")
    request = await next_request(queue)
    assert request["request_type"] == "answer" and request["answer"] == "draft"
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "feedback"})
    assert r.status_code == 400 and r.json()["detail"] == "Feedback action requires a message"
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "retry"})
    assert r.status_code == 400
    await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "feedback", "message": "shorter"})
    await next_request(queue)
    await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = await task
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    assert [r["is_complete"] for r in rounds] == [False, True] and rounds[-1]["answer"] == "final"
    assert "shorter" in fake_llm.requests[1]["messages"][-1]["content"]


async def test_mode_change_applies_from_next_pause(client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="none")
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"hitl_mode": "plan_only"})
    assert r.json()["hitl_mode"] == "plan_only"
    task, queue = await start_stream(client, sid, "go")
    await next_request(queue)
    await client.call("PUT", f"/api/sessions/{sid}", json={"hitl_mode": "none"})
    await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = await task
    assert names(events).count("hitl_request") == 1


async def test_pending_request_survives_reconnect(client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="plan_only")
    task, queue = await start_stream(client, sid, "go")
    await next_request(queue)
    task.cancel()  # the page reloads
    replay = []
    follow = client.events("GET", f"/api/sessions/{sid}/chat/stream")
    async for ev in follow:
        replay.append(ev)
        if ev["event"] == "hitl_request":
            break
    await follow.aclose()
    assert names(replay)[:4] == ["thinking", "llm_response", "plan", "hitl_request"]
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert status["awaiting_type"] == "plan"
    await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = [e async for e in client.events("GET", f"/api/sessions/{sid}/chat/stream")]
    assert events[-1]["event"] == "done"


async def test_websocket_pause_and_approve(jp_ws_fetch, client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="plan_only")
    ws = await jp_ws_fetch("dsagent", "ws", "chat", sid)
    await ws.read_message()
    ws.write_message(json.dumps({"type": "approve"}))
    reply = json.loads(await ws.read_message())
    assert reply["type"] == "error" and "Nothing is awaiting" in reply["data"]["error"]
    ws.write_message(json.dumps({"type": "chat", "content": "go"}))
    while (msg := json.loads(await asyncio.wait_for(ws.read_message(), 60)))["type"] != "hitl_request":
        pass
    assert msg["data"]["request_type"] == "plan"
    ws.write_message(json.dumps({"type": "respond", "action": "feedback", "message": "print more"}))
    types = []
    while (msg := json.loads(await asyncio.wait_for(ws.read_message(), 60)))["type"] != "hitl_request":
        types.append(msg["type"])
    assert "hitl_response" in types
    ws.write_message(json.dumps({"type": "approve"}))
    while (msg := json.loads(await asyncio.wait_for(ws.read_message(), 60)))["type"] != "done":
        pass
    assert "print more" in fake_llm.requests[1]["messages"][-1]["content"]
    ws.close()
