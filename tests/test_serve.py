"""``dsagent serve`` as a user runs it: a real process on 127.0.0.1, the reference's exact URLs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from launch import Process, child_env, free_port

KEY = "serve-key"


class Served:
    """One ``dsagent serve`` process; ended by its PID only."""

    def __init__(self, root: Path, env: dict[str, str], args: list[str] | None = None) -> None:
        self.root, self.env, self.args = root, env, args or []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Process | None = None

    def start(self, timeout: float = 60) -> Served:
        cmd = [sys.executable, "-m", "dsagent_ext.serve", "serve", "--port", str(self.port),
               f"--ServerApp.root_dir={self.root}", *self.args]
        self.log = self.root.parent / f"serve-{self.port}.log"  # its output and its kernels'
        self.proc = Process(cmd, env=self.env, log=self.log).start(f"{self.url}/health", timeout=timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.stop(sig)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    root = tmp_path_factory.mktemp("keyed") / "root"
    root.mkdir()
    served = Served(root, child_env(DSAGENT_API_KEY=KEY), ["--log-level", "warning"]).start()
    yield served
    served.stop()


def test_reference_urls_with_key(keyed):
    h = {"X-API-Key": KEY}
    assert httpx.get(f"{keyed.url}/health").json()["status"] == "ok"
    assert httpx.get(f"{keyed.url}/health/ready").json()["ready"] is True
    r = httpx.post(f"{keyed.url}/api/sessions", json={"name": "curl"}, headers=h)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert httpx.get(f"{keyed.url}/api/sessions/{sid}", headers=h).json()["name"] == "curl"
    listing = httpx.get(f"{keyed.url}/api/sessions", headers=h).json()
    assert [s["id"] for s in listing["sessions"]] == [sid]
    spec = httpx.get(f"{keyed.url}/openapi.json").json()
    assert spec["servers"] == [{"url": "/"}] and "/api/sessions" in spec["paths"]
    assert httpx.get(f"{keyed.url}/docs").status_code == 200


def test_key_required_everywhere(keyed):
    r = httpx.get(f"{keyed.url}/api/sessions")
    assert r.status_code == 401 and r.json() == {"detail": "API key required"}
    assert r.headers["WWW-Authenticate"] == "ApiKey"
    r = httpx.post(f"{keyed.url}/api/sessions", json={}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid API key"}
    # the server's own routes are closed too: the key is the Jupyter token
    assert httpx.get(f"{keyed.url}/api/kernels").status_code == 403
    assert httpx.get(f"{keyed.url}/api/kernels", headers={"Authorization": f"token {KEY}"}).status_code == 200


def test_only_this_extension(keyed):
    assert httpx.get(f"{keyed.url}/lab", headers={"Authorization": f"token {KEY}"}).status_code == 404


def test_refuses_open_non_loopback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "dsagent_ext.serve", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=child_env(), capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0 and "DSAGENT_API_KEY" in r.stderr


def test_require_api_key_without_key(tmp_path):
    served = Served(tmp_path, child_env(DSAGENT_REQUIRE_API_KEY="true"))
    with pytest.raises(RuntimeError, match="DSAGENT_REQUIRE_API_KEY"):
        served.start(timeout=60)
    served.stop()


def stream_rounds(url: str, message: str) -> list[dict]:
    """The round_complete payloads of one streamed task."""
    rounds, event = [], None
    with httpx.stream("POST", url, json={"message": message}, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "round_complete":
                rounds.append(json.loads(line[6:]))
    return rounds


def test_persistence_across_kill(tmp_path, fake_llm):
    """kill -9, start again: the same sessions, messages, turns, notebook and files are served."""
    root = tmp_path / "root"
    root.mkdir()
    env = child_env(LLM_API_BASE=fake_llm.api_base, DSAGENT_DEFAULT_MODEL="scripted")
    fake_llm.script("<code>print(6 * 7)", "<answer>42")
    served = Served(root, env).start()
    try:
        sid = httpx.post(f"{served.url}/api/sessions", json={"name": "kept", "hitl_mode": "on_error"}).json()["id"]
        files = {"files": ("sales.csv", b"month,total\n1,10\n2,20\n", "text/csv")}
        assert httpx.post(f"{served.url}/api/sessions/{sid}/files", files=files).status_code == 201
        r = httpx.post(f"{served.url}/api/sessions/{sid}/kernel/execute", json={"code": "x = 41 + 1\nprint(x)"}, timeout=60)
        assert r.json()["stdout"] == "42\n"
        live = stream_rounds(f"{served.url}/api/sessions/{sid}/chat/stream", "compute")
        assert [r["answer"] for r in live] == [None, "42"]
        before = httpx.get(f"{served.url}/api/sessions/{sid}").json()
        messages = httpx.get(f"{served.url}/api/sessions/{sid}/messages").json()
        notebook = httpx.get(f"{served.url}/api/sessions/{sid}/notebook").text
    finally:
        served.stop(signal.SIGKILL)
    served = Served(root, env).start()
    try:
        after = httpx.get(f"{served.url}/api/sessions/{sid}").json()
        assert {**after, "kernel_id": before["kernel_id"]} == before
        assert after["kernel_id"] is None  # the killed kernel is gone: a new one starts on demand
        assert httpx.get(f"{served.url}/api/sessions/{sid}/messages").json() == messages
        turns = httpx.get(f"{served.url}/api/sessions/{sid}/turns").json()["turns"]
        assert [{k: v for k, v in t.items() if k not in ("timestamp", "user_message", "restore")} for t in turns] == live
        assert httpx.get(f"{served.url}/api/sessions/{sid}/notebook").text == notebook
        r = httpx.get(f"{served.url}/api/sessions/{sid}/files/sales.csv")
        assert r.content == b"month,total\n1,10\n2,20\n"
        # the kernel comes back on demand, without the old variables
        r = httpx.post(f"{served.url}/api/sessions/{sid}/kernel/execute", json={"code": "print('x' in globals())"}, timeout=60)
        assert r.json()["stdout"] == "False\n"
    finally:
        served.stop()


def test_mcp_at_the_root_with_the_key(keyed):
    """``dsagent serve`` serves MCP at ``/mcp``, behind the same key as the API."""
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    r = httpx.post(f"{keyed.url}/mcp", json=initialize, headers={**accept, "X-API-Key": KEY})
    assert r.status_code == 200 and r.headers["mcp-session-id"], r.text
    assert '"protocolVersion":"2025-06-18"' in r.text.replace(" ", "")
    refused = httpx.post(f"{keyed.url}/mcp", json=initialize, headers=accept)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == -32001
    wrong = httpx.post(f"{keyed.url}/mcp", json=initialize, headers={**accept, "X-API-Key": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "Invalid API key"
