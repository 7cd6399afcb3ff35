"""The processes a benchmark run starts: the model, ``dsagent serve``, a plain Jupyter server.

Each is started on a free 127.0.0.1 port and ended by its own PID only (SIGTERM, then SIGKILL), with
the test suite's launcher (``tests/launch.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the launcher the test suite uses too

from launch import Process, child_env, free_port  # noqa: E402

# A Jupyter server with only the given extension switched on or off, the way `dsagent serve` builds it.
_PLAIN_SERVER = """\
import sys
from jupyter_server.serverapp import ServerApp
app = ServerApp.instance(jpserver_extensions={"dsagent_ext": sys.argv[1] == "on"})
app.initialize(argv=sys.argv[2:], find_extensions=False)
app.start()
"""


def clean_env(runtime: Path) -> dict[str, str]:
    """The caller's environment minus DSAgent and model settings, with a private Jupyter runtime dir."""
    return child_env(drop=("LLM_",), JUPYTER_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")


class Proc(Process):
    """A child process serving HTTP on ``port`` of 127.0.0.1."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, port: int) -> None:
        super().__init__(cmd, env=env, log=log)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def serving(self, probe: str) -> Proc:
        """Start and wait until ``GET probe`` answers 200 (``started_in`` is that wait, to 10 ms)."""
        self.start(self.url + probe, interval=0.01)
        return self

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
    return proc.serving("/first-chunks")


def dsagent_server(root: Path, model_url: str, workdir: Path, *extra: str) -> Proc:
    """``dsagent serve`` on ``root`` with every model call going to the benchmark's model."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "dsagent_ext.serve", "serve", "--port", str(port), "--log-level", "error",
        f"--ServerApp.root_dir={root}", f"--DSAgent.api_base={model_url}/v1", "--DSAgent.default_model=scripted",
        *extra,
    ]
    return Proc(cmd, clean_env(workdir / "runtime"), workdir / f"serve-{port}.log", port).serving("/health")


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
    return Proc(cmd, clean_env(workdir / "runtime"), workdir / f"plain-{port}.log", port).serving("/api/status")
