"""Sessions attached to a user's notebook: its kernel, shared with the user, never stopped by us."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nbformat
import pytest
from fake_llm import FakeReply
from jupyter_client.asynchronous import AsyncKernelClient

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, **getattr(request, "param", {})}


@pytest.fixture
def notebook(jp_root_dir):
    """``work/analysis.ipynb`` under the server root, never opened by anyone yet."""
    (jp_root_dir / "work").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("sales = load()")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, jp_root_dir / "work" / "analysis.ipynb")
    (jp_root_dir / "work" / "notes.txt").write_text("not a notebook")
    return "work/analysis.ipynb"


async def jupyter(jp_fetch, *path, method="GET", body=None):
    """Jupyter's own REST API (not ours)."""
    kwargs = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    r = await jp_fetch("api", *path, **kwargs)
    return json.loads(r.body) if r.body else None


async def open_in_lab(jp_fetch, path: str) -> str:
    """What JupyterLab does when it opens a notebook: a Jupyter session for its path; the kernel id."""
    body = {"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook", "kernel": {"name": "python3"}}
    return (await jupyter(jp_fetch, "sessions", method="POST", body=body))["kernel"]["id"]


@asynccontextmanager
async def user_client(jp_serverapp, kernel_id: str) -> AsyncIterator[AsyncKernelClient]:
    """A kernel client of the user's own, as the notebook's in JupyterLab."""
    client = AsyncKernelClient(connection_file=jp_serverapp.kernel_manager.get_kernel(kernel_id).connection_file)
    client.load_connection_file()
    client.start_channels()
    try:
        for _ in range(20):  # a kernel just started may not answer heartbeats yet: the client then gives up early
            try:
                await client.wait_for_ready(timeout=30)
                break
            except RuntimeError:
                await asyncio.sleep(0.5)
        yield client
    finally:
        client.stop_channels()


async def user_run(client: AsyncKernelClient, code: str) -> dict:
    reply = await client.execute_interactive(code, timeout=30)
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply


async def execute(client, sid: str, code: str) -> dict:
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": code})
    assert r.status_code == 200, r.text
    return r.json()


SHOW_NAMESPACE = """\
import os
print(os.getcwd())
print(sorted(k for k in globals() if not k.startswith('_') and k not in ('In', 'Out', 'get_ipython', 'exit', 'quit', 'open')))
print([k for k in globals() if 'dsagent' in k])"""


async def test_attach_starts_the_notebooks_kernel_through_jupyter(client, jp_fetch, notebook, jp_root_dir):
    r = await client.call("POST", "/api/sessions", json={"notebook_path": notebook})
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["notebook_path"] == notebook and session["kernel_id"]
    assert session["notebook_markdown_cells"] is True
    # JupyterLab opening the notebook finds this Jupyter session, with that very kernel
    (jupyter_session,) = await jupyter(jp_fetch, "sessions")
    assert jupyter_session["path"] == notebook and jupyter_session["type"] == "notebook"
    assert jupyter_session["kernel"]["id"] == session["kernel_id"]
    assert await open_in_lab(jp_fetch, notebook) == session["kernel_id"]
    # the setup leaves the user's namespace and working directory alone, but for one private helper
    result = await execute(client, session["id"], SHOW_NAMESPACE)
    cwd, names, private = result["stdout"].splitlines()
    assert cwd == str(jp_root_dir / "work")
    assert names == "['os']" and private == "['__dsagent_incarnation', '__dsagent_state']"
    # the session object and the list filter
    other = await client.session()
    listed = (await client.call("GET", "/api/sessions", params={"notebook_path": notebook})).json()
    assert [s["id"] for s in listed["sessions"]] == [session["id"]] and listed["total"] == 1
    unattached = (await client.call("GET", f"/api/sessions/{other}")).json()
    assert unattached["notebook_path"] is None and "kernel_id" in unattached


async def test_attach_to_a_running_kernel_and_work_with_the_users_variables(client, jp_fetch, jp_serverapp, fake_llm, notebook):
    kernel_id = await open_in_lab(jp_fetch, notebook)
    async with user_client(jp_serverapp, kernel_id) as user:
        await user_run(user, "import pandas as pd\nsales = pd.DataFrame({'month': [1, 2, 3], 'revenue': [10, 30, 20]})")
        r = await client.call("POST", "/api/sessions", json={"notebook_path": notebook})
        session = r.json()
        assert r.status_code == 201 and session["kernel_id"] == kernel_id
        fake_llm.script(
            "<code>\nbest = int(sales.loc[sales.revenue.idxmax(), 'month'])\nsales.head()\n</code>",
            "<answer>Month 2 is best.</answer>",
        )
        events = await client.chat_stream(session["id"], "which month is best?")
        (result,) = [e["data"] for e in events if e["event"] == "code_result"]
        assert result["success"], result
        assert "<table" in result["outputs"][-1]["data"]["text/html"]
        # the model was told about the user's dataframe and the notebook it works in
        system = fake_llm.requests[0]["messages"][0]["content"]
        assert "sales: 3 rows x 2 cols [month, revenue]" in system
        assert "work/analysis.ipynb" in system and "../dsagent/sessions/" in system
        # what the agent defined stays in the user's kernel; the user's data is untouched
        reply = await user.execute_interactive("print(best, sales.shape)", timeout=30, output_hook=outputs_into(seen := []))
        assert reply["content"]["status"] == "ok" and seen == ["2 (3, 2)\n"]
    assert kernel_id in [k["id"] for k in await jupyter(jp_fetch, "kernels")]


def outputs_into(texts: list[str]):
    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            texts.append(msg["content"]["text"])
    return hook


async def test_bad_notebook_paths(client, notebook, jp_root_dir):
    for path, status in [
        ("work/missing.ipynb", 404), ("work/notes.txt", 400), ("../outside.ipynb", 400),
        ("work/../../outside.ipynb", 400), (str(jp_root_dir / notebook), 400), ("work", 400), ("", 400),
    ]:
        r = await client.call("POST", "/api/sessions", json={"notebook_path": path})
        assert r.status_code == status, (path, r.text)
        detail = r.json()["detail"]
        assert str(jp_root_dir) not in detail.replace(path, "")  # only the path the client gave
    sid = await client.session()
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"notebook_path": "work/missing.ipynb"})
    assert r.status_code == 404 and r.json()["detail"] == "Notebook work/missing.ipynb not found"
    # nothing was attached, nor started in Jupyter, by the refused requests
    sessions = (await client.call("GET", "/api/sessions")).json()["sessions"]
    assert [s["notebook_path"] for s in sessions] == [None]


async def test_one_session_per_notebook(client, notebook):
    first = (await client.call("POST", "/api/sessions", json={"notebook_path": notebook})).json()
    r = await client.call("POST", "/api/sessions", json={"notebook_path": "work/./analysis.ipynb"})
    assert r.status_code == 409
    assert r.json() == {"detail": f"Notebook {notebook} already has DSAgent session {first['id']}", "session_id": first["id"]}
    other = await client.session()
    r = await client.call("PUT", f"/api/sessions/{other}", json={"notebook_path": notebook})
    assert r.status_code == 409 and r.json()["session_id"] == first["id"]
    # archiving the first frees the notebook (and detaches it)
    archived = (await client.call("POST", f"/api/sessions/{first['id']}/archive")).json()
    assert archived["status"] == "archived" and archived["notebook_path"] is None
    r = await client.call("PUT", f"/api/sessions/{other}", json={"notebook_path": notebook})
    assert r.status_code == 200 and r.json()["notebook_path"] == notebook


async def test_detach_and_delete_leave_the_users_kernel_running(client, jp_fetch, jp_serverapp, notebook):
    kernel_id = await open_in_lab(jp_fetch, notebook)
    async with user_client(jp_serverapp, kernel_id) as user:
        await user_run(user, "mine = 41")
        sid = (await client.call("POST", "/api/sessions", json={"notebook_path": notebook})).json()["id"]
        assert (await execute(client, sid, "print(mine + 1)"))["stdout"] == "42\n"
        # detach: the session gets a kernel of its own, the notebook keeps its kernel and variables
        r = await client.call("PUT", f"/api/sessions/{sid}", json={"notebook_path": None, "name": "renamed"})
        detached = r.json()
        assert r.status_code == 200 and detached["notebook_path"] is None and detached["name"] == "renamed"
        assert (await execute(client, sid, "print('mine' in globals())"))["stdout"] == "False\n"
        own = (await client.call("GET", f"/api/sessions/{sid}")).json()["kernel_id"]
        assert own != kernel_id
        # attach again, then delete: our own kernel went at the attach, the user's kernel survives the delete
        r = await client.call("PUT", f"/api/sessions/{sid}", json={"notebook_path": notebook})
        assert r.json()["kernel_id"] == kernel_id
        assert (await client.call("DELETE", f"/api/sessions/{sid}")).status_code == 204
        kernels = [k["id"] for k in await jupyter(jp_fetch, "kernels")]
        assert kernel_id in kernels and own not in kernels
        assert [s["kernel"]["id"] for s in await jupyter(jp_fetch, "sessions")] == [kernel_id]
        reply = await user.execute_interactive("print(mine)", timeout=30, output_hook=outputs_into(seen := []))
        assert reply["content"]["status"] == "ok" and seen == ["41\n"]


async def test_reset_restarts_the_users_kernel_only_when_asked(client, jp_fetch, notebook):
    session = (await client.call("POST", "/api/sessions", json={"notebook_path": notebook})).json()
    sid = session["id"]
    await execute(client, sid, "kept = 1")
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/reset")
    assert r.status_code == 409
    assert "restarts the kernel of notebook work/analysis.ipynb" in r.json()["detail"]
    assert (await execute(client, sid, "print(kept)"))["stdout"] == "1\n"
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/reset", params={"restart_user_kernel": "true"})
    assert r.status_code == 200 and r.json()["variables"] == [], r.text
    assert (await execute(client, sid, "print('kept' in globals())"))["stdout"] == "False\n"
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/reset", json={"restart_user_kernel": True})
    assert r.status_code == 200
    # the same kernel, restarted: JupyterLab stays connected to it
    assert (await client.call("GET", f"/api/sessions/{sid}")).json()["kernel_id"] == session["kernel_id"]
    assert session["kernel_id"] in [k["id"] for k in await jupyter(jp_fetch, "kernels")]


@pytest.mark.parametrize("dsagent_config", [{"code_timeout": 2}], indirect=True)
async def test_a_users_running_cell_makes_the_agent_wait(client, jp_fetch, jp_serverapp, notebook):
    """The agent's cell waits for the user's (longer than the agent's time limit) and outputs never mix."""
    kernel_id = await open_in_lab(jp_fetch, notebook)
    session = (await client.call("POST", "/api/sessions", json={"notebook_path": notebook})).json()
    await execute(client, session["id"], "ready = True")  # attached and set up
    async with user_client(jp_serverapp, kernel_id) as user:
        seen: list[str] = []
        users_cell = asyncio.ensure_future(user.execute_interactive(
            "import time\nprint('user starts')\ntime.sleep(4)\nprint('user ends')", timeout=30, output_hook=outputs_into(seen),
        ))
        while seen != ["user starts\n"]:
            await asyncio.sleep(0.05)
        agent = await execute(client, session["id"], "print('agent runs')\nagent_value = 7")
        reply = await users_cell
    assert reply["content"]["status"] == "ok"
    assert agent["success"], agent
    assert agent["stdout"] == "agent runs\n" and agent["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "agent runs\n"}
    ]
    assert seen == ["user starts\n", "user ends\n"]
    assert (await execute(client, session["id"], "print(agent_value)"))["stdout"] == "7\n"


async def test_the_model_sees_the_notebook(client, jp_ws_fetch, fake_llm, notebook):
    """The saved notebook when the client sends nothing; the client's live cells (unsaved edits) when it does."""
    sid = (await client.call("POST", "/api/sessions", json={"notebook_path": notebook})).json()["id"]
    fake_llm.script("<answer>Nothing to run.</answer>")
    await client.chat_stream(sid, "what does my notebook do?")
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "## The user's notebook `work/analysis.ipynb`" in system
    assert "[0] code:\nsales = load()" in system
    live = {
        "cells": [
            {"cell_type": "markdown", "source": "# Sales"},
            {"cell_type": "code", "source": "total = sales.revenue.sum(", "execution_count": 3, "outputs": [
                {"output_type": "error", "ename": "SyntaxError", "evalue": "'(' was never closed",
                 "traceback": ["\x1b[0;36m  Cell \x1b[0;32mIn[3], line 1\x1b[0m", "SyntaxError: '(' was never closed"]},
            ]},
            {"cell_type": "code", "source": "sales.plot()", "outputs": [
                {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/html": "<b>x</b>"}, "metadata": {}},
            ]},
            {"cell_type": "code", "source": "x" * 10_000},
        ],
        "active_cell_index": 1,
        "selected_cell_indices": [2],
    }
    fake_llm.script("<answer>The parenthesis is not closed.</answer>")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "Fix the error in cell [1].", "notebook_context": live})
    assert r.status_code == 200, r.text
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "sales = load()" not in system  # the live cells, not the saved file
    assert "[1] code, In [3] (active):\ntotal = sales.revenue.sum(\nOutput:\n  Cell In[3], line 1\nSyntaxError: '(' was never closed" in system
    assert "[2] code (selected):\nsales.plot()\nOutput:\n[image: image/png]" in system
    assert "[3] code:\n" + "x" * 3000 + "\n[... 7000 characters omitted ...]" in system
    # the same over the WebSocket
    ws = await jp_ws_fetch("dsagent", "ws", "chat", sid)
    await ws.read_message()  # connected
    fake_llm.script("<answer>Still not closed.</answer>")
    live["active_cell_index"] = 2
    ws.write_message(json.dumps({"type": "chat", "content": "Explain cell [2].", "notebook_context": live}))
    while json.loads(await ws.read_message())["type"] != "done":
        pass
    ws.close()
    assert "[2] code (active):\nsales.plot()" in fake_llm.requests[-1]["messages"][0]["content"]
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "x", "notebook_context": {"cells": [{"cell_type": "bogus"}]}})
    assert r.status_code == 422


async def test_stop_interrupts_the_agents_cell_never_the_users(client, jp_fetch, jp_serverapp, fake_llm, notebook):
    kernel_id = await open_in_lab(jp_fetch, notebook)
    sid = (await client.call("POST", "/api/sessions", json={"notebook_path": notebook})).json()["id"]
    await execute(client, sid, "kept = 1")
    async with user_client(jp_serverapp, kernel_id) as user:
        # a task cancelled while it waits for the user's cell: the user's cell ends normally, the agent's never runs
        seen: list[str] = []
        users_cell = None
        fake_llm.script(FakeReply(text="<code>\nagent_ran = True\n</code>", chunk_size=4, chunk_delay=0.1))
        async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "go"}):
            if ev["event"] == "llm_delta" and users_cell is None:  # the user runs a cell while the model writes
                users_cell = asyncio.ensure_future(user.execute_interactive(
                    "import time\nprint('user starts')\ntime.sleep(4)\nprint('user ends')", timeout=30,
                    output_hook=outputs_into(seen),
                ))
            if ev["event"] == "code_executing":
                await asyncio.sleep(0.5)
                assert seen == ["user starts\n"]
                assert (await client.call("POST", f"/api/sessions/{sid}/chat/cancel")).json()["success"]
        reply = await users_cell
        assert reply["content"]["status"] == "ok" and seen == ["user starts\n", "user ends\n"]
        # Stop during the agent's own long cell interrupts it; the user's variables stay
        fake_llm.script("<code>\nimport time\nprint('agent starts')\ntime.sleep(30)\n</code>")
        events = []
        async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "wait"}):
            events.append(ev)
            if ev["event"] == "code_output":
                assert (await client.call("POST", f"/api/sessions/{sid}/chat/cancel")).json()["success"]
        final = [e["data"] for e in events if e["event"] == "round_complete"][-1]
        assert final["stop_reason"] == "cancelled"
        reply = await user.execute_interactive("print(kept, 'agent_ran' in globals())", timeout=30, output_hook=outputs_into(after := []))
        assert reply["content"]["status"] == "ok" and after == ["1 False\n"]
