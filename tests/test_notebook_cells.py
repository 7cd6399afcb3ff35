"""The agent's cells in an attached notebook: appended by the server unless a window claims the notebook."""

from __future__ import annotations

import asyncio
import time

import httpx
import nbformat
import pytest
from launch import child_env
from test_serve import Served

pytestmark = pytest.mark.timeout(120)

TASK = (
    "<intent>complex</intent><plan>\n1. [ ] Build the table\n2. [ ] Report\n</plan>\n"
    "<code>\nsales = pd.DataFrame({'month': [1, 2], 'revenue': [10, 30]})\nsales\n</code>",
    "<plan>\n1. [x] Build the table\n2. [x] Report\n</plan>\n<answer>Month 2 sold most.</answer>",
)


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, **getattr(request, "param", {})}


@pytest.fixture
def notebook(jp_root_dir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import pandas as pd")])
    nbformat.write(nb, jp_root_dir / "analysis.ipynb")
    return jp_root_dir / "analysis.ipynb"


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


async def settled(path, count: int, timeout: float = 20) -> nbformat.NotebookNode:
    """The notebook once it holds ``count`` cells (the server writes a moment after the events)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            nb = read(path)
        except nbformat.reader.NotJSONError:  # caught mid-save
            nb = None
        if (nb is not None and len(nb.cells) >= count) or time.monotonic() > deadline:
            return nb if nb is not None else read(path)
        await asyncio.sleep(0.1)


async def attach(client) -> str:
    r = await client.call("POST", "/api/sessions", json={"notebook_path": "analysis.ipynb"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_closed_notebook_gets_the_cells_from_the_server(client, fake_llm, notebook):
    sid = await attach(client)
    await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "import pandas as pd"})
    fake_llm.script(*TASK)
    events = await client.chat_stream(sid, "which month sold most?")
    nb = await settled(notebook, 4)
    nbformat.validate(nb)
    user, plan, code, answer = nb.cells
    assert user.source == "import pandas as pd" and "dsagent" not in user.metadata
    # one plan cell per task, ticked as the task advanced
    assert plan.cell_type == "markdown" and plan.source == "**Plan**\n\n- [x] Build the table\n- [x] Report"
    assert plan.metadata.dsagent == {"session_id": sid, "round": 1, "kind": "plan"}
    (result,) = [e["data"] for e in events if e["event"] == "code_result"]
    assert code.cell_type == "code" and code.source.startswith("sales = pd.DataFrame(")
    assert code.execution_count == result["execution_count"] and code.metadata.dsagent == {"session_id": sid, "round": 1}
    assert "<table" in code.outputs[0]["data"]["text/html"] and code.outputs[0]["output_type"] == "execute_result"
    assert answer.source == "Month 2 sold most." and answer.metadata.dsagent == {"session_id": sid, "round": 2, "kind": "answer"}
    session = (await client.call("GET", f"/api/sessions/{sid}")).json()
    assert session["written_through"] == events[-1]["id"]
    # the next task adds its own cells after these, never these again; code run by hand is no agent cell
    await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print('by hand')"})
    fake_llm.script("<code>\nprint(sales.revenue.sum())\n</code>", "<answer>40 in all.</answer>")
    await client.chat_stream(sid, "total?")
    await settled(notebook, 6)
    await asyncio.sleep(0.5)  # nothing more comes
    nb = read(notebook)
    assert [c.source for c in nb.cells[4:]] == ["print(sales.revenue.sum())", "40 in all."]
    assert nb.cells[4].outputs == [{"output_type": "stream", "name": "stdout", "text": "40\n"}]


@pytest.mark.parametrize("dsagent_config", [{"notebook_markdown_cells": False}], indirect=True)
async def test_markdown_cells_can_be_turned_off(client, fake_llm, notebook):
    sid = await attach(client)
    assert (await client.call("GET", f"/api/sessions/{sid}")).json()["notebook_markdown_cells"] is False
    fake_llm.script(*TASK)
    await client.chat_stream(sid, "which month sold most?")
    await settled(notebook, 2)
    await asyncio.sleep(0.5)
    assert [c.cell_type for c in read(notebook).cells] == ["code", "code"]


async def test_a_live_claim_keeps_the_server_out_and_one_window_holds_it(client, fake_llm, notebook):
    sid = await attach(client)
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "window-a"})
    assert r.status_code == 200 and r.json() == {"client_id": "window-a", "expires_in": 30.0, "written_through": None}
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "window-b"})
    assert r.status_code == 409 and r.json()["client_id"] == "window-a"
    fake_llm.script(*TASK)
    events = await client.chat_stream(sid, "which month sold most?")
    await asyncio.sleep(1)  # well past the moment the server would have written
    assert len(read(notebook).cells) == 1
    # the window reports what it has put in its notebook; another window's release changes nothing
    last = events[-1]["id"]
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "window-a", "written_through": last})
    assert r.json()["written_through"] == last
    assert (await client.call("DELETE", f"/api/sessions/{sid}/notebook/claim", params={"client_id": "window-b"})).status_code == 204
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "window-b"})
    assert r.status_code == 409
    # the holder releases: the server has nothing to add (the window wrote it all), and window-b may claim
    assert (await client.call("DELETE", f"/api/sessions/{sid}/notebook/claim", params={"client_id": "window-a"})).status_code == 204
    await asyncio.sleep(1)
    assert len(read(notebook).cells) == 1
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "window-b"})
    assert r.status_code == 200
    # claims are for attached sessions only
    other = await client.session()
    r = await client.call("POST", f"/api/sessions/{other}/notebook/claim", json={"client_id": "window-a"})
    assert r.status_code == 400


@pytest.mark.parametrize("dsagent_config", [{"notebook_claim_lease": 2, "notebook_markdown_cells": False}], indirect=True)
async def test_a_claim_that_lapses_mid_task_hands_over_without_doubles(client, fake_llm, notebook):
    """The tab closes during a task: the server writes what the window had not, and nothing twice."""
    sid = await attach(client)
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "tab"})
    assert r.json()["expires_in"] == 2
    fake_llm.script(
        "<code>\nprint('first')\n</code>",
        "<code>\nimport time\ntime.sleep(4)\nprint('second')\n</code>",
        "<answer>done</answer>",
    )

    async def heartbeat() -> None:  # the open tab renews its claim on a timer
        while True:
            await asyncio.sleep(0.5)
            await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "tab"})

    beating = asyncio.ensure_future(heartbeat())
    async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "go"}):
        if ev["event"] == "code_result" and not beating.done():
            # the window puts the first cell in its notebook and saves; then the tab is closed (no more heartbeats)
            beating.cancel()
            nb = read(notebook)
            nb.cells.append(nbformat.v4.new_code_cell("print('first')", execution_count=ev["data"]["execution_count"]))
            nb.cells[-1].metadata["dsagent"] = {"session_id": sid, "round": 1}
            nbformat.write(nb, notebook)
            r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "tab", "written_through": ev["id"]})
            assert r.status_code == 200
    await settled(notebook, 3)
    await asyncio.sleep(0.5)
    nb = read(notebook)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == ["import pandas as pd", "print('first')", "import time\ntime.sleep(4)\nprint('second')"]
    assert nb.cells[2].outputs[0]["text"] == "second\n"


def test_a_restart_does_not_write_cells_twice(tmp_path, fake_llm):
    """``dsagent serve`` (no window anywhere): the server writes; after a restart it goes on from where it was."""
    root = tmp_path / "root"
    root.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), root / "analysis.ipynb")
    env = child_env(LLM_API_BASE=fake_llm.api_base, DSAGENT_DEFAULT_MODEL="scripted")
    fake_llm.script("<code>\nprint('one')\n</code>", "<answer>first</answer>", "<code>\nprint('two')\n</code>", "<answer>second</answer>")
    served = Served(root, env).start()
    try:
        r = httpx.post(f"{served.url}/api/sessions", json={"notebook_path": "analysis.ipynb"})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        assert httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "one"}, timeout=60).status_code == 200
    finally:
        served.stop()  # right after the task: the stop writes what was pending
    assert [c.source for c in read(root / "analysis.ipynb").cells] == ["print('one')", "first"]
    served = Served(root, env).start()
    try:
        assert httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "two"}, timeout=60).status_code == 200
    finally:
        served.stop()
    nb = read(root / "analysis.ipynb")
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == ["print('one')", "first", "print('two')", "second"]
