"""Real peer processes for the integration tests: started on free 127.0.0.1 ports, ended by PID."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
from client import Client
from launch import Process, child_env, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# where scripts/test installs the peers that are not Python packages of the test venv
TOOLS = Path(os.environ.get("DSAGENT_TEST_TOOLS") or Path.home() / ".cache" / "dsagent-tests")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without DSAgent/Jupyter/Hub settings that would leak into a peer, the test
    venv's tools first on the PATH."""
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return child_env(drop=("JUPYTERHUB_", "KERNEL_", "LLM_"), **{"PATH": path, **extra})


class Proc(Process):
    """A peer in a process group of its own (``stop`` also ends the kernels it started); up to 90 s to start."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        super().__init__(cmd, env=env, log=log, cwd=cwd, group=True)

    def start(self, ready_url: str, *, timeout: float = 90, ok: tuple[int, ...] = (200,)) -> Proc:
        super().start(ready_url, timeout=timeout, ok=ok, interval=0.25)
        return self


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
