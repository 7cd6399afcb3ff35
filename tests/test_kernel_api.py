"""The kernel routes over HTTP: state, execute, reset, and one user of the kernel at a time."""

from __future__ import annotations

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
    # using it again starts a fresh kernel on demand
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print('keep' in dir())"})).json()
    assert result["stdout"] == "False\n"
