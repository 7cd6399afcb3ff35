"""Words that come with a human decision reach the model, ``/turns`` and the notebook.

Approve and reject are sent exactly as DSAgent's VS Code client sends them (``src/api/client.ts``:
``fetch`` with ``Content-Type: application/json``, ``X-API-Key`` and ``JSON.stringify({ feedback })``
or ``JSON.stringify({ reason })``, which is ``{}`` when the user typed nothing).
"""

from __future__ import annotations

import json

import httpx
import nbformat
import pytest
from test_hitl import DONE, PLAN, next_request, start_stream

KEY = "vscode-key"


@pytest.fixture
def dsagent_config(agent_config):
    return {**agent_config, "api_key": KEY}


async def vscode(client, sid: str, verb: str, **words: object) -> httpx.Response:
    """``approveAction(feedback)`` / ``rejectAction(reason)`` of the VS Code client, byte for byte."""
    body = json.dumps({k: v for k, v in words.items() if v is not None}, separators=(",", ":"))
    headers = {"Content-Type": "application/json", "X-API-Key": KEY}
    async with httpx.AsyncClient(timeout=60) as http:  # the server runs on this test's event loop
        return await http.post(f"{client.base}/api/sessions/{sid}/hitl/{verb}", content=body, headers=headers)


async def notebook_text(client, sid: str) -> str:
    r = await client.call("GET", f"/api/sessions/{sid}/notebook")
    assert r.status_code == 200, r.text
    return "\n".join(c.source for c in nbformat.reads(r.text, as_version=4).cells)


def said_to_model(request: dict) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")


async def test_approve_with_feedback_reaches_the_running_task(client, fake_llm):
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="plan_only")
    task, queue = await start_stream(client, sid, "compute x")
    request = await next_request(queue)
    assert request["request_type"] == "plan" and request["message"] == "Approve this plan?"
    r = await vscode(client, sid, "approve", feedback="looks good, keep it short")
    assert r.status_code == 200 and r.json() == {"success": True, "message": "Approved"}
    events = await task
    resolved = next(e["data"] for e in events if e["event"] == "hitl_resolved")
    assert resolved["action"] == "approve" and resolved["message"] == "looks good, keep it short"
    assert events[-2]["data"]["answer"] == "x is 42"
    # the plan's code ran, then the model was told the result and what the user said
    assert len(fake_llm.requests) == 2
    last = fake_llm.requests[1]["messages"][-1]["content"]
    assert "The user approved your plan and says: looks good, keep it short" in last and "42" in last
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert turns[0]["hitl"][0]["message"] == "looks good, keep it short"
    assert "The user approved the plan, saying: looks good, keep it short" in await notebook_text(client, sid)


async def test_reject_reason_reaches_later_tasks(client, fake_llm):
    fake_llm.script(PLAN)
    sid = await client.session(hitl_mode="plan_only")
    task, queue = await start_stream(client, sid, "compute x")
    await next_request(queue)
    r = await vscode(client, sid, "reject", reason="not this plan: use the sales file")
    assert r.status_code == 200 and r.json() == {"success": True, "message": "Rejected - task aborted"}
    events = await task
    assert events[-2]["data"]["stop_reason"] == "rejected" and "code_executing" not in [e["event"] for e in events]
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert turns[-1]["hitl"][0]["action"] == "reject"
    assert turns[-1]["hitl"][0]["message"] == "not this plan: use the sales file"
    assert "declined the plan and stopped the task, saying: not this plan: use the sales file" in await notebook_text(
        client, sid
    )
    # the next task's model request carries the declined plan and why
    fake_llm.script("<answer>ok")
    await client.chat_stream(sid, "then what?")
    history = said_to_model(fake_llm.requests[-1])
    assert "The user declined the plan and stopped the task, saying: not this plan: use the sales file" in history
    assert "1. [ ] Compute" in "\n".join(m["content"] for m in fake_llm.requests[-1]["messages"])


async def test_empty_body_and_unknown_fields(client, fake_llm):
    """The VS Code client's body when the user typed nothing is ``{}``; unknown fields are ignored on
    approve and reject only; a wrong type is still a 422."""
    fake_llm.script(PLAN, DONE)
    sid = await client.session(hitl_mode="plan_only")
    r = await vscode(client, sid, "reject", reason="x", source="vscode", version=3)
    assert r.status_code == 409, r.text  # read, and nothing is pending
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/approve", json={"feedback": 7})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "feedback"]
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "approve", "feedback": "x"})
    assert r.status_code == 422  # respond keeps its strict body
    task, queue = await start_stream(client, sid, "go")
    await next_request(queue)
    assert (await vscode(client, sid, "approve", feedback=None)).status_code == 200
    events = await task
    resolved = next(e["data"] for e in events if e["event"] == "hitl_resolved")
    assert resolved["message"] is None
    assert "The user approved" not in fake_llm.requests[1]["messages"][-1]["content"]


async def test_every_name_in_body_or_query(client, fake_llm):
    sid = await client.session(hitl_mode="plan_only")
    ways = [
        ({"json": {"message": "m-body"}}, "m-body"),
        ({"json": {"feedback": "f-body"}}, "f-body"),
        ({"json": {"reason": "r-body"}}, "r-body"),
        ({"params": {"message": "m-query"}}, "m-query"),
        ({"params": {"feedback": "f-query"}}, "f-query"),
        ({"params": {"reason": "r-query"}}, "r-query"),
        ({"params": {"reason": "loses"}, "json": {"reason": "body wins"}}, "body wins"),
    ]
    for how, _ in ways:
        fake_llm.script(PLAN)
        task, queue = await start_stream(client, sid, "go")
        await next_request(queue)
        r = await client.call("POST", f"/api/sessions/{sid}/hitl/reject", **how)
        assert r.status_code == 200, (how, r.text)
        await task
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert [t["hitl"][0]["message"] for t in turns] == [said for _, said in ways]
