"""One session while the server runs: its record, event log, kernel, HITL gate and subscribers.

Every event of a session goes through ``Session.publish``: it is logged (unless stream-only), the
record's counts and kernel notes follow it, and live subscribers receive it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.hitl import HITLGate
from ..engine.kernel import KernelSession
from ..engine.prompt import describe_kernel
from ..models import FileCategory, KernelState
from ..store.events import EventLog
from ..store.records import SessionRecord

# events that /messages shows as a message, counted into the record as they are appended
MESSAGE_EVENTS = frozenset({"user_message", "llm_response", "code_result", "summary"})
# too fine-grained to log: the llm_response carries the text, the code_result the outputs
STREAM_ONLY = frozenset({"llm_delta", "code_output"})
# history, not part of the reference's event stream; ``kernel_new``: from here on the history is built
# in a kernel that started empty (a new process, or a reset: ``reset`` true, and a restore replays the
# cells after it only; a new process lost state a restore rebuilds from the cells before it too)
LOG_ONLY = frozenset({"user_message", "summary", "kernel_new"})


class SessionNotFound(LookupError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id} not found")


class SessionBusy(RuntimeError):
    """The session's kernel or agent is in use by a running task."""


class UserKernelReset(RuntimeError):
    """A reset of an attached session would restart the user's notebook kernel: the client must say so."""

    http_status = 409


class Session:
    """One session: its record on disk plus what only lives while the server runs."""

    def __init__(
        self,
        record: SessionRecord,
        folder: Path,
        kernel: KernelSession,
        hitl_timeout: float,
        on_logged: Callable[[Session], None] | None = None,
    ) -> None:
        self.record = record
        self.folder = folder
        self.events = EventLog(folder)
        self.kernel = kernel
        self.gate = HITLGate(lambda: self.record.hitl_mode, hitl_timeout)
        self.kernel_start: asyncio.Task[None] | None = None
        self.record_lock = asyncio.Lock()  # record writes one at a time, in order
        self.run: asyncio.Task[Any] | None = None  # a task, or a kernel restore
        self.restoring = False  # the run is (now) replaying the history into the kernel
        self.subscribers: set[asyncio.Queue[Any]] = set()
        self.on_logged = on_logged  # the notebook follows the log

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def busy(self) -> bool:
        return self.run is not None and not self.run.done()

    @property
    def attached(self) -> bool:
        """The session works in a user's own notebook and kernel, which are theirs: never restored."""
        return self.record.notebook_path is not None

    @property
    def kernel_is_new(self) -> bool:
        """The history was built in a kernel process that is gone: the one running now (or the one
        the next use starts) has none of its variables."""
        built_in = self.record.kernel_incarnation
        return built_in is not None and self.kernel.incarnation != built_in

    @property
    def kernel_lacks_state(self) -> bool:
        """The kernel has not got all the history built: it is new, or it was used after replacing
        a kernel whose work no restore brought back. A restore rebuilds it."""
        return self.kernel_is_new or self.record.kernel_state_lost

    def follow_kernel(self, *, emptied: bool = False) -> None:
        """Note in the record which kernel the history now builds on, and what it holds.

        A cell that ran in another kernel than the recorded one (or a reset: ``emptied``) logs
        ``kernel_new`` first: the history from there on starts from an empty namespace.
        """
        incarnation = self.kernel.incarnation
        if incarnation is None:  # the kernel died with the cell: the next one will be new
            return
        previous = self.record.kernel_incarnation
        if emptied or (previous is not None and incarnation != previous):  # (the first kernel needs no mark)
            self.publish("kernel_new", {"incarnation": incarnation, "previous": previous, "reset": emptied})
            self.record.kernel_state_lost = not emptied
        self.adopt_kernel()

    def adopt_kernel(self) -> None:
        """The running kernel is the one the history stands for (after a cell, a reset, a restore)."""
        state = self.kernel.snapshot
        self.record.kernel_incarnation = self.kernel.incarnation
        self.record.kernel_names = [v.name for v in state.variables]
        self.record.kernel_description = describe_kernel(state)

    def describe(self, state: KernelState) -> KernelState:
        """``state`` with what the session knows of it: whether it is new, whether it lacks state."""
        return state.model_copy(update={"is_new": self.kernel_is_new, "lacks_state": self.kernel_lacks_state})

    def publish(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Log an event (unless stream-only) and hand it to every live subscriber."""
        if event == "code_result":
            self.follow_kernel()
        if event in STREAM_ONLY:
            record = {"seq": None, "event": event, "data": data}
        else:
            record = self.events.append(event, data)
            self.record.message_count += event in MESSAGE_EVENTS
            if self.on_logged is not None:
                self.on_logged(self)
        if event not in LOG_ONLY:
            for queue in list(self.subscribers):
                queue.put_nowait(record)
        return record

    def path(self, category: FileCategory) -> Path:
        return self.folder / category.value
