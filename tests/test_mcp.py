"""The MCP endpoint end to end: the official MCP Python SDK client over HTTP, a real Jupyter server,
real kernels and litellm, the scripted model."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import httpx
import pytest
from mcp.types import ElicitResult
from mcp_client import ACCEPT, INITIALIZE, Progress, connect, error_text, jsonrpc_error, structured

pytestmark = pytest.mark.timeout(120)

TOOLS = {
    "list_sessions", "create_session", "run_task", "get_task", "cancel_task", "get_approval", "respond_approval",
    "execute_code", "read_notebook", "list_files", "get_artifact",
}
COMPUTE = ["<code>x = 21 * 2\nprint(x)", "<answer>x is 42"]
PLOT = [
    "<code>\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "df = pd.DataFrame({'month': [1, 2, 3], 'sales': [10, 30, 20]})\ndf.to_csv('artifacts/sales.csv', index=False)\n"
    "fig, ax = plt.subplots()\nax.plot(df.month, df.sales)\nfig.savefig('artifacts/trend.png')\nplt.show()\n</code>",
    "<answer>Sales peaked in month 2.",
]


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, **getattr(request, "param", {})}


@pytest.fixture
def mcp_url(jp_http_port, jp_base_url, http_server_client):
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}dsagent/mcp"


@pytest.fixture
def mcp(mcp_url, jp_auth_header):
    """Opens an MCP session with the server's token."""
    return lambda elicitation=None: connect(mcp_url, jp_auth_header, elicitation)


async def new_session(session, **arguments) -> str:
    return structured(await session.call_tool("create_session", arguments))["id"]


async def test_tools_and_their_schemas(mcp):
    async with mcp() as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    run = tools["run_task"]
    assert set(run.inputSchema["required"]) == {"session_id", "message"}
    assert run.inputSchema["properties"]["wait_seconds"]["maximum"] == 300
    assert set(run.outputSchema["properties"]) >= {"status", "answer", "rounds", "plan", "usage", "next_event"}
    assert tools["get_task"].outputSchema == run.outputSchema
    for name in ("run_task", "execute_code"):
        assert tools[name].annotations.destructiveHint is True and not tools[name].annotations.readOnlyHint
    for name in ("list_sessions", "get_task", "get_approval", "read_notebook", "list_files", "get_artifact"):
        assert tools[name].annotations.readOnlyHint is True, name
    assert tools["create_session"].outputSchema["properties"]["id"]
    assert tools["respond_approval"].inputSchema["properties"]["action"]


async def test_run_task_reports_progress_in_order_and_answers(mcp, fake_llm, client):
    fake_llm.script(*COMPUTE)
    progress = Progress()
    async with mcp() as session:
        sid = await new_session(session, name="mcp")
        result = await session.call_tool("run_task", {"session_id": sid, "message": "compute x"}, progress_callback=progress)
        task = structured(result)
        listed = structured(await session.call_tool("list_sessions", {}))
    assert task["status"] == "completed" and task["answer"] == "x is 42"
    assert [(r["round"], r["code"], r["success"], r["output"]) for r in task["rounds"]] == [
        (1, "x = 21 * 2\nprint(x)", True, "42\n"), (2, None, None, ""),
    ]
    assert task["usage"]["total_tokens"] > 0 and result.content[0].text == "Task completed: x is 42"
    values = [p for p, _ in progress.seen]
    assert values == sorted(set(values)) and len(values) >= 4
    steps = [m for m in progress.messages if m in ("round 1: running code", "round 1 complete", "round 2 complete", "task finished")]
    assert steps == ["round 1: running code", "round 1 complete", "round 2 complete", "task finished"]
    assert listed["total"] == 1 and listed["sessions"][0]["id"] == sid and listed["sessions"][0]["message_count"] > 0
    # the same task as REST clients see it
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert [t["round"] for t in turns] == [1, 2] and turns[-1]["answer"] == "x is 42"


async def test_plot_task_returns_the_figure_and_artifacts(mcp, fake_llm):
    fake_llm.script(*PLOT)
    async with mcp() as session:
        sid = await new_session(session)
        result = await session.call_tool("run_task", {"session_id": sid, "message": "plot sales"})
        images = [block for block in result.content if block.type == "image"]
        png = await session.call_tool("get_artifact", {"session_id": sid, "name": "trend.png"})
        csv = await session.call_tool("get_artifact", {"session_id": sid, "name": "sales.csv"})
        missing = await session.call_tool("get_artifact", {"session_id": sid, "name": "nope.png"})
        files = structured(await session.call_tool("list_files", {"session_id": sid, "category": "artifacts"}))
        resources = (await session.list_resources()).resources
        read = await session.read_resource(f"dsagent://sessions/{sid}/artifacts/trend.png")
    assert structured(result)["status"] == "completed"
    assert len(images) == 1 and images[0].mimeType == "image/png"
    assert base64.b64decode(images[0].data).startswith(b"\x89PNG\r\n\x1a\n")
    assert [b.type for b in png.content] == ["image"] and base64.b64decode(png.content[0].data).startswith(b"\x89PNG")
    assert csv.content[0].type == "text" and csv.content[0].text.splitlines() == ["month,sales", "1,10", "2,30", "3,20"]
    assert "Artifact nope.png not found" in error_text(missing)
    assert sorted(f["name"] for f in files["files"]) == ["sales.csv", "trend.png"]
    kinds = {str(r.uri): r.mimeType for r in resources}
    assert kinds[f"dsagent://sessions/{sid}/artifacts/trend.png"] == "image/png"
    assert kinds[f"dsagent://sessions/{sid}/notebook"] == "application/x-ipynb+json"
    assert read.contents[0].mimeType == "image/png" and base64.b64decode(read.contents[0].blob).startswith(b"\x89PNG")


async def test_wait_seconds_expire_then_get_task_follows_to_the_end(mcp, fake_llm):
    fake_llm.script("<code>import time; time.sleep(3)\nprint('slept')", "<answer>rested")
    async with mcp() as session:
        sid = await new_session(session)
        first = structured(await session.call_tool("run_task", {"session_id": sid, "message": "rest", "wait_seconds": 1}))
        assert first["status"] == "running" and first["answer"] is None and first["next_event"] > 0
        busy = await session.call_tool("run_task", {"session_id": sid, "message": "again"})
        assert "busy" in error_text(busy)
        rest = structured(await session.call_tool("get_task", {"session_id": sid, "after_event": first["next_event"]}))
        again = structured(await session.call_tool("get_task", {"session_id": sid, "after_event": rest["next_event"]}))
        whole = structured(await session.call_tool("get_task", {"session_id": sid}))
    assert rest["status"] == "completed" and rest["answer"] == "rested"
    assert [r["round"] for r in rest["rounds"]] == [1, 2] and rest["rounds"][0]["output"] == "slept\n"
    assert again["status"] == "completed" and again["rounds"] == [] and again["answer"] == "rested"
    assert whole["status"] == "completed" and len(whole["rounds"]) == 2


async def test_a_client_leaving_ends_its_wait_not_the_task(mcp, fake_llm, jp_serverapp):
    fake_llm.script("<code>import time; time.sleep(2)\nprint('finished')", "<answer>all done")
    service = jp_serverapp.web_app.settings["dsagent"]
    async with mcp() as session:
        sid = await new_session(session)
    started = asyncio.Event()

    async def progress(value, total, message):
        if message == "round 1: running code":
            started.set()

    async def call():
        async with mcp() as session:
            await session.call_tool("run_task", {"session_id": sid, "message": "work"}, progress_callback=progress)

    caller = asyncio.ensure_future(call())
    await asyncio.wait_for(started.wait(), 60)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    live = service.get(sid)
    for _ in range(100):  # the server notices the closed stream and drops its subscription
        if not live.subscribers:
            break
        await asyncio.sleep(0.05)
    assert not live.subscribers and live.busy
    async with mcp() as session:
        task = structured(await session.call_tool("get_task", {"session_id": sid}))
    assert task["status"] == "completed" and task["answer"] == "all done" and task["rounds"][0]["output"] == "finished\n"


async def test_cancel_task_interrupts_the_kernel(mcp, fake_llm):
    fake_llm.script("<code>import time\nfor i in range(300):\n    time.sleep(0.1)")
    running = asyncio.Event()

    async def progress(value, total, message):
        if message == "round 1: running code":
            running.set()

    async with mcp() as session:
        sid = await new_session(session)
        call = asyncio.ensure_future(session.call_tool("run_task", {"session_id": sid, "message": "wait"}, progress_callback=progress))
        await asyncio.wait_for(running.wait(), 60)
        cancelled = structured(await session.call_tool("cancel_task", {"session_id": sid}))
        task = structured(await call)
        alive = structured(await session.call_tool("execute_code", {"session_id": sid, "code": "print('alive')"}))
        again = structured(await session.call_tool("cancel_task", {"session_id": sid}))
    assert cancelled == {"success": True, "message": "Task cancelled"}
    assert task["status"] == "cancelled" and task["answer"] == "Task cancelled by user."
    assert alive["status"] == "executed" and alive["output"] == "alive\n"
    assert again == {"success": False, "message": "No task is running"}


@pytest.mark.parametrize("dsagent_config", [{"mcp_allow_agent_approval": False}], indirect=True)
async def test_agents_may_not_approve_by_default(mcp, fake_llm, client):
    fake_llm.script(*COMPUTE)
    async with mcp() as session:  # no elicitation: approvals come back as awaiting_approval
        sid = await new_session(session, hitl_mode="full")
        paused = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
        pending = structured(await session.call_tool("get_approval", {"session_id": sid}))
        refused = await session.call_tool("respond_approval", {"session_id": sid, "action": "approve"})
        assert paused["status"] == "awaiting_approval" and paused["approval"]["type"] == "code"
        assert paused["approval"]["code"] == "x = 21 * 2\nprint(x)" and "approve" in paused["approval"]["allowed_actions"]
        assert pending["approval"] == paused["approval"] and pending["status"]["awaiting_type"] == "code"
        assert "mcp_allow_agent_approval" in error_text(refused)
        # a human approves in JupyterLab (REST here); get_task waits on, then returns the next pause
        waiting = asyncio.ensure_future(session.call_tool("get_task", {"session_id": sid, "after_event": paused["next_event"]}))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # the pause the caller knows of is waited on, not returned again
        assert (await client.call("POST", f"/api/sessions/{sid}/hitl/approve")).status_code == 200
        answer = structured(await waiting)
        assert answer["status"] == "awaiting_approval" and answer["approval"]["type"] == "answer"
        assert answer["rounds"][0]["output"] == "42\n"


@pytest.mark.parametrize("dsagent_config", [{"mcp_allow_agent_approval": True}], indirect=True)
async def test_agents_approve_when_the_admin_allows(mcp, fake_llm, client):
    fake_llm.script(*COMPUTE)
    async with mcp() as session:
        sid = await new_session(session, hitl_mode="full")
        paused = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
        modified = {"session_id": sid, "action": "modify", "modified_code": "x = 7 * 7\nprint(x)"}
        assert structured(await session.call_tool("respond_approval", modified))["message"] == "Code modification accepted"
        answer = structured(await session.call_tool("get_task", {"session_id": sid, "after_event": paused["next_event"]}))
        assert answer["approval"]["type"] == "answer" and answer["rounds"][0]["output"] == "49\n"
        approved = structured(await session.call_tool("respond_approval", {"session_id": sid, "action": "approve"}))
        done = structured(await session.call_tool("get_task", {"session_id": sid, "after_event": answer["next_event"]}))
    assert approved == {"success": True, "message": "Approved"}
    assert done["status"] == "completed" and done["answer"] == "x is 42"
    hitl = [d for t in (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"] for d in t["hitl"]]
    assert [d["action"] for d in hitl] == ["modify", "approve"] and hitl[0]["by"] == hitl[1]["by"]


async def test_full_mode_approved_through_elicitation(mcp, fake_llm, client):
    fake_llm.script(*COMPUTE)
    asked = []

    async def elicit(context, params):
        asked.append(params.message)
        if "Run this code?" in params.message:
            return ElicitResult(action="accept", content={"modified_code": "x = 6 * 7\nprint(x + 1)"})
        return ElicitResult(action="accept", content={})

    async with mcp(elicit) as session:
        sid = await new_session(session, hitl_mode="full")
        task = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
    assert task["status"] == "completed" and task["answer"] == "x is 42" and task["rounds"][0]["output"] == "43\n"
    assert "x = 21 * 2" in asked[0] and "Accept this answer?" in asked[1] and len(asked) == 2
    hitl = [d for t in (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"] for d in t["hitl"]]
    assert [d["action"] for d in hitl] == ["modify", "approve"]


async def test_full_mode_declined_through_elicitation(mcp, fake_llm, client):
    fake_llm.script(*COMPUTE)

    async def elicit(context, params):
        return ElicitResult(action="decline")

    async with mcp(elicit) as session:
        sid = await new_session(session, hitl_mode="full")
        task = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
        cell = structured(await session.call_tool("execute_code", {"session_id": sid, "code": "print('no')"}))
    assert task["status"] == "rejected" and task["rounds"][-1]["success"] is None  # the code never ran
    assert cell["status"] == "rejected" and cell["message"].startswith("Declined in the MCP client")
    hitl = [d for t in (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"] for d in t["hitl"]]
    assert hitl[0]["action"] == "reject" and hitl[0]["message"].startswith("Declined in the MCP client")


async def test_approval_answered_in_jupyterlab_while_the_client_asks(mcp, fake_llm, client):
    fake_llm.script(*COMPUTE)
    asking, answered = asyncio.Event(), asyncio.Event()

    async def elicit(context, params):
        if "Run this code?" in params.message:
            asking.set()
            await answered.wait()  # the human answers in JupyterLab meanwhile
            return ElicitResult(action="cancel")
        return ElicitResult(action="accept", content={})

    async with mcp(elicit) as session:
        sid = await new_session(session, hitl_mode="full")
        call = asyncio.ensure_future(session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
        await asyncio.wait_for(asking.wait(), 60)
        r = await client.call("POST", f"/api/sessions/{sid}/hitl/approve", json={"message": "go on"})
        assert r.json() == {"success": True, "message": "Approved"}
        answered.set()
        task = structured(await call)
    assert task["status"] == "completed" and task["rounds"][0]["output"] == "42\n"


async def test_execute_code_in_a_notebook_attached_session(mcp, jp_fetch, jp_serverapp, jp_root_dir):
    from test_attach import open_in_lab, user_client, user_run

    (jp_root_dir / "work").mkdir()
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("sales = [10, 30, 20]")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, jp_root_dir / "work" / "analysis.ipynb")
    kernel_id = await open_in_lab(jp_fetch, "work/analysis.ipynb")
    async with user_client(jp_serverapp, kernel_id) as user, mcp() as session:
        await user_run(user, "sales = [10, 30, 20]")
        sid = await new_session(session, notebook_path="work/analysis.ipynb")
        same = await new_session(session, notebook_path="work/analysis.ipynb")
        ran = structured(await session.call_tool("execute_code", {"session_id": sid, "code": "print(max(sales))"}))
        notebook = structured(await session.call_tool("read_notebook", {"session_id": sid}))
        by_path = structured(await session.call_tool("read_notebook", {"notebook_path": "work/analysis.ipynb", "limit": 1}))
    assert same == sid and ran["status"] == "executed" and ran["output"] == "30\n"
    assert notebook["path"] == "work/analysis.ipynb" and notebook["cells"][0]["source"] == "sales = [10, 30, 20]"
    assert by_path["cells"] == notebook["cells"][:1]


async def test_read_the_session_notebook(mcp, fake_llm):
    fake_llm.script(*PLOT)
    async with mcp() as session:
        sid = await new_session(session)
        await session.call_tool("run_task", {"session_id": sid, "message": "plot"})
        result = await session.call_tool("read_notebook", {"session_id": sid})
        none = await session.call_tool("read_notebook", {})
    notebook = structured(result)
    code = [c for c in notebook["cells"] if c["cell_type"] == "code" and "savefig" in c["source"]]
    assert len(code) == 1 and "[image image/png]" in code[0]["outputs"]
    assert [b.type for b in result.content].count("image") == 1
    assert "session_id or notebook_path" in error_text(none)


async def test_refusals_are_json_rpc_errors(mcp_url, jp_auth_header):
    async with httpx.AsyncClient(timeout=30) as http:
        missing = await http.post(mcp_url, json=INITIALIZE, headers=ACCEPT)
        wrong = await http.post(mcp_url, json=INITIALIZE, headers={**ACCEPT, "Authorization": "token wrong"})
        foreign = await http.post(mcp_url, json=INITIALIZE, headers={**ACCEPT, **jp_auth_header, "Origin": "https://evil.example"})
        bearer = await http.post(mcp_url, json=INITIALIZE, headers={**ACCEPT, "Authorization": jp_auth_header["Authorization"].replace("token", "Bearer")})
    assert missing.status_code == wrong.status_code == 401
    assert jsonrpc_error(missing)["code"] == jsonrpc_error(wrong)["code"] == -32001
    assert foreign.status_code == 403 and "Origin" in jsonrpc_error(foreign)["message"]
    assert bearer.status_code == 200 and bearer.headers["mcp-session-id"]


async def test_the_policy_and_spending_limits_hold(mcp, fake_llm, policy, spending, client):
    policy.settings = replace(policy.settings, allowed_models=("scripted", "gpt-4o-mini"))
    async with mcp() as session:
        outside = await session.call_tool("create_session", {"model": "gpt-4o"})
        assert "gpt-4o" in error_text(outside)
        sid = await new_session(session, model="gpt-4o-mini")
        spending.settings = replace(spending.settings, max_cost_per_user_per_day=1e-9)
        fake_llm.script(*COMPUTE)
        first = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
        refused = await session.call_tool("run_task", {"session_id": sid, "message": "more"})
    user = (await client.call("GET", "/api/policy")).json()["user"]
    assert first["status"] == "failed" and first["error"].startswith(f"Daily spending limit reached: {user} has spent $")
    assert error_text(refused).count("Daily spending limit reached") == 1
    assert (await client.call("GET", "/api/policy")).json()["remaining_today_usd"] == 0
