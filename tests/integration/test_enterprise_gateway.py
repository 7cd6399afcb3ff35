"""Jupyter Enterprise Gateway 3.x runs the agent's kernels (local process proxy, as on one cluster node).

It pins jupyter_server<2 and jupyter_client<7, so it lives in its own virtualenv
($DSAGENT_TEST_TOOLS/eg, made by scripts/test); its kernels run this project's Python. It refuses kernels for root unless the
request names a user, which the server forwards from its KERNEL_USERNAME.
"""

from __future__ import annotations

import json
import sys

import httpx
import pytest
from agent_task import run_plot_task
from procs import TOOLS, DSAgentServe, Proc, clean_env, free_port

EG = TOOLS / "eg" / "bin" / "jupyter-enterprisegateway"
if not EG.exists():
    pytest.skip("scripts/test installs Enterprise Gateway into $DSAGENT_TEST_TOOLS/eg", allow_module_level=True)
LOCAL_PROXY = "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"


@pytest.fixture(scope="module")
def enterprise_gateway(tmp_path_factory):
    base = tmp_path_factory.mktemp("enterprise-gateway")
    spec = base / "share" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    metadata = {"process_proxy": {"class_name": LOCAL_PROXY}}
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python", "metadata": metadata}))
    home = base / "gateway-host"
    home.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(EG), "--ip=127.0.0.1", f"--port={port}", "--EnterpriseGatewayApp.list_kernels=True"]
    env = clean_env(JUPYTER_PATH=str(base / "share"), EG_MIRROR_WORKING_DIRS="True")
    proc = Proc(cmd, cwd=home, env=env, log=base / "enterprise-gateway.log").start(f"{url}/api/kernelspecs")
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def served(enterprise_gateway, llm, tmp_path_factory):
    root = tmp_path_factory.mktemp("dsagent-eg") / "root"
    root.mkdir()
    env = clean_env(KERNEL_USERNAME="alice")
    server = DSAgentServe(root, llm.api_base, f"--gateway-url={enterprise_gateway}", env=env).start()
    yield server
    server.proc.stop()


async def test_plot_task_and_cancel_on_enterprise_gateway(served, enterprise_gateway, llm):
    client = served.client()
    before = served.kernel_ids()
    sid = await run_plot_task(client, llm)
    (kernel_id,) = served.kernel_ids() - before
    assert kernel_id in {k["id"] for k in httpx.get(f"{enterprise_gateway}/api/kernels", timeout=10).json()}
    code = "import os; print(os.environ['KERNEL_USERNAME'], os.getcwd())"
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": code})
    assert r.json()["stdout"] == f"alice {served.root / 'dsagent' / 'sessions' / sid}\n"
    # cancel interrupts the cell through the gateway; the kernel keeps its variables
    llm.script("<code>import time\nfor i in range(600):\n    time.sleep(0.1)")
    async for ev in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "wait"}):
        if ev["event"] == "code_executing":
            assert (await client.call("POST", f"/api/sessions/{sid}/chat/cancel")).json()["success"]
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print(df.sales.sum())"})
    assert r.json()["stdout"] == "60\n"
