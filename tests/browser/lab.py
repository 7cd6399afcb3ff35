"""A real ``jupyter lab`` for browser tests: token auth and XSRF on, temp root and settings, the
scripted model server as its LLM. Started as a subprocess and stopped by its PID."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# keeps the screenshots free of the "get notified about Jupyter news?" toast
DISABLED_PLUGINS = {"@jupyterlab/apputils-extension:announcements": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    def __init__(self, tmp: Path, api_base: str, base_url: str = "/") -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.base_url = base_url
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.api_base = api_base
        self.log_path = tmp / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's base URL, ending in ``/``."""
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    def start(self, timeout: float = 90) -> JupyterLab:
        config = self.tmp / "config"
        (config / "labconfig").mkdir(parents=True)
        (config / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": DISABLED_PLUGINS}))
        self.root.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}  # no real provider keys
        env.update(
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"),
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}", "--ServerApp.allow_root=True",
            f"--ServerApp.base_url={self.base_url}", f"--ServerApp.root_dir={self.root}",
            f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}",
            f"--LabApp.user_settings_dir={self.tmp / 'settings'}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the tests switch themes with it
            f"--DSAgent.api_base={self.api_base}", "--DSAgent.default_model=scripted",
            "--DSAgent.sse_keepalive=1", "--DSAgent.code_timeout=60",
        ]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # lets it shut its kernels down
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """A direct DSAgent API call with the token, to set up or check what the browser cannot see."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}dsagent/{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read() or b"null")
