"""The append-only event log ``logs/events.jsonl``: one JSON line per streamed event.

Each line is ``{"seq", "ts", "event", "data"}`` with ``seq`` increasing across the whole life of the
session (server restarts included), so it doubles as the SSE ``id:`` for ``Last-Event-ID`` replay.
Lines are appended and flushed one by one: a kill -9 can at worst cut the last line, which readers skip.
The file is parsed once, on first use, and kept in memory in step with each append: every round,
``/turns``, ``/messages`` and the notebook read the log, and re-parsing it each time grew with history.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from pathlib import Path
from typing import Any

from .records import now

EVENTS_FILE = Path("logs") / "events.jsonl"


class EventLog:
    """Appends and reads one session's events."""

    def __init__(self, session_dir: Path) -> None:
        self.path = session_dir / EVENTS_FILE
        self._events: list[dict[str, Any]] | None = None  # the parsed log, once loaded
        self._check_tail = True  # whether the file may end in a line cut by a crash
        self._lock = threading.Lock()

    @property
    def last_seq(self) -> int:
        with self._lock:
            events = self._load()
        return events[-1]["seq"] if events else 0

    def append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Write one event and return the stored record (with its ``seq``)."""
        with self._lock:
            events = self._load()
            seq = events[-1]["seq"] + 1 if events else 1
            record = {"seq": seq, "ts": now().isoformat(), "event": event, "data": data}
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            try:
                f = self.path.open("a", encoding="utf-8")
            except FileNotFoundError:  # the first event (a mkdir on every append cost more than the write)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                f = self.path.open("a", encoding="utf-8")
            with f:
                if self._check_tail and f.tell() and not self._ends_with_newline():
                    f.write("\n")  # a crash cut the previous line: start clean
                f.write(line + "\n")
            self._check_tail = False  # from now on the file ends with a line of ours
            events.append(record)
            return record

    def last(self) -> dict[str, Any] | None:
        """The last readable event; before the log is loaded, read from the file's tail alone, so a
        question about the end of a long history (at server start, for every session) stays cheap."""
        with self._lock:
            if self._events is None:
                found, record = _last_record(self.path)
                if found:
                    return record
            events = self._load()
            return events[-1] if events else None

    def read(self, after: int = 0) -> list[dict[str, Any]]:
        """Events with ``seq > after``, in order; unreadable lines (a torn last write) are skipped."""
        with self._lock:
            events = self._load()
            return events[bisect_right(events, after, key=_seq) :]  # seqs only ever increase

    def _load(self) -> list[dict[str, Any]]:
        if self._events is None:
            self._events = self._parse()
        return self._events

    def _parse(self) -> list[dict[str, Any]]:
        try:
            with self.path.open(encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return []
        return [record for line in lines if (record := _record(line)) is not None]

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, 2)
            return f.read(1) == b"\n"


def _seq(record: dict[str, Any]) -> int:
    return record["seq"]


def _record(line: str | bytes) -> dict[str, Any] | None:
    """The event on this line; None for an empty line or one a crash tore."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("seq", 0) > 0 else None


TAIL_BYTES = 65_536


def _last_record(path: Path) -> tuple[bool, dict[str, Any] | None]:
    """(True, the last record) when the file's tail holds a whole readable line, else (False, None)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return True, None
    lines = tail.split(b"\n")
    complete = lines if size <= TAIL_BYTES else lines[1:]  # the first may be cut by the seek
    for line in reversed(complete):
        record = _record(line)
        if record is not None:  # else empty, or torn by a crash: the one before may do
            return True, record
    return False, None
