"""The append-only event log ``logs/events.jsonl``: one JSON line per streamed event.

Each line is ``{"seq", "ts", "event", "data"}`` with ``seq`` increasing across the whole life of the
session (server restarts included), so it doubles as the SSE ``id:`` for ``Last-Event-ID`` replay.
Lines are appended and flushed one by one: a kill -9 can at worst cut the last line, which readers skip.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from .records import now

EVENTS_FILE = Path("logs") / "events.jsonl"


class EventLog:
    """Appends and reads one session's events."""

    def __init__(self, session_dir: Path) -> None:
        self.path = session_dir / EVENTS_FILE
        self._last_seq: int | None = None
        self._lock = threading.Lock()

    @property
    def last_seq(self) -> int:
        if self._last_seq is None:
            events = self.read()
            self._last_seq = events[-1]["seq"] if events else 0
        return self._last_seq

    def append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Write one event and return the stored record (with its ``seq``)."""
        with self._lock:
            record = {"seq": self.last_seq + 1, "ts": now().isoformat(), "event": event, "data": data}
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                if f.tell() and not self._ends_with_newline():
                    f.write("\n")  # a crash cut the previous line: start clean
                f.write(line + "\n")
            self._last_seq = record["seq"]
            return record

    def read(self, after: int = 0) -> list[dict[str, Any]]:
        """Events with ``seq > after``, in order; unreadable lines (a torn last write) are skipped."""
        try:
            with self.path.open(encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("seq", 0) > after:
                events.append(record)
        return events

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, 2)
            return f.read(1) == b"\n"
