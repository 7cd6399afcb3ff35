"""The session record: ``session.json``, rewritten atomically so a crash never leaves it half written."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from ..models import HITLMode, Model, SessionStatus

RECORD_FILE = "session.json"


def now() -> datetime:
    """Timezone-aware UTC: unambiguous for clients in any zone."""
    return datetime.now(timezone.utc)


class SessionRecord(Model):
    """What a session is, as stored; counts are cached here so listing never reads event logs."""

    id: str
    name: str
    status: SessionStatus = SessionStatus.active
    created_at: datetime
    updated_at: datetime
    model: str
    hitl_mode: HITLMode
    message_count: int = 0
    kernel_variables: int = 0
    # the kernel process the history was last built in (``KernelSession.incarnation``), and what it
    # held by its last description: a new kernel is told apart from it, and told what it lacks
    kernel_incarnation: str | None = None
    kernel_names: list[str] = []
    kernel_description: str = ""
    # cells of the history ran in a kernel process that is gone, and no complete restore (nor a
    # reset) has come since: the running kernel lacks what they built even once it is used
    kernel_state_lost: bool = False
    notebook_path: str | None = None  # the user's notebook whose kernel the session works in
    written_through: int | None = None  # seq of the last event whose cell is in that notebook

    def touch(self) -> None:
        self.updated_at = now()


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and ``os.replace``: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_record(folder: Path, record: SessionRecord) -> None:
    write_atomic(folder / RECORD_FILE, record.model_dump_json(indent=2))


def load_record(folder: Path) -> SessionRecord | None:
    """The record of a session folder, or None when it is missing or unreadable."""
    try:
        return SessionRecord.model_validate(json.loads((folder / RECORD_FILE).read_text("utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
