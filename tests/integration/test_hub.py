"""JupyterHub: two users, each with a single-user server carrying the extension, behind the real proxy.

One hub (configurable-http-proxy, DummyAuthenticator, SimpleLocalProcessSpawner) for the module;
the model is preset for every user through the spawner's environment, as a deployment would.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from agent_task import run_plot_task
from client import Client
from procs import ROOT, TOOLS, VENV_BIN, Proc, clean_env, free_port

pytest.importorskip("jupyterhub", reason="scripts/test installs jupyterhub")
CHP = TOOLS / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
if not CHP.exists():
    pytest.skip("scripts/test installs configurable-http-proxy into $DSAGENT_TEST_TOOLS/chp", allow_module_level=True)

ADMIN_TOKEN = "integration-admin-token"
PANEL = ROOT / "dsagent_ext" / "labextension" / "package.json"

HUB_CONFIG = """\
c.JupyterHub.bind_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{base}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{base}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{base}/home/{{username}}"
c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
c.Spawner.environment = {{
    "DSAGENT_DEFAULT_MODEL": "scripted",
    "LLM_API_BASE": "{llm_base}",
    "DSAGENT_CODE_TIMEOUT": "60",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "DSAGENT_MAX_COST_PER_USER_PER_DAY": "5",
}}
c.JupyterHub.services = [{{"name": "integration-admin", "api_token": "{admin}"}}]
c.JupyterHub.load_roles = [
    {{"name": "integration-admin", "scopes": ["admin:users", "admin:servers", "tokens"],
      "services": ["integration-admin"]}}
]
"""


class Hub:
    def __init__(self, base: Path, llm_base: str) -> None:
        self.base = base
        ports = {"proxy_port": free_port(), "hub_port": free_port(), "proxy_api_port": free_port()}
        self.url = f"http://127.0.0.1:{ports['proxy_port']}"
        config = base / "jupyterhub_config.py"
        config.write_text(HUB_CONFIG.format(base=base, chp=str(CHP), llm_base=llm_base, admin=ADMIN_TOKEN, **ports))
        cmd = [str(VENV_BIN / "jupyterhub"), "-f", str(config)]
        self.proc = Proc(cmd, cwd=base, env=clean_env(), log=base / "hub.log")
        self.admin = httpx.Client(base_url=f"{self.url}/hub/api", headers={"Authorization": f"token {ADMIN_TOKEN}"}, timeout=30)

    def start(self) -> Hub:
        self.proc.start(f"{self.url}/hub/api/", timeout=90)
        return self

    def add_user(self, name: str) -> str:
        """Create the user, spawn their server and wait for it; return a token of theirs."""
        assert self.admin.post(f"/users/{name}").status_code == 201
        assert self.admin.post(f"/users/{name}/server").status_code in (201, 202)
        deadline = time.monotonic() + 90
        while not self.admin.get(f"/users/{name}").json()["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, f"{name}'s server did not start:\n{self.proc.tail()}"
            time.sleep(0.5)
        r = self.admin.post(f"/users/{name}/tokens", json={"note": "integration test"})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def client(self, user: str, token: str | None) -> Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return Client(f"{self.url}/user/{user}/dsagent", headers)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, llm):
    hub = Hub(tmp_path_factory.mktemp("hub"), llm.api_base).start()
    hub.tokens = {name: hub.add_user(name) for name in ("alice", "bob")}
    yield hub
    hub.admin.close()
    hub.proc.stop(timeout=40)  # the hub stops the users' servers and the proxy itself


async def test_alice_chats_at_her_url(hub, llm):
    alice = hub.client("alice", hub.tokens["alice"])
    sid = await run_plot_task(alice, llm)
    assert llm.requests[0]["model"] == "scripted"  # preset for every user by the spawner environment
    # the workspace and the notebook (written through her contents manager) are in alice's home
    workspace = hub.base / "home" / "alice" / "dsagent" / "sessions" / sid
    assert (workspace / "artifacts" / "trend.png").is_file()
    r = await alice.call("GET", f"/api/sessions/{sid}/files", params={"category": "notebooks"})  # written by now
    assert [f["name"] for f in r.json()["files"]] == [f"{sid}.ipynb"]
    assert (workspace / "notebooks" / f"{sid}.ipynb").is_file()


@pytest.mark.parametrize("token", ["bob", None, "not-a-token"])
async def test_others_are_refused_on_alices_routes(hub, token):
    intruder = hub.client("alice", hub.tokens.get(token, token))
    for method, path in [("GET", "/api/sessions"), ("POST", "/api/sessions")]:
        r = await intruder.call(method, path, json={} if method == "POST" else None)
        assert r.status_code == 403, (token, method, r.status_code)


async def test_each_user_has_their_own_server_and_workspace(hub):
    alice = hub.client("alice", hub.tokens["alice"])
    bob = hub.client("bob", hub.tokens["bob"])
    a_sid = await alice.session(name="alice's")
    b_sid = await bob.session(name="bob's")
    a_ids = {s["id"] for s in (await alice.call("GET", "/api/sessions")).json()["sessions"]}
    b_ids = {s["id"] for s in (await bob.call("GET", "/api/sessions")).json()["sessions"]}
    assert a_sid in a_ids and b_sid in b_ids and not a_ids & b_ids
    assert (await bob.call("GET", f"/api/sessions/{a_sid}")).status_code == 404
    assert (hub.base / "home" / "alice" / "dsagent" / "sessions" / a_sid).is_dir()
    assert (hub.base / "home" / "bob" / "dsagent" / "sessions" / b_sid).is_dir()
    assert not (hub.base / "home" / "bob" / "dsagent" / "sessions" / a_sid).exists()


async def test_spending_is_counted_per_hub_user(hub, llm):
    """Each user's spending is their own: the hub's user name, in their own server's ledger."""
    alice = hub.client("alice", hub.tokens["alice"])
    bob = hub.client("bob", hub.tokens["bob"])
    sid = await alice.session()
    llm.script("<answer>counted for alice")
    r = await alice.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
    assert r.status_code == 200, r.text
    used = r.json()["usage"]["total_tokens"]
    mine = (await alice.call("GET", "/api/policy")).json()
    theirs = (await bob.call("GET", "/api/policy")).json()
    assert mine["user"] == "alice" and theirs["user"] == "bob"
    assert mine["limits"]["max_cost_per_user_per_day"] == 5.0  # preset for every user by the spawner
    # the scripted model has no price: its tokens are counted, no cost
    spent = mine["spent_today"]
    assert spent["tokens"] >= used > 0 and spent["unpriced_tokens"] == spent["tokens"]
    assert mine["spent_today"]["cost_usd"] == 0 and mine["remaining_today_usd"] == 5.0
    assert theirs["spent_today"]["tokens"] == 0
    ledger = json.loads((hub.base / "home" / "alice" / "dsagent" / "spending.json").read_text())
    assert list(ledger[mine["day"]]) == ["alice"]
    assert not (hub.base / "home" / "bob" / "dsagent" / "spending.json").exists()


def test_lab_and_panel_under_alices_base_url(hub):
    """What the browser does: JupyterLab's page config under /user/alice/, then the panel's entry point."""
    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as browser:
        page = browser.get("/user/alice/lab")
        assert page.status_code == 200
        config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S).group(1))
        assert config["baseUrl"] == "/user/alice/"
        assert browser.get("/user/alice/dsagent/health").json()["status"] == "ok"
        if not PANEL.exists():
            pytest.skip("the panel (dsagent_ext/labextension) is not built in this tree; JupyterLab itself loads")
        panel = {e["name"]: e for e in config["federated_extensions"]}.get("dsagent-ext")
        assert panel is not None, config["federated_extensions"]
        entry = browser.get(f"{config['fullLabextensionsUrl']}/dsagent-ext/{panel['load']}")
        assert entry.status_code == 200 and "javascript" in entry.headers["content-type"]
        assert entry.content == (PANEL.parent / panel["load"]).read_bytes()


async def test_mcp_at_alices_url_with_her_hub_token(hub, llm):
    """An MCP client (the official SDK) on the user's server, through the proxy, with her Hub API token."""
    from mcp_client import ACCEPT, INITIALIZE, connect, jsonrpc_error, structured

    url = f"{hub.url}/user/alice/dsagent/mcp"
    llm.script("<code>x = 21 * 2\nprint(x)", "<answer>x is 42")
    async with connect(url, {"Authorization": f"token {hub.tokens['alice']}"}) as session:
        sid = structured(await session.call_tool("create_session", {}))["id"]
        task = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
    assert task["status"] == "completed" and task["answer"] == "x is 42"
    assert (hub.base / "home" / "alice" / "dsagent" / "sessions" / sid).is_dir()
    async with httpx.AsyncClient(timeout=30) as http:
        for token in (hub.tokens["bob"], "not-a-token", None):
            headers = {**ACCEPT, **({"Authorization": f"token {token}"} if token else {})}
            r = await http.post(url, json=INITIALIZE, headers=headers)
            assert r.status_code in (401, 403) and jsonrpc_error(r)["message"], (token, r.status_code, r.text)
