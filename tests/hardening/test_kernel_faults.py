"""Kernel faults: the kernel killed mid-cell, a cell past the timeout, floods of output.

The server's memory is measured by PID (psutil), before, during (sampled) and after each flood.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from served import MB, chat, peak_rss, session

CODE_TIMEOUT = 5


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    return [f"--DSAgent.code_timeout={CODE_TIMEOUT}"]


@pytest.fixture
def sid(http) -> str:
    return session(http, name="kernel faults")


def execute(http, sid: str, code: str) -> dict:
    r = http.post(f"/api/sessions/{sid}/kernel/execute", json={"code": code}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_kernel_killed_mid_cell(server, http, llm, sid):
    pid = int(execute(http, sid, "import os; print(os.getpid())")["stdout"])
    marker = server.root / "dsagent" / "sessions" / sid / "cell-started"  # the kernel runs in the session folder
    llm.script(f"<code>\nopen('{marker.name}', 'w').close()\nimport time\ntime.sleep(60)", "<answer>the kernel died")

    def kill_mid_cell() -> None:
        for _ in range(600):
            if marker.exists():
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_mid_cell)
    killer.start()
    started = time.monotonic()
    events = chat(http, sid, "run a long cell")
    killer.join()
    assert time.monotonic() - started < 30  # the death is noticed, not waited out
    result = next(e["data"] for e in events if e["event"] == "code_result")
    assert not result["success"] and "kernel died" in result["error"]
    assert [e["event"] for e in events][-1] == "done" and events[-2]["data"]["stop_reason"] == "answer"
    # the kernel is back (a new process) and the next chat works
    llm.script("<code>\nprint('alive')", "<answer>ok")
    after = chat(http, sid, "again")
    assert next(e["data"] for e in after if e["event"] == "code_result")["stdout"] == "alive\n"
    assert int(execute(http, sid, "import os; print(os.getpid())")["stdout"]) != pid


def test_cell_past_the_timeout_is_interrupted(http, llm, sid):
    llm.script("<code>\nx = 7\nimport time\ntime.sleep(600)", "<answer>too slow")
    started = time.monotonic()
    events = chat(http, sid, "a slow cell")
    assert time.monotonic() - started < CODE_TIMEOUT + 15
    result = next(e["data"] for e in events if e["event"] == "code_result")
    assert result["error"].startswith(f"Timeout: execution exceeded {CODE_TIMEOUT}s and was interrupted")
    assert events[-2]["data"]["stop_reason"] == "answer"
    # interrupted, not restarted: the variables are still there
    assert execute(http, sid, "print(x)")["stdout"] == "7\n"


def flood(server, http, sid: str, code: str, label: str) -> tuple[dict, int, int]:
    """Run ``code`` after a warm-up cell: its result, the server's RSS peak growth and what it kept."""
    execute(http, sid, "print('warm')")
    before = server.rss()
    with peak_rss(server) as peak:
        result = execute(http, sid, code)
    grew, kept = peak[0] - before, server.rss() - before
    print(f"\n{label}: server RSS peak {grew / MB:+.0f} MB, after {kept / MB:+.0f} MB")
    return result, grew, kept


def test_fifty_megabytes_of_output(server, http, sid):
    result, grew, kept = flood(server, http, sid, "print('x' * 50_000_000)", "50 MB print")
    assert result["success"] and result["truncated"]
    assert len(result["stdout"]) < 1_100_000 and "characters omitted" in result["stdout"]
    # the 50 MB pass through the server (in pieces of a few MB), but are not kept
    assert grew < 400 * MB, f"peak +{grew / MB:.0f} MB"
    assert kept < 120 * MB, f"kept +{kept / MB:.0f} MB"


def test_endless_output_loop(server, http, sid):
    result, grew, kept = flood(server, http, sid, "while True:\n    print('y' * 1000)", "endless output")
    assert result["error"].startswith(f"Timeout: execution exceeded {CODE_TIMEOUT}s") and result["truncated"]
    assert len(result["stdout"]) < 1_100_000
    assert grew < 200 * MB, f"peak +{grew / MB:.0f} MB"
    assert kept < 100 * MB, f"kept +{kept / MB:.0f} MB"
    assert execute(http, sid, "print('still here')")["stdout"] == "still here\n"
