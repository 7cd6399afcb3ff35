"""Gateway mode: `dsagent serve --gateway-url=...` with its kernels in a real Jupyter Kernel Gateway.

The agent is unchanged; only the server's kernel manager is the gateway's. One gateway and one
dsagent server for the module; the kernel gateway runs in its own folder, like a separate host.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat
import pytest
from agent_task import SALES, run_plot_task, upload
from procs import VENV_BIN, DSAgentServe, Proc, clean_env, free_port

# a kernel spec whose kernel runs where the dsagent server's files are not: a private mount
# namespace with an empty tmpfs over the server's root, as on a separate gateway host
HIDDEN_ROOT_SPEC = 'mount -t tmpfs tmpfs "$0" && exec "$1" -m ipykernel_launcher -f "$2"'


def can_hide_files() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=10).returncode == 0


class Gateway:
    def __init__(self, base: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hidden = base / "hidden-root"  # the root of a dsagent server whose files the kernel cannot see
        self.hidden.mkdir()
        spec = base / "share" / "kernels" / "hidden"
        spec.mkdir(parents=True)
        argv = ["unshare", "--mount", "sh", "-c", HIDDEN_ROOT_SPEC, str(self.hidden), sys.executable, "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "hidden", "language": "python"}))
        home = base / "gateway-host"
        home.mkdir()
        cmd = [str(VENV_BIN / "jupyter-kernelgateway"), "--ip=127.0.0.1", f"--port={self.port}",
               "--JupyterWebsocketPersonality.list_kernels=True"]  # so the test can see the gateway's kernels
        env = clean_env(JUPYTER_PATH=str(base / "share"))
        self.proc = Proc(cmd, cwd=home, env=env, log=base / "gateway.log")

    def kernel_ids(self) -> set[str]:
        return {k["id"] for k in httpx.get(f"{self.url}/api/kernels", timeout=10).json()}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("gateway"))
    gw.proc.start(f"{gw.url}/api/kernelspecs")
    yield gw
    gw.proc.stop()


@pytest.fixture(scope="module")
def served(gateway, llm, tmp_path_factory):
    root = tmp_path_factory.mktemp("dsagent") / "root"
    root.mkdir()
    server = DSAgentServe(root, llm.api_base, f"--gateway-url={gateway.url}").start()
    yield server
    server.proc.stop()


async def test_plot_task_runs_in_a_gateway_kernel(served, gateway, llm):
    before = served.kernel_ids()
    sid = await run_plot_task(served.client(), llm)
    # the session's kernel is the gateway's: the server lists it, the gateway lists it
    (kernel_id,) = served.kernel_ids() - before
    assert kernel_id in gateway.kernel_ids()
    r = await served.client().call("POST", f"/api/sessions/{sid}/kernel/execute",
                                   json={"code": "import os; print(os.environ.get('KERNEL_GATEWAY'))"})
    assert r.json()["stdout"] == "1\n"  # set by Kernel Gateway in the kernels it launches


async def test_kernel_state_execute_reset(served, gateway):
    client = served.client()
    before = served.kernel_ids()
    sid = await client.session()
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert state["is_running"] and state["workspace_reachable"] and state["variables"] == []
    assert {"np", "pd", "plt", "os"} <= set(state["imports"])
    (kernel_id,) = served.kernel_ids() - before
    assert kernel_id in gateway.kernel_ids()
    code = "import os\ndf = pd.DataFrame({'a': [1, 2]})\nprint(os.getcwd())\nprint(os.environ['KERNEL_WORKING_DIR'])"
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": code})).json()
    workspace = str(served.root / "dsagent" / "sessions" / sid)
    # the server asks the gateway for the workspace as KERNEL_WORKING_DIR; the setup cell moves there
    assert result["success"] and result["stdout"] == f"{workspace}\n{workspace}\n"
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert [v["name"] for v in state["variables"]] == ["df"] and state["dataframes"][0]["shape"] == [2, 1]
    state = (await client.call("POST", f"/api/sessions/{sid}/kernel/reset")).json()
    assert state["is_running"] and state["variables"] == [] and "pd" in state["imports"]
    result = (await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print(os.getcwd())"})).json()
    assert result["stdout"] == f"{workspace}\n"
    assert served.kernel_ids() - before == {kernel_id}  # restarted in place on the gateway


async def test_cancel_interrupts_the_gateway_kernel(served, llm):
    client = served.client()
    sid = await client.session()
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "kept = 41"})
    assert r.json()["success"]
    llm.script("<code>import time\nfor i in range(600):\n    time.sleep(0.1)")
    seen, cancelled_at = [], None
    async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "wait"}):
        seen.append(ev)
        if ev["event"] == "code_executing":
            cancelled_at = time.monotonic()
            r = await client.call("POST", f"/api/sessions/{sid}/chat/cancel")
            assert r.json() == {"success": True, "message": "Task cancelled"}
    assert time.monotonic() - cancelled_at < 15
    final = [e["data"] for e in seen if e["event"] == "round_complete"][-1]
    assert final["stop_reason"] == "cancelled" and seen[-1]["event"] == "done"
    # interrupted, not restarted: the variables are still there
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print(kept + 1)"})
    assert r.json()["stdout"] == "42\n"


@pytest.mark.skipif(not can_hide_files(), reason="needs `unshare --mount` (root or user namespaces)")
async def test_kernel_without_the_workspace_is_reported(gateway, llm):
    """A gateway host without the server's files: detected, shown in /kernel and told to the model."""
    args = (f"--gateway-url={gateway.url}", "--DSAgent.kernel_name=hidden")
    server = DSAgentServe(gateway.hidden, llm.api_base, *args).start()
    try:
        client = server.client()
        sid = await client.session()
        await upload(client, sid, "sales.csv", SALES)
        state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
        assert state["is_running"] and state["workspace_reachable"] is False
        llm.script("<code>import os\nprint(os.path.exists('data/sales.csv'))", "<answer>The kernel cannot read it.")
        events = await client.chat_stream(sid, "load data/sales.csv")
        result = [e["data"] for e in events if e["event"] == "code_result"][0]
        assert result["stdout"] == "False\n"
        system = llm.requests[0]["messages"][0]["content"]
        assert "cannot see this session's workspace" in system and "`data/`: the files" not in system
    finally:
        server.proc.stop()


async def test_restart_keeps_history_and_a_usable_kernel(served, gateway, llm):
    client = served.client()
    sid = await client.session(name="kept")
    llm.script("<code>x = 6 * 7\nprint(x)", "<answer>x is 42")
    events = await client.chat_stream(sid, "compute x")
    assert events[-2]["data"]["answer"] == "x is 42"
    record = (await client.call("GET", f"/api/sessions/{sid}")).json()
    messages = (await client.call("GET", f"/api/sessions/{sid}/messages")).json()
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()
    served.proc.stop(signal.SIGKILL)  # a crash: the gateway keeps running
    served.start()  # same root and port
    after = (await client.call("GET", f"/api/sessions/{sid}")).json()
    assert {**after, "kernel_id": record["kernel_id"]} == record
    assert after["kernel_id"] is None  # the old kernel is not adopted: a new one starts on demand
    assert (await client.call("GET", f"/api/sessions/{sid}/messages")).json() == messages
    assert (await client.call("GET", f"/api/sessions/{sid}/turns")).json() == turns
    # a new gateway kernel on demand, without the old variables
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print('x' in globals())"})
    assert r.json()["stdout"] == "False\n"
    assert served.kernel_ids() and served.kernel_ids() <= gateway.kernel_ids()


async def test_restore_into_a_new_gateway_kernel(served, gateway):
    """The session's gateway kernel is shut down (as a cull would): a restore replays the history into a new one."""
    client = served.client()
    before = served.kernel_ids()
    sid = await client.session()
    for code in ("x = 6 * 7", "y = x + 1"):
        r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": code})
        assert r.json()["success"]
    (kernel_id,) = served.kernel_ids() - before
    httpx.delete(f"{served.url}/api/kernels/{kernel_id}", timeout=30).raise_for_status()
    assert (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()["is_new"]
    steps = [f["data"] async for f in client.events("POST", f"/api/sessions/{sid}/kernel/restore") if f["event"] != "comment"]
    assert [(s["status"], s["cell"]) for s in steps] == [("started", None), ("running", 1), ("running", 2), ("completed", None)]
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert not state["is_new"] and {v["name"]: v["value_preview"] for v in state["variables"]} == {"x": "42", "y": "43"}
    assert kernel_id not in gateway.kernel_ids()  # a new kernel on the gateway, not the old one

async def test_attached_session_uses_the_notebooks_gateway_kernel(served, gateway, llm):
    """A session attached to a notebook: the notebook's kernel runs on the gateway, and outlives the session."""
    client = served.client()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("base = 41")]), served.root / "attached.ipynb")
    before = served.kernel_ids()
    r = await client.call("POST", "/api/sessions", json={"notebook_path": "attached.ipynb"})
    assert r.status_code == 201, r.text
    session = r.json()
    assert served.kernel_ids() - before == {session["kernel_id"]} and session["kernel_id"] in gateway.kernel_ids()
    # the user's variable, defined in that kernel; the setup left the working directory alone
    result = (await client.call("POST", f"/api/sessions/{session['id']}/kernel/execute", json={"code": "base = 41"})).json()
    assert result["success"], result
    llm.script("<code>\nanswer = base + 1\nprint(answer)\n</code>", "<answer>42</answer>")
    events = await client.chat_stream(session["id"], "add one")
    (code_result,) = [e["data"] for e in events if e["event"] == "code_result"]
    assert code_result["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    assert "attached.ipynb" in llm.requests[-1]["messages"][0]["content"]
    assert (await client.call("DELETE", f"/api/sessions/{session['id']}")).status_code == 204
    assert session["kernel_id"] in gateway.kernel_ids() and session["kernel_id"] in served.kernel_ids()
