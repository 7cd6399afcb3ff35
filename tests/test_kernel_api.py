"""The kernel routes over HTTP: state, execute, reset, and one user of the kernel at a time."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


async def test_state_execute_reset(client, jp_serverapp, jp_fetch):
    sid = await client.session()
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert state["is_running"] and state["variables"] == []
    assert {"np", "pd", "plt", "os"} <= set(state["imports"])
    r = await client.call(
        "POST", f"/api/sessions/{sid}/kernel/execute",
        json={"code": "df = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\nn = 3\nprint(os.getcwd())"},
    )
    result = r.json()
    assert r.status_code == 200 and result["success"] and result["error"] is None
    assert result["stdout"].strip().endswith(f"dsagent/sessions/{sid}")
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert {v["name"]: v["type"] for v in state["variables"]} == {"df": "DataFrame", "n": "int"}
    frame = state["dataframes"][0]
    assert frame["name"] == "df" and frame["shape"] == [2, 2] and frame["columns"] == ["a", "b"]
    assert frame["dtypes"] == {"a": "int64", "b": "object"} or frame["dtypes"]["a"] == "int64"
    variables = (await client.call("GET", f"/api/sessions/{sid}/kernel/variables")).json()
    assert [v["name"] for v in variables] == ["df", "n"]
    assert (await client.call("GET", f"/api/sessions/{sid}")).json()["kernel_variables"] == 2
    # errors are a 200 with success false and no ANSI colour codes
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "1/0"})).json()
    assert not result["success"] and result["error"].startswith("ZeroDivisionError") and "\x1b" not in result["error"]
    # a figure comes back as an image
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "plt.plot([1, 2]); plt.show()"})).json()
    assert base64.b64decode(result["images"][0]["data"]).startswith(b"\x89PNG")
    kernel_id = jp_serverapp.web_app.settings["dsagent"].get(sid).kernel.kernel_id
    state = (await client.call("POST", f"/api/sessions/{sid}/kernel/reset")).json()
    assert state["variables"] == [] and {"np", "pd"} <= set(state["imports"])
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "import os; print(os.getcwd())"})).json()
    assert result["stdout"].strip().endswith(sid)
    # the server's kernel manager owns the kernel: it is listed by Jupyter's own API
    r = await jp_fetch("api", "kernels")
    assert kernel_id in [k["id"] for k in json.loads(r.body)]
    # direct executions are part of the session history
    messages = (await client.call("GET", f"/api/sessions/{sid}/messages", params={"role": "execution"})).json()
    assert messages["total"] == 4 and messages["messages"][1]["metadata"]["code"] == "1/0"


async def test_bad_requests(client):
    sid = await client.session()
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"source": "print(1)"})
    assert r.status_code == 422
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", content=b"print(1)")
    assert r.status_code == 422
    r = await client.call("GET", "/api/sessions/20990101_000000_abcdef/kernel")
    assert r.status_code == 404 and r.json()["detail"] == "Session 20990101_000000_abcdef not found"


async def test_archived_session_reports_stopped_kernel(client):
    sid = await client.session()
    await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "keep = 1"})
    archived = (await client.call("POST", f"/api/sessions/{sid}/archive")).json()
    assert archived["status"] == "archived"
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert state["is_running"] is False
    # using it again starts a fresh kernel on demand, and the session is active again
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print('keep' in dir())"})).json()
    assert result["stdout"] == "False\n"
    assert (await client.call("GET", f"/api/sessions/{sid}")).json()["status"] == "active"
    # so does a reset; and archiving through PUT stops the kernel as POST .../archive does
    assert (await client.call("POST", f"/api/sessions/{sid}/archive")).json()["status"] == "archived"
    assert (await client.call("POST", f"/api/sessions/{sid}/kernel/reset")).status_code == 200
    assert (await client.call("GET", f"/api/sessions/{sid}")).json()["status"] == "active"
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"status": "archived"})
    assert r.status_code == 200 and r.json()["status"] == "archived"
    assert (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()["is_running"] is False


async def kernels(jp_fetch) -> list[str]:
    """The kernels the Jupyter server runs (every one of them a session's, in these tests)."""
    return [k["id"] for k in json.loads((await jp_fetch("api", "kernels")).body)]


async def test_archive_right_after_create_leaves_no_kernel(client, jp_fetch):
    """Archive while the new session's kernel boots in the background: it waits for the boot and stops
    the kernel, instead of the boot starting one afterwards for an archived session."""
    sids = [await client.session() for _ in range(2)]
    replies = await asyncio.gather(*(client.call("POST", f"/api/sessions/{sid}/archive") for sid in sids * 2))
    assert [r.status_code for r in replies] == [200] * 4, [r.text for r in replies]
    await asyncio.sleep(1)  # a boot that went on after the archive would have started its kernel by now
    assert await kernels(jp_fetch) == []


@pytest.mark.parametrize("then", ["archive", "delete"])
async def test_archive_or_delete_during_a_reset(client, jp_fetch, then):
    """What the schema fuzzing found: an archive or delete arriving while a reset restarts the kernel
    interrupted the kernel as it started (it died importing), and the reset answered 500."""
    sid = await client.session()
    assert (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()["is_running"]  # booted
    reset = asyncio.ensure_future(client.call("POST", f"/api/sessions/{sid}/kernel/reset"))
    await asyncio.sleep(0.2)  # the restart is under way (it takes a second or more)
    second = await client.call("POST", f"/api/sessions/{sid}/archive") if then == "archive" else (
        await client.call("DELETE", f"/api/sessions/{sid}")
    )
    assert (await reset).status_code == 200, (await reset).text
    assert second.status_code == (200 if then == "archive" else 204), second.text
    assert await kernels(jp_fetch) == []
