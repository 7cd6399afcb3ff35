"""The event log on disk: appends, reads after a seq, and the last event read from the file's tail."""

from __future__ import annotations

import json

from dsagent_ext.store.events import EVENTS_FILE, TAIL_BYTES, EventLog


def fresh(folder) -> EventLog:
    """A new reader of the same folder, as a server start has (nothing loaded yet)."""
    return EventLog(folder)


def test_reads_after_a_seq(tmp_path):
    log = EventLog(tmp_path)
    for n in range(5):
        log.append("thinking", {"round": n})
    assert [r["seq"] for r in log.read(2)] == [3, 4, 5]
    assert [r["seq"] for r in fresh(tmp_path).read(4)] == [5]
    assert fresh(tmp_path).read(5) == [] and len(fresh(tmp_path).read()) == 5


def test_last_event_from_the_tail(tmp_path):
    assert fresh(tmp_path).last() is None  # no log yet
    log = EventLog(tmp_path)
    log.append("user_message", {"message": "hi"})
    log.append("done", {})
    assert fresh(tmp_path).last()["event"] == "done"
    # a last line longer than the tail that is read: the whole log is read instead
    log.append("code_result", {"stdout": "x" * (2 * TAIL_BYTES)})
    assert fresh(tmp_path).last()["data"]["stdout"] == "x" * (2 * TAIL_BYTES)
    # a line torn by a crash is skipped
    with (tmp_path / EVENTS_FILE).open("a") as f:
        f.write(json.dumps({"seq": 99, "event": "done", "data": {}})[:20])
    assert fresh(tmp_path).last()["event"] == "code_result"
    fresh(tmp_path).append("done", {})  # the next server's first append starts on a line of its own
    after = fresh(tmp_path)
    assert after.last()["event"] == "done" and [r["seq"] for r in after.read()] == [1, 2, 3, 4]
