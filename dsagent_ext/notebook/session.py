"""What the notebook side reads and changes of a session: the live ``Session`` (``sessions/live.py``) is one.

A protocol rather than an import, so the session service can use the notebook modules without the
notebook modules depending back on it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from ..engine.kernel import KernelSession
from ..store.events import EventLog
from ..store.records import SessionRecord


class AgentSession(Protocol):
    """A session whose history the notebooks follow."""

    record: SessionRecord
    folder: Path
    events: EventLog
    kernel: KernelSession
    kernel_start: asyncio.Task[None] | None

    @property
    def id(self) -> str: ...

    @property
    def busy(self) -> bool: ...
