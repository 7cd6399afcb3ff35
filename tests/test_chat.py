"""The agent end to end: scripted model over HTTP, real litellm, real server, real kernel."""

from __future__ import annotations

import asyncio
import base64
import json

import nbformat
import pytest
from fake_llm import FakeReply

PLOT_TASK = [
    "<intent>complex</intent>I'll load the data, plot it and summarise.\n"
    "<plan>\n1. [ ] Load data\n2. [ ] Plot the trend\n3. [ ] Summarise\n</plan>\n"
    "<code>\nimport pandas as pd\ndf = pd.DataFrame({'month': [1, 2, 3], 'sales': [10, 30, 20]})\nprint(df.shape)\n</code>",
    "<plan>\n1. [x] Load data\n2. [ ] Plot the trend\n3. [ ] Summarise\n</plan>\n"
    "<code>\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot(df.month, df.sales)\n"
    "fig.savefig('artifacts/trend.png')\nplt.show()\n</code>",
    "<plan>\n1. [x] Load data\n2. [x] Plot the trend\n3. [ ] Summarise\n</plan>\n"
    "<code>\nprint(df.sales.sum())\n</code>",
    "<plan>\n1. [x] Load data\n2. [x] Plot the trend\n3. [x] Summarise\n</plan>\n<answer>Sales peaked in month 2; total 60.",
]


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, **getattr(request, "param", {})}


def names(events):
    """Event names, without deltas, live outputs and keepalive comments (a slow first model call may get one)."""
    return [e["event"] for e in events if e["event"] not in ("llm_delta", "code_output", "comment")]


async def test_three_round_plan_with_plot(client, fake_llm, jp_root_dir):
    fake_llm.script(*PLOT_TASK)
    sid = await client.session(name="sales")
    events = await client.chat_stream(sid, "analyse sales and plot the trend")
    round_events = ["thinking", "llm_response", "plan", "code_executing", "code_result", "round_complete"]
    assert names(events) == round_events * 3 + ["thinking", "llm_response", "plan", "round_complete", "done"]
    # the text streamed as deltas before the full response, and deltas carry no id
    deltas = [e for e in events if e["event"] == "llm_delta"]
    assert "".join(d["data"]["delta"] for d in deltas if d["data"]["round"] == 4) == PLOT_TASK[3]
    assert all(d["id"] is None for d in deltas)
    ids = [e["id"] for e in events if e["event"] not in ("llm_delta", "code_output")]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    results = [e["data"] for e in events if e["event"] == "code_result"]
    assert results[0]["stdout"] == "(3, 2)\n" and results[2]["stdout"] == "60\n"
    image = results[1]["images"][0]
    assert image["mime"] == "image/png" and image["format"] == "png"
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    assert [r["round"] for r in rounds] == [1, 2, 3, 4]
    assert [r["plan"]["completed_steps"] for r in rounds] == [0, 1, 2, 3]
    final = rounds[-1]
    assert final["is_complete"] and final["has_answer"] and final["stop_reason"] == "answer"
    assert final["answer"] == "Sales peaked in month 2; total 60."
    assert final["plan"]["is_complete"] and final["usage"]["total_tokens"] > 0
    assert events[-1]["data"]["usage"]["total_tokens"] == sum(r["usage"]["total_tokens"] for r in rounds)
    # the model saw the first cell's output before writing the second
    assert "(3, 2)" in fake_llm.requests[1]["messages"][-1]["content"]
    assert fake_llm.requests[0]["stop"] == ["</code>", "</answer>"]
    # saved figure is an artifact
    r = await client.call("GET", f"/api/sessions/{sid}/artifacts", params={"type": "image"})
    assert [a["name"] for a in r.json()["artifacts"]] == ["trend.png"]
    # /turns renders exactly like the live round_complete events
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()
    assert turns["total"] == 4
    assert turns["turns"][0]["user_message"] == "analyse sales and plot the trend"
    assert turns["turns"][1]["user_message"] is None
    for turn, live in zip(turns["turns"], rounds):
        assert {k: v for k, v in turn.items() if k not in ("timestamp", "user_message", "restore")} == live
    # the notebook: user, prose, plan, code cells with real outputs, the answer
    r = await client.call("GET", f"/api/sessions/{sid}/notebook")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ipynb+json")
    nb = nbformat.reads(r.text, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"][1:]  # after the setup cell
    assert len(code) == 3 and code[0].outputs[0]["text"] == "(3, 2)\n"
    assert "image/png" in code[1].outputs[0]["data"]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "analyse sales and plot the trend" in markdown and "Sales peaked in month 2" in markdown
    assert "- [x] Summarise" in markdown and "<code>" not in markdown
    path = jp_root_dir / "dsagent" / "sessions" / sid / "notebooks" / f"{sid}.ipynb"
    assert path.is_file()
    # it re-runs as saved, from the notebooks folder, as JupyterLab would run it
    from nbclient import NotebookClient

    rerun = nbformat.reads(r.text, as_version=4)  # as served: the file may be rewritten in the background
    await NotebookClient(rerun, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).async_execute()
    assert [c for c in rerun.cells if c.cell_type == "code"][-1].outputs[0]["text"] == "60\n"
    # messages: user, then assistant/execution pairs
    messages = (await client.call("GET", f"/api/sessions/{sid}/messages", params={"limit": 200})).json()
    assert [m["role"] for m in messages["messages"]] == ["user"] + ["assistant", "execution"] * 3 + ["assistant"]


async def test_failing_cell_is_repaired(client, fake_llm):
    fake_llm.script(
        "<intent>simple</intent><code>print(undefined_name)",
        "The name was missing; defining it.<code>undefined_name = 5\nprint(undefined_name)",
        "<answer>It is 5.",
    )
    sid = await client.session()
    events = await client.chat_stream(sid, "print the value")
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    first = rounds[0]["execution_result"]
    assert not first["success"] and first["error"].startswith("NameError") and "\x1b[" not in first["error"]
    assert rounds[1]["execution_result"]["success"] and rounds[1]["execution_result"]["stdout"] == "5\n"
    assert rounds[2]["answer"] == "It is 5."
    repair_prompt = fake_llm.requests[1]["messages"][-1]["content"]
    assert "NameError" in repair_prompt and "undefined_name" in repair_prompt


async def test_question_without_code(client, fake_llm):
    fake_llm.script("<intent>question</intent><answer>A p-value is a probability.")
    sid = await client.session()
    events = await client.chat_stream(sid, "what is a p-value?")
    assert names(events) == ["thinking", "llm_response", "round_complete", "done"]
    final = events[-2]["data"]
    assert final["is_complete"] and final["answer"] == "A p-value is a probability." and final["code"] is None


async def test_reply_without_tags_ends_the_task(client, fake_llm):
    fake_llm.script("Sure, happy to help with anything.")
    sid = await client.session()
    events = await client.chat_stream(sid, "hi")
    final = events[-2]["data"]
    assert final["is_complete"] and final["stop_reason"] == "no_code" and not final["has_answer"]


async def test_garbled_and_fenced_replies(client, fake_llm):
    fake_llm.script(
        "<intent>simple</intent> <plan>1.[ ] compute\n   2 ) [ ] nothing\nHere it goes:\n```python\nprint(6 * 7)\n```",
        "<plan>\n1. [X] compute\n</plan><answer>42",
    )
    sid = await client.session()
    events = await client.chat_stream(sid, "compute 6*7")
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    assert rounds[0]["code"] == "print(6 * 7)" and rounds[0]["execution_result"]["stdout"] == "42\n"
    assert rounds[1]["answer"] == "42" and rounds[1]["plan"]["is_complete"]


async def test_sync_chat(client, fake_llm):
    fake_llm.script("<code>x = 21 * 2\nprint(x)", "<answer>x is 42")
    sid = await client.session()
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "compute x"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == "x is 42" and body["is_complete"] and body["has_answer"]
    assert body["content"] == "<answer>x is 42"
    assert [r["round"] for r in body["rounds"]] == [1, 2]
    assert body["rounds"][0]["execution_result"]["stdout"] == "42\n"
    assert body["usage"]["total_tokens"] > 0
    # the next task remembers the conversation
    fake_llm.script("<answer>still 42")
    await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "and now?"})
    history = [m["content"] for m in fake_llm.requests[-1]["messages"]]
    assert "compute x" in history and "<answer>x is 42" in history and history[-1] == "and now?"


@pytest.mark.parametrize("dsagent_config", [{"max_rounds": 2}], indirect=True)
async def test_max_rounds(client, fake_llm):
    fake_llm.default = "<plan>\n1. [ ] loop\n</plan><code>print('again')"
    sid = await client.session()
    events = await client.chat_stream(sid, "loop forever")
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    assert len(rounds) == 2 and len(fake_llm.requests) == 2
    assert rounds[-1]["stop_reason"] == "max_rounds" and rounds[-1]["is_complete"]
    assert rounds[-1]["content"].endswith("[Max rounds (2) reached]")
    assert events[-1]["event"] == "done"


async def test_cancel_interrupts_the_kernel(client, fake_llm):
    fake_llm.script("<code>import time\nfor i in range(300):\n    time.sleep(0.1)")
    sid = await client.session()
    seen = []
    async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "wait"}):
        seen.append(ev)
        if ev["event"] == "code_executing":
            r = await client.call("POST", f"/api/sessions/{sid}/chat/cancel")
            assert r.json() == {"success": True, "message": "Task cancelled"}
    final = [e["data"] for e in seen if e["event"] == "round_complete"][-1]
    assert final["stop_reason"] == "cancelled" and final["answer"] == "Task cancelled by user." and final["is_complete"]
    assert seen[-1]["event"] == "done"
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print('alive')"})
    assert r.json()["stdout"] == "alive\n"
    r = await client.call("POST", f"/api/sessions/{sid}/chat/cancel")
    assert r.json() == {"success": False, "message": "No task is running"}


async def test_keepalive_comments_while_a_cell_runs(client, fake_llm):
    """With ``sse_keepalive`` 0.5 s, a 1.6 s cell is bridged by keepalive comments, and only by them."""
    fake_llm.script("<code>\nimport time; time.sleep(1.6)", "<answer>slept")
    sid = await client.session()
    await client.call("GET", f"/api/sessions/{sid}/kernel")  # booted: the cell is all the wait
    frames = [ev async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "nap"})]
    seen = [ev["event"] for ev in frames]
    during = seen[seen.index("code_executing") + 1 : seen.index("code_result")]
    assert 2 <= len(during) <= 5 and set(during) == {"comment"}  # ~3; never one per poll
    assert {ev["data"] for ev in frames if ev["event"] == "comment"} == {"keepalive"}
    assert seen[-1] == "done"


async def test_disconnect_then_resume(client, fake_llm):
    fake_llm.script(
        "<plan>\n1. [ ] a\n2. [ ] b\n</plan><code>import time; time.sleep(1); print('a')",
        "<plan>\n1. [x] a\n2. [ ] b\n</plan><code>print('b')",
        "<answer>both",
    )
    sid = await client.session()
    first = []
    async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "go"}):
        first.append(ev)
        if ev["event"] == "code_executing":
            break  # the client drops the connection mid-task
    last_id = [e["id"] for e in first if e["id"] is not None][-1]
    rest = [e async for e in client.events("GET", f"/api/sessions/{sid}/chat/stream", headers={"Last-Event-ID": str(last_id)})]
    rest = [e for e in rest if e["event"] != "comment"]
    # live outputs of the running cell carry no id; the logged events go on from the last one seen
    assert [e["id"] for e in rest if e["id"] is not None][0] == last_id + 1 and rest[-1]["event"] == "done"
    assert names(first) + names(rest) == [
        "thinking", "llm_response", "plan", "code_executing", "code_result", "round_complete",
        "thinking", "llm_response", "plan", "code_executing", "code_result", "round_complete",
        "thinking", "llm_response", "round_complete", "done",
    ]
    # after the task: following the latest task replays it whole, then ends
    replay = [e async for e in client.events("GET", f"/api/sessions/{sid}/chat/stream")]
    assert names(replay) == names(first) + names(rest)


async def test_busy_session(client, fake_llm):
    fake_llm.script(FakeReply(text="<code>import time; time.sleep(1.5)", delay=0.2), "<answer>ok")
    sid = await client.session()
    stream = asyncio.ensure_future(client.chat_stream(sid, "slow"))
    await asyncio.sleep(1.0)
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "second"})
    assert r.status_code == 409 and "busy" in r.json()["detail"]
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print(1)"})
    assert r.status_code == 409
    r = await client.call("GET", f"/api/sessions/{sid}/kernel")
    assert r.status_code == 200 and r.json()["is_running"]
    events = await stream
    assert events[-1]["event"] == "done" and names(events).count("round_complete") == 2


async def test_model_500_then_success(client, fake_llm):
    fake_llm.script(FakeReply(status=500, text="overloaded"), "<answer>recovered")
    sid = await client.session()
    events = await client.chat_stream(sid, "try")
    assert events[-2]["data"]["answer"] == "recovered"


async def test_model_failing_for_good(client, fake_llm):
    fake_llm.default = ""
    fake_llm.script(*[FakeReply(status=500, text="down")] * 8)
    sid = await client.session()
    events = await client.chat_stream(sid, "try")
    assert names(events) == ["thinking", "error", "done"]
    assert "500" in events[1]["data"]["error"] and "Traceback" not in events[1]["data"]["error"]
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "again"})
    assert r.status_code == 502 and "500" in r.json()["detail"]
    # the session stays usable once the model answers again
    fake_llm.script("<answer>back")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "again"})
    assert r.status_code == 200 and r.json()["answer"] == "back"


async def test_bad_chat_requests(client):
    sid_ok = await client.session()
    r = await client.call("POST", f"/api/sessions/{sid_ok}/chat", json={})
    assert r.status_code == 422
    r = await client.call("POST", "/api/sessions/20990101_000000_aaaaaa/chat/stream", json={"message": "x"})
    assert r.status_code == 404
    r = await client.call("GET", f"/api/sessions/{sid_ok}/chat/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 400
    assert json.loads((await client.call("GET", f"/api/sessions/{sid_ok}/turns")).text)["total"] == 0


@pytest.mark.parametrize("dsagent_config", [{"context_tokens": 10}], indirect=True)
async def test_long_conversation_is_summarised(client, fake_llm):
    sid = await client.session()
    for i in range(5):
        fake_llm.script(f"<answer>reply {i}")
        await client.chat_stream(sid, f"question {i}")
    fake_llm.script("- the user asked five questions", "<answer>after summary")
    events = await client.chat_stream(sid, "question 5")
    assert events[-2]["data"]["answer"] == "after summary"
    summary_call, task_call = fake_llm.requests[-2], fake_llm.requests[-1]
    assert not summary_call.get("stream") and "question 0" in summary_call["messages"][1]["content"]
    sent = [m["content"] for m in task_call["messages"]]
    assert "Summary of the earlier conversation:\n- the user asked five questions" in sent
    assert "question 0" not in sent and "question 4" in sent
    # the full history is still served, summary or not
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()
    assert turns["total"] == 6


async def test_next_message_right_after_done(client, fake_llm):
    """Whoever hears ``done`` may send the next message at once: the session is already free."""
    sid = await client.session()
    for n in range(3):
        fake_llm.script(f"<answer>stream {n}</answer>", f"<answer>sync {n}</answer>")
        events = await client.chat_stream(sid, "first")
        assert events[-1]["event"] == "done"
        r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "right away"})
        assert r.status_code == 200 and r.json()["answer"] == f"sync {n}", r.text
