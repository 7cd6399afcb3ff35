"""Real peer processes for the integration tests: started on free 127.0.0.1 ports, ended by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from client import Client

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# where scripts/test installs the peers that are not Python packages of the test venv
TOOLS = Path(os.environ.get("DSAGENT_TEST_TOOLS") or Path.home() / ".cache" / "dsagent-tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without DSAgent/Jupyter settings that would leak into a peer."""
    drop = ("DSAGENT_", "JUPYTER_TOKEN", "JUPYTERHUB_", "KERNEL_", "LLM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra)
    return env


class Proc:
    """One peer process in its own process group; its output goes to ``log``."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.cmd, self.cwd, self.env, self.log = cmd, cwd, env, log
        self.proc: subprocess.Popen | None = None

    def start(self, ready_url: str, *, timeout: float = 90, ok: tuple[int, ...] = (200,)) -> Proc:
        """Start and wait until ``ready_url`` answers one of ``ok``."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.cmd[0]} exited:\n{self.tail()}"
            try:
                if httpx.get(ready_url, timeout=2).status_code in ok:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"{ready_url} did not answer within {timeout:g}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal our process; then end whatever is left of the group it leads (its kernels)."""
        if self.proc is None:
            return
        pid, self.proc = self.proc.pid, None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    break
            except ChildProcessError:
                break
            time.sleep(0.1)
        try:
            os.killpg(pid, signal.SIGKILL)  # the group id is our child's PID: only what it started
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class DSAgentServe:
    """``dsagent serve`` on ``root``, its model calls sent to the scripted server; can be killed and started again."""

    def __init__(self, root: Path, llm_base: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable, "-m", "dsagent_ext.serve", "serve", "--port", str(self.port),
            f"--ServerApp.root_dir={root}",
            f"--DSAgent.api_base={llm_base}", "--DSAgent.default_model=scripted",
            "--DSAgent.code_timeout=60", "--DSAgent.sse_keepalive=0.5", *args,
        ]
        self.proc = Proc(cmd, cwd=root, env=env or clean_env(), log=root.parent / f"dsagent-{self.port}.log")

    def start(self) -> DSAgentServe:
        self.proc.start(f"{self.url}/health")
        return self

    def client(self) -> Client:
        return Client(self.url, {})

    def kernel_ids(self) -> set[str]:
        """The kernels of this server, from Jupyter's own ``/api/kernels``."""
        return {k["id"] for k in httpx.get(f"{self.url}/api/kernels", timeout=10).json()}
