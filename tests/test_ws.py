"""The chat WebSocket: live events, client commands, and refusals."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from fake_llm import FakeReply


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


async def receive(ws, until: str = "done", timeout: float = 60) -> list[dict]:
    messages = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), timeout)
        assert raw is not None, "socket closed"
        messages.append(json.loads(raw))
        if messages[-1]["type"] == until:
            return messages


async def test_chat_streams_live(jp_ws_fetch, client, fake_llm):
    # the model holds its reply after three pieces until the test has seen a delta: deltas are live,
    # not sent after the reply, whatever the machine's load does to timing
    release = threading.Event()
    reply = FakeReply(text="<code>print('hi')", chunk_size=2, hold_after=3, release=release)
    fake_llm.script(reply, "<answer>said hi")
    sid = await client.session()
    ws = await jp_ws_fetch("dsagent", "ws", "chat", sid)
    connected = json.loads(await ws.read_message())
    assert connected["type"] == "connected" and connected["session_id"] == sid
    ws.write_message(json.dumps({"type": "chat", "content": "say hi"}))
    try:
        messages = await receive(ws, "llm_delta")
    finally:
        release.set()
    seen = "".join(m["data"]["delta"] for m in messages if m["type"] == "llm_delta")
    assert seen and "<code>".startswith(seen)  # only what the model had sent before it held
    messages += await receive(ws)
    types = [m["type"] for m in messages if m["type"] not in ("llm_delta", "code_output")]
    assert types == [
        "thinking", "llm_response", "code_executing", "code_result", "round_complete",
        "thinking", "llm_response", "round_complete", "done",
    ]
    result = next(m for m in messages if m["type"] == "code_result")["data"]
    assert result["stdout"] == "hi\n" and result["output"] == "hi\n" and result["round"] == 1
    live = [m["data"] for m in messages if m["type"] == "code_output"]
    assert live == [{"round": 1, "output": {"output_type": "stream", "name": "stdout", "text": "hi\n"}}]
    assert [m["data"]["answer"] for m in messages if m["type"] == "round_complete"][-1] == "said hi"
    # a task started over REST reaches the socket too
    fake_llm.script("<answer>from rest")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hello"})
    assert r.status_code == 200
    messages = await receive(ws)
    assert messages[-2]["data"]["answer"] == "from rest"
    ws.close()


async def test_execute_cancel_and_bad_messages(jp_ws_fetch, client, fake_llm):
    sid = await client.session()
    ws = await jp_ws_fetch("dsagent", "ws", "chat", sid)
    await receive(ws, "connected")
    ws.write_message(json.dumps({"type": "execute", "code": "print(2 + 2)"}))
    messages = await receive(ws, "code_result")
    assert messages[-1]["data"]["stdout"] == "4\n" and messages[0]["data"]["code"] == "print(2 + 2)"
    ws.write_message("not json")
    assert (await receive(ws, "error"))[-1]["data"]["error"].startswith("Invalid message")
    ws.write_message(json.dumps({"type": "chat"}))
    assert (await receive(ws, "error"))[-1]["data"]["error"] == "Message content is required"
    ws.write_message(json.dumps({"type": "cancel"}))
    assert (await receive(ws, "error"))[-1]["data"]["error"] == "No task is running"
    fake_llm.script("<code>import time; time.sleep(30)")
    ws.write_message(json.dumps({"type": "chat", "content": "wait"}))
    await receive(ws, "code_executing")
    ws.write_message(json.dumps({"type": "chat", "content": "again"}))
    assert "busy" in (await receive(ws, "error"))[-1]["data"]["error"]
    ws.write_message(json.dumps({"type": "cancel"}))
    messages = await receive(ws)
    assert [m["data"]["stop_reason"] for m in messages if m["type"] == "round_complete"] == ["cancelled"]
    ws.close()


async def test_unknown_session_is_closed_not_created(jp_ws_fetch, jp_serverapp):
    ws = await jp_ws_fetch("dsagent", "ws", "chat", "20990101_000000_abcdef")
    assert await ws.read_message() is None
    assert ws.close_code == 4004 and ws.close_reason == "Session 20990101_000000_abcdef not found"
    service = jp_serverapp.web_app.settings["dsagent"]
    assert service.list()[1] == 0
    ws = await jp_ws_fetch("dsagent", "ws", "chat", "bad.id")
    assert await ws.read_message() is None and ws.close_code == 1008
