"""The hardening suite's tools: real ``dsagent serve`` processes, measured by PID, and SSE helpers.

Every attack runs against a server in its own process (started and stopped by PID), so memory, file
descriptors, kernels and crashes are those of the product, not of pytest. Counts are bounded for a
2-core CI; ``DSAGENT_HARDENING_LONG=1`` runs the long versions (see RELIABILITY.md).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from client import SSEReader
from fake_llm import FakeLLM, FakeReply
from launch import child_env, free_port
from test_serve import Served

KEY = "hardening-key"
MB = 1024 * 1024
LONG = os.environ.get("DSAGENT_HARDENING_LONG", "").lower() in {"1", "true", "yes"}
TRACEBACK = "Traceback (most recent call last)"
PORT_RACE = "zmq.error.ZMQError: Address already in use"  # a kernel's last words when a port was taken
RESTARTED = "died while starting; starting it again"  # the server's warning when it starts one again


def scaled(short: int, long: int) -> int:
    """A count for the default run, or for the long run (``DSAGENT_HARDENING_LONG=1``)."""
    return long if LONG else short


class Server(Served):
    """``dsagent serve`` with the API key, pointed at the scripted model, plus process figures."""

    def __init__(self, root: Path, llm: FakeLLM | None = None, *args: str) -> None:
        options = [f"--DSAgent.api_base={llm.api_base}", "--DSAgent.default_model=scripted"] if llm else []
        super().__init__(root, child_env(DSAGENT_API_KEY=KEY), [*options, "--DSAgent.sse_keepalive=0.5", *args])
        self.headers = {"X-API-Key": KEY}

    def start(self, timeout: float = 60) -> Server:
        """Start, or start again after a stop or a kill, on a port free now (the old one may be taken)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        return super().start(timeout)

    @property
    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def fds(self) -> int:
        return self.process.num_fds()

    def kernels(self) -> list[psutil.Process]:
        """Kernel processes this server started (and has not reaped)."""
        return [p for p in self.process.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]

    def log_text(self) -> str:
        """Everything the server and its kernels have written so far."""
        return self.log.read_text(errors="replace")

    def tracebacks(self) -> list[str]:
        """The tracebacks in the log, but those of kernel processes that died binding a port another
        process took as they started, when the server said it started them again."""
        text = self.log_text()
        found = [text[i : i + 3000] for i in _starts(text, TRACEBACK)]
        raced = [t for t in found if _last_line(t).startswith(PORT_RACE)]
        # kernels dying at once write into the log line by line, interleaved: each raced traceback must
        # still have its own last words, and the server must have said it started them again
        if raced and (RESTARTED not in text or text.count(PORT_RACE) < len(raced)):
            return found
        return [t for t in found if t not in raced]

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as an OOM killer or a power cut would; its kernels are orphaned, so end them too."""
        kernels = self.kernels()
        self.stop(signal.SIGKILL)
        for kernel in kernels:
            kernel.kill()


def _starts(text: str, marker: str) -> list[int]:
    starts, i = [], text.find(marker)
    while i >= 0:
        starts.append(i)
        i = text.find(marker, i + 1)
    return starts


def _last_line(traceback: str) -> str:
    """The exception line that ends a traceback: its first line after the header not indented. What
    other processes wrote in between is skipped: another traceback's header, and log records, which
    start with ``[`` (``[W 2026-…]``, ``[IPKernelApp] WARNING``) as no exception's name does."""
    lines = traceback.splitlines()[1:]
    return next((line for line in lines if line and line[0] not in " \t[" and not line.startswith(TRACEBACK)), "")


def session(http: httpx.Client, **body: object) -> str:
    r = http.post("/api/sessions", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def events(http: httpx.Client, method: str, path: str, **kwargs: object) -> list[dict]:
    """A whole Server-Sent Events response as ``{"event", "id", "data"}`` dicts, comments left out."""
    out, reader = [], SSEReader()
    with http.stream(method, path, **kwargs) as r:
        assert r.status_code == 200, r.read().decode()
        for line in r.iter_lines():
            frame = reader.feed(line)
            if frame is not None and frame["event"] != "comment":
                out.append(frame)
    return out


def chat(http: httpx.Client, sid: str, message: str) -> list[dict]:
    """One streamed task, deltas left out."""
    stream = events(http, "POST", f"/api/sessions/{sid}/chat/stream", json={"message": message})
    return [e for e in stream if e["event"] not in ("llm_delta", "code_output")]


@contextmanager
def peak_rss(server: Server):
    """Sample the server's RSS every 20 ms while the block runs; yields a one-item list: the peak."""
    peak = [server.rss()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], server.rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


TASK = "task: "
ROUNDS = ["<code>\nx = 1\nprint(x)", "<code>\nprint(x + 1)", "<answer>done"]


class ThreeRounds(FakeLLM):
    """Answers every message starting with ``TASK`` in three rounds (code, code, answer), whatever the
    order in which concurrent sessions ask: the reply follows from the conversation it is sent."""

    def _next_reply(self) -> FakeReply:
        messages = self.requests[-1]["messages"]  # appended just before this call, on the same loop
        start = max(i for i, m in enumerate(messages) if m["role"] == "user" and m["content"].startswith(TASK))
        answered = sum(m["role"] == "assistant" for m in messages[start:])
        return FakeReply(text=ROUNDS[min(answered, len(ROUNDS) - 1)])
