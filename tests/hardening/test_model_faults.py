"""Model faults end to end: a misbehaving model server behind a real ``dsagent serve``.

Transient faults (429, 5xx, timeouts, garbage, a stream cut before any text, an empty reply) are
retried; when they persist, or when a stream breaks after text was shown, the task ends with one clear
``error`` and ``done``; a refusal (400) is not retried. After every case the session answers again.
The model worker process (where litellm runs) killed mid-stream ends the task the same way; a cancel
closes the model's stream; the worker ends with the server.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest
from client import SSEReader
from fake_llm import FakeReply
from served import Server, chat, session

WORKER = "dsagent_ext.engine.llm_worker"

MODEL_TIMEOUT = 1
OK = "<answer>fine"
SLOW = FakeReply(text=OK, delay=MODEL_TIMEOUT + 2)
CUT_EARLY = FakeReply(text="<answer>never shown", cut_after=0)
CUT_LATE = FakeReply(text="<answer>half of this reply is lost", chunk_size=4, cut_after=3)

# case: (scripted replies, model calls made, error text or None when the task answers)
CASES = {
    "429 then ok": ([FakeReply(status=429), OK], 2, None),
    "500 twice then ok": ([FakeReply(status=500), FakeReply(status=502), OK], 3, None),
    "timeout then ok": ([SLOW, OK], 2, None),
    "garbage then ok": ([FakeReply(garbage=True), OK], 2, None),
    "cut before any text then ok": ([CUT_EARLY, OK], 2, None),
    "empty then ok": (["", OK], 2, None),
    "429 always": ([FakeReply(status=429)] * 4, 4, "returned 429 after 3 retries"),
    "503 always": ([FakeReply(status=503)] * 4, 4, "returned 503 after 3 retries"),
    "timeout always": ([SLOW] * 4, 4, f"timed out after 3 retries: no reply within {MODEL_TIMEOUT}s"),
    "garbage always": ([FakeReply(garbage=True)] * 4, 4, "invalid reply"),
    "empty always": ([""] * 4, 4, "empty reply"),
    "cut after text": ([CUT_LATE], 1, "broke off mid-stream"),
    "400 refused": ([FakeReply(status=400)], 1, "rejected the request"),
}


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    return [f"--DSAgent.model_timeout={MODEL_TIMEOUT}"]


@pytest.fixture(scope="module")
def sid(server) -> str:
    with server.client() as http:
        return session(http, name="model faults")


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_model_fault(http, llm, sid, case):
    replies, calls, error = CASES[case]
    llm.script(*replies)
    sent = len(llm.requests)
    events = chat(http, sid, case)
    assert len(llm.requests) - sent == calls
    names = [e["event"] for e in events]
    assert names[-1] == "done" and names.count("done") == 1
    if error is None:
        assert "error" not in names and events[-2]["data"]["answer"] == "fine", names
    else:
        [failure] = [e["data"]["error"] for e in events if e["event"] == "error"]
        assert error in failure and "Traceback" not in failure, failure
    # the session answers the next message
    llm.script(OK)
    assert chat(http, sid, "still there?")[-2]["data"]["answer"] == "fine"


SLOW_STREAM = FakeReply(text="<answer>" + "word " * 200, chunk_size=4, chunk_delay=0.05)  # 250 chunks, 12 s


def model_worker(server) -> psutil.Process:
    """The server's one model worker process."""
    [worker] = [p for p in server.process.children() if WORKER in " ".join(p.cmdline()) and p.status() != "zombie"]
    return worker


def stream_acting(http, sid: str, message: str, act) -> list[dict]:
    """A whole streamed task, deltas left out; ``act()`` runs when the first ``llm_delta`` arrives."""
    out, reader, acted = [], SSEReader(), False
    with http.stream("POST", f"/api/sessions/{sid}/chat/stream", json={"message": message}) as r:
        for line in r.iter_lines():
            frame = reader.feed(line)
            if frame is None or frame["event"] == "comment":
                continue
            if frame["event"] == "llm_delta" and not acted:
                acted = True
                act()
            if frame["event"] != "llm_delta":
                out.append(frame)
    return out


def wait_for(condition, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_killed_model_worker_ends_the_task_and_the_next_task_works(server, http, llm, sid):
    llm.script(OK)
    chat(http, sid, "start the worker")
    killed = model_worker(server)
    llm.script(SLOW_STREAM)
    events = stream_acting(http, sid, "kill -9 the worker", lambda: killed.send_signal(signal.SIGKILL))
    names = [e["event"] for e in events]
    assert names[-2:] == ["error", "done"], names
    failure = events[-2]["data"]["error"]
    assert "worker process ended (killed by SIGKILL)" in failure, failure
    llm.script(OK)
    assert chat(http, sid, "and now?")[-2]["data"]["answer"] == "fine"
    assert model_worker(server).pid != killed.pid


def test_cancel_mid_stream_closes_the_model_stream(server, http, llm, sid):
    llm.script(SLOW_STREAM)
    dropped = llm.dropped

    def cancel() -> None:
        with server.client() as other:
            assert other.post(f"/api/sessions/{sid}/chat/cancel").json()["success"] is True

    events = stream_acting(http, sid, "cancel me", cancel)
    assert [e["event"] for e in events][-2:] == ["round_complete", "done"]
    assert events[-2]["data"]["stop_reason"] == "cancelled"
    assert wait_for(lambda: llm.dropped == dropped + 1), "the model stream was not closed"
    llm.script(OK)
    assert chat(http, sid, "next")[-2]["data"]["answer"] == "fine"


@pytest.mark.parametrize("end", ["stop", "kill -9"])
def test_model_worker_ends_with_the_server(tmp_path, llm, end):
    root = tmp_path / "root"
    root.mkdir()
    served = Server(root, llm).start()
    try:
        with served.client() as http:
            llm.script(OK)
            chat(http, session(http), "hi")
        worker = model_worker(served)
        served.kill() if end == "kill -9" else served.stop()
        worker.wait(20)  # psutil.TimeoutExpired if it outlives the server
    finally:
        served.stop()
