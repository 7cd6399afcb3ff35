"""Model faults end to end: a misbehaving model server behind a real ``dsagent serve``.

Transient faults (429, 5xx, timeouts, garbage, a stream cut before any text, an empty reply) are
retried; when they persist, or when a stream breaks after text was shown, the task ends with one clear
``error`` and ``done``; a refusal (400) is not retried. After every case the session answers again.
"""

from __future__ import annotations

import pytest
from fake_llm import FakeReply
from served import chat, session

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
