"""Process faults: the server SIGKILLed mid-round and started again; a client leaving mid-stream.

A kill loses no completed round (it is in /turns and in the notebook), the task it interrupted is
closed with a round whose ``stop_reason`` is ``interrupted``, and every file still parses.
"""

from __future__ import annotations

import json
import time

import httpx
import nbformat
import pytest
from served import Server, chat, events, session

from dsagent_ext.store.history import INTERRUPTED, closing_round, unfinished_task
from dsagent_ext.store.records import SessionRecord

TASK = ["<code>\nprint('round 1')", "<code>\nprint('round 2')", "<code>\nimport time\ntime.sleep(120)"]


def stream_until(http: httpx.Client, sid: str, message: str, stop: tuple[str, int]) -> list[dict]:
    """Stream a task until the event ``stop`` = (name, round) arrives; the connection then just ends."""
    seen, frame = [], {}
    with http.stream("POST", f"/api/sessions/{sid}/chat/stream", json={"message": message}) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                frame["event"] = line[7:]
            elif line.startswith("data: "):
                frame["data"] = json.loads(line[6:])
                seen.append(frame)
                if (frame["event"], frame["data"].get("round")) == stop:
                    return seen
                frame = {}
    raise AssertionError(f"the stream ended before {stop}: {[e['event'] for e in seen]}")


def assert_files_sound(folder, http: httpx.Client, sid: str) -> list[dict]:
    """Every log line parses with increasing seqs, the record validates, the notebook is valid.

    The log is appended and the record replaced atomically, so the disk is read for them; the notebook
    is rewritten in the background (in place, by the contents manager), so it is read as a user reads
    it: through the API, which writes what is pending first.
    """
    lines = (folder / "logs" / "events.jsonl").read_text("utf-8").splitlines()
    log = [json.loads(line) for line in lines]
    seqs = [r["seq"] for r in log]
    assert seqs == sorted(set(seqs)) == list(range(1, len(log) + 1))
    SessionRecord.model_validate_json((folder / "session.json").read_text("utf-8"))
    r = http.get(f"/api/sessions/{sid}/notebook")
    assert r.status_code == 200, r.text
    nbformat.validate(nbformat.reads(r.text, as_version=4))
    return log


def test_kill_mid_cell_then_restart(tmp_path, llm):
    root = tmp_path / "root"
    root.mkdir()
    server = Server(root, llm).start()
    try:
        with server.client() as http:
            sid = session(http, name="killed")
            llm.script(*TASK)
            stream_until(http, sid, "three rounds", ("code_executing", 3))
    finally:
        server.kill()
    folder = root / "dsagent" / "sessions" / sid
    server.start()
    try:
        with server.client() as http:
            turns = http.get(f"/api/sessions/{sid}/turns").json()["turns"]
            assert [t["stop_reason"] for t in turns] == [None, None, "interrupted"]
            assert [t["execution_result"]["stdout"] for t in turns[:2]] == ["round 1\n", "round 2\n"]
            closing = turns[2]
            assert closing["is_complete"] and closing["answer"] == INTERRUPTED
            assert "time.sleep(120)" in closing["code"] and closing["execution_result"] is None
            # a client that reconnects sees how the task ended
            resumed = events(http, "GET", f"/api/sessions/{sid}/chat/stream")
            assert [e["event"] for e in resumed][-2:] == ["round_complete", "done"]
            assert resumed[-1]["data"]["interrupted"] is True
            notebook = nbformat.reads(http.get(f"/api/sessions/{sid}/notebook").text, as_version=4)
            cells = {c.source: c for c in notebook.cells if c.cell_type == "code"}
            assert [cells[f"print('round {n}')"].outputs[0]["text"] for n in (1, 2)] == ["round 1\n", "round 2\n"]
            assert "import time\ntime.sleep(120)" in cells  # the interrupted round's cell, without outputs
            record = http.get(f"/api/sessions/{sid}").json()
            assert record["message_count"] == http.get(f"/api/sessions/{sid}/messages").json()["total"]
            log = assert_files_sound(folder, http, sid)
            assert [r["event"] for r in log].count("done") == 1
            # the session goes on: a new task runs in a fresh kernel
            llm.script("<code>\nprint('after')", "<answer>back")
            after = chat(http, sid, "again")
            assert [e["event"] for e in after][-1] == "done" and after[-2]["data"]["stop_reason"] == "answer"
            assert next(e for e in after if e["event"] == "code_result")["data"]["stdout"] == "after\n"
    finally:
        server.stop()
    # a clean restart does not close anything twice
    server.start()
    try:
        with server.client() as http:
            assert [r["event"] for r in assert_files_sound(folder, http, sid)].count("done") == 2
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    return ["--DSAgent.code_timeout=30"]


def test_client_leaving_mid_stream_does_not_stop_the_run(server, http, llm):
    sid = session(http, name="left")
    llm.script("<code>\nimport time\ntime.sleep(0.5)\nprint('a')", "<code>\nprint('b')", "<answer>finished")
    stream_until(http, sid, "leave early", ("round_complete", 1))  # then the client disconnects
    with server.client() as other:
        for _ in range(120):
            turns = other.get(f"/api/sessions/{sid}/turns").json()["turns"]
            if turns and turns[-1]["is_complete"]:
                break
            time.sleep(0.25)
    assert [t["stop_reason"] for t in turns] == [None, None, "answer"]
    assert turns[-1]["answer"] == "finished"
    log = assert_files_sound(server.root / "dsagent" / "sessions" / sid, http, sid)
    assert [r["event"] for r in log].count("done") == 1


def log(*events: tuple[str, dict]) -> list[dict]:
    return [{"seq": n, "ts": "2026-01-01T00:00:00+00:00", "event": e, "data": d} for n, (e, d) in enumerate(events, 1)]


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
ROUND_1 = {"round": 1, "content": "c1", "code": "x = 1", "is_complete": False, "usage": USAGE}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (log(("user_message", {"message": "hi"})), (1, "", None, None)),
        (log(("user_message", {"message": "hi"}), ("thinking", {}), ("round_complete", ROUND_1), ("thinking", {}),
             ("llm_response", {"content": "c2"}), ("code_executing", {"code": "y = 2"}),
             ("code_result", {"stdout": "", "success": True})), (2, "c2", "y = 2", True)),
        (log(("user_message", {"message": "hi"}), ("round_complete", ROUND_1), ("done", {})), None),
        # code run by a client after a finished task is no task
        (log(("user_message", {"message": "hi"}), ("done", {}), ("code_executing", {"code": "1"})), None),
        (log(("code_executing", {"code": "1"}), ("code_result", {"success": True})), None),
    ],
    ids=["nothing logged yet", "mid-round with a result", "finished", "execute after a task", "no task"],
)
def test_closing_round_from_the_log(events, expected):
    """How much of an interrupted round the closing round carries, straight from the log."""
    task = unfinished_task(events)
    if expected is None:
        assert task is None
        return
    closing, usage = closing_round(task)
    number, content, code, success = expected
    assert (closing.round, closing.content, closing.code) == (number, content, code)
    assert (closing.execution_result.success if closing.execution_result else None) == success
    assert closing.stop_reason == "interrupted" and closing.is_complete and closing.answer == INTERRUPTED
    assert usage.total_tokens == (5 if number == 2 else 0)
