"""The processes a benchmark run starts: the model, ``dsagent serve``, a plain Jupyter server.

Each is started on a free 127.0.0.1 port and ended by its own PID only (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent

# A Jupyter server with only the given extension switched on or off, the way `dsagent serve` builds it.
_PLAIN_SERVER = """\
import sys
from jupyter_server.serverapp import ServerApp
app = ServerApp.instance(jpserver_extensions={"dsagent_ext": sys.argv[1] == "on"})
app.initialize(argv=sys.argv[2:], find_extensions=False)
app.start()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(runtime: Path) -> dict[str, str]:
    """The caller's environment minus DSAgent settings, with a private Jupyter runtime dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSAGENT_", "JUPYTER_TOKEN", "LLM_"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", JUPYTER_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")
    return env


class Proc:
    """One child process with a log file; ``url`` answers once ``start`` returns."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.cmd, self.env, self.log_path, self.port = cmd, env, log, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.started_in = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, probe: str, timeout: float = 60) -> Proc:
        """Spawn and wait until ``GET probe`` answers 200; ``started_in`` is that wait in seconds."""
        self.log = open(self.log_path, "ab")
        began = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = began + timeout
        with httpx.Client(timeout=1) as http:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    self.log.close()
                    raise RuntimeError(f"{self.cmd[:4]} exited:\n{self.log_path.read_text()[-3000:]}")
                try:
                    if http.get(self.url + probe).status_code == 200:
                        self.started_in = time.perf_counter() - began
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        self.stop()
        raise TimeoutError(f"{self.cmd[:4]} did not answer {probe} within {timeout:g}s: see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        self.proc = None

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def kernel_pids(self) -> list[int]:
        """Kernel processes: the server's children running ipykernel."""
        children = psutil.Process(self.pid).children()
        return [c.pid for c in children if "ipykernel" in " ".join(c.cmdline())]


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def model_server(workdir: Path) -> Proc:
    port = free_port()
    proc = Proc([sys.executable, str(HERE / "model.py"), str(port)], clean_env(workdir), workdir / "model.log", port)
    return proc.start("/first-chunks")


def dsagent_server(root: Path, model_url: str, workdir: Path, *extra: str) -> Proc:
    """``dsagent serve`` on ``root`` with every model call going to the benchmark's model."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "dsagent_ext.serve", "serve", "--port", str(port), "--log-level", "error",
        f"--ServerApp.root_dir={root}", f"--DSAgent.api_base={model_url}/v1", "--DSAgent.default_model=scripted",
        *extra,
    ]
    return Proc(cmd, clean_env(workdir / "runtime"), workdir / f"serve-{port}.log", port).start("/health")


def plain_server(root: Path, workdir: Path, extension: bool) -> Proc:
    """A headless Jupyter server with (or without) the extension; ready when ``/api/status`` answers."""
    port = free_port()
    cmd = [
        sys.executable, "-c", _PLAIN_SERVER, "on" if extension else "off",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
        "--ServerApp.log_level=WARN",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")
    return Proc(cmd, clean_env(workdir / "runtime"), workdir / f"plain-{port}.log", port).start("/api/status")
