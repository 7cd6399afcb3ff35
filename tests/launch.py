"""Child processes for the tests and the benchmarks: servers on free 127.0.0.1 ports, ready once a
URL answers, ended by their own PID (and, for a process group leader, whatever it started)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import httpx


def child_env(*, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This environment for a child: without DSAgent settings and Jupyter tokens (nor what starts with
    ``drop``), litellm's price list read locally, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSAGENT_", "JUPYTER_TOKEN", *drop))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """One child process, its output appended to ``log``.

    With ``group`` it leads a process group of its own, and ``stop`` ends the whole group (the
    kernels and proxies a peer started), never anything else.
    """

    def __init__(
        self, cmd: list[str], *, env: dict[str, str], log: Path, cwd: Path | None = None, group: bool = False
    ) -> None:
        self.cmd, self.env, self.log, self.cwd, self.group = cmd, env, log, cwd, group
        self.proc: subprocess.Popen | None = None
        self.pid = 0  # kept after ``stop``: what it was is still worth asking about (its leftovers)
        self.started_in = 0.0  # seconds from spawning to the first good answer

    def start(
        self, ready_url: str, *, timeout: float = 60, ok: tuple[int, ...] = (200,), interval: float = 0.1
    ) -> Process:
        """Spawn, then poll ``ready_url`` every ``interval`` until it answers one of ``ok``."""
        began = time.perf_counter()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=self.group,
            )
        self.pid = self.proc.pid
        deadline = began + timeout
        with httpx.Client(timeout=2) as http:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.cmd[:4]} exited with {self.proc.returncode}:\n{self.tail()}")
                with suppress(httpx.HTTPError):
                    if http.get(ready_url).status_code in ok:
                        self.started_in = time.perf_counter() - began
                        return self
                time.sleep(interval)
        self.stop()
        raise TimeoutError(f"{ready_url} did not answer within {timeout:g}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Send ``sig`` and wait; then SIGKILL what is left of it (of its group, with ``group``)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        if self.group:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group's id is our child's PID: only what it started
        elif proc.poll() is None:
            proc.kill()
        proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
