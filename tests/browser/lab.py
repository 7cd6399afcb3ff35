"""A real ``jupyter lab`` for browser tests: token auth and XSRF on, temp root and settings, the
scripted model server as its LLM. Started as a subprocess and stopped by its PID."""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from launch import Process, free_port

# keeps the screenshots free of the "get notified about Jupyter news?" toast
DISABLED_PLUGINS = {"@jupyterlab/apputils-extension:announcements": True}


class JupyterLab:
    def __init__(
        self, tmp: Path, api_base: str | None, base_url: str = "/", args: Sequence[str] = (), env: dict | None = None
    ) -> None:
        """``api_base`` None: the model calls go where litellm sends them (``env`` can point a provider
        at the scripted server); ``args`` are extra command-line settings."""
        self.tmp = tmp
        self.root = tmp / "root"
        self.base_url = base_url
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.api_base = api_base
        self.args = list(args)  # more command-line options (``--DSAgent.<name>=``) for one module
        self.env = env or {}
        self.log_path = tmp / "jupyter-lab.log"
        self.process: Process | None = None

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
            **self.env,
        )
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}", "--ServerApp.allow_root=True",
            f"--ServerApp.base_url={self.base_url}", f"--ServerApp.root_dir={self.root}",
            f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}",
            f"--LabApp.user_settings_dir={self.tmp / 'settings'}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the tests switch themes with it
            "--DSAgent.sse_keepalive=1", "--DSAgent.code_timeout=60",
            *([f"--DSAgent.api_base={self.api_base}", "--DSAgent.default_model=scripted"] if self.api_base else []),
            *self.args,
        ]
        self.process = Process(command, env=env, log=self.log_path)
        self.process.start(f"{self.url}api/status?token={self.token}", timeout=timeout, interval=0.3)
        return self

    def stop(self) -> None:
        """SIGTERM first: it lets the server shut its kernels down."""
        if self.process is not None:
            self.process.stop()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """A direct DSAgent API call with the token, to set up or check what the browser cannot see."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}dsagent/{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def hitl_request(self, session_id: str, request_type: str) -> dict:
        """The session's ``hitl_request`` of ``request_type`` in its latest task, as the server streams it
        (the replay of the task so far, then live: a pause that is still pending is in it)."""
        request = urllib.request.Request(
            f"{self.url}dsagent/api/sessions/{session_id}/chat/stream",
            headers={"Authorization": f"token {self.token}", "Accept": "text/event-stream"},
        )
        with urllib.request.urlopen(request, timeout=30) as stream:
            event = None
            for line in stream:
                field, _, value = line.decode().rstrip("\n").partition(": ")
                if field == "event":
                    event = value
                elif field == "data" and event == "hitl_request" and json.loads(value)["request_type"] == request_type:
                    return json.loads(value)
        raise AssertionError(f"the latest task has no {request_type} approval request")
