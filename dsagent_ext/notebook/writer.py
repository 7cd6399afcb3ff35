"""Session notebooks, kept in step with the event log without the agent ever waiting for them.

A notebook is rebuilt from the whole log and saved through the server's contents manager, which
validates, signs and rewrites it (after a backup copy): milliseconds that grow with its history. Done
after every round, that delayed the next round and, with many sessions streaming, the whole server.
So every logged event only marks the notebook as behind; it is written once the session calms down
(no task running and ``QUIET`` after the latest event), and during a long task at most ``MAX_WAIT``
after the first unsaved event (a pause between rounds is not calm: with many sessions busy, it wrote
each notebook after every round again). Readers of our API flush it first, the server flushes all at
stop, and the log stays the source of truth: at start, any notebook older than its log (a killed
server) is rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jupyter_core.utils import ensure_async

from ..store.notebook import build_notebook
from ..store.workspace import Workspace
from .session import AgentSession


QUIET = 0.2  # seconds without a new event, and no task running, before the notebook is written...
# ...but a running task's notebook is never further behind than this. The contents manager's save runs
# its backup copy and fsync on the event loop: with 20 sessions streaming, a write every 5 s each held the
# user's own requests up (their p95 doubled).
MAX_WAIT = 30.0


@dataclass
class _Behind:
    """A notebook with events not yet written, and the task that will write it."""

    since: float
    latest: float
    hurry: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Future[None] | None = None


class NotebookWriter:
    """Writes ``notebooks/<id>.ipynb`` for each session through the contents manager."""

    def __init__(self, contents_manager: Any, workspace: Workspace, log: logging.Logger) -> None:
        self.contents_manager = contents_manager
        self.workspace = workspace
        self.log = log
        self._behind: dict[str, _Behind] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # one save of a notebook at a time, in order

    @staticmethod
    def name(session: AgentSession) -> str:
        """The notebook's path inside the session folder."""
        return f"notebooks/{session.id}.ipynb"

    def changed(self, session: AgentSession) -> None:
        """The session logged an event: write the notebook once the session calms down.

        Outside the event loop (sessions loading at start) nothing is scheduled: ``repair`` runs next.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        now = time.monotonic()
        behind = self._behind.get(session.id)
        if behind is not None:
            behind.latest = now
            return
        behind = self._behind[session.id] = _Behind(now, now)
        behind.task = asyncio.ensure_future(self._write_when_calm(session, behind))

    async def flush(self, session: AgentSession) -> None:
        """Return once the notebook holds every event logged so far."""
        behind = self._behind.get(session.id)
        if behind is not None and behind.task is not None:
            behind.hurry.set()
            await asyncio.shield(behind.task)
        async with self._lock(session):  # a write already under way
            pass

    async def flush_all(self, sessions: Iterable[AgentSession]) -> None:
        await asyncio.gather(*(self.flush(s) for s in sessions))

    async def forget(self, session: AgentSession) -> None:
        """Drop a pending write (the session is being deleted) and wait out one under way."""
        behind = self._behind.pop(session.id, None)
        if behind is not None and behind.task is not None:
            behind.task.cancel()
            await asyncio.gather(behind.task, return_exceptions=True)
        async with self._lock(session):
            pass
        self._locks.pop(session.id, None)

    async def repair(self, sessions: Iterable[AgentSession]) -> None:
        """Rebuild, at once, the notebooks a killed server left behind their logs; ``flush`` waits for them."""
        for session in sessions:
            if await self._outdated(session):
                self.changed(session)
                self._behind[session.id].hurry.set()

    async def write(self, session: AgentSession) -> None:
        """Rebuild the notebook from the log and save it now; a failure is logged, never raised."""
        async with self._lock(session):
            nb = build_notebook(session.record.name, session.events.read())
            model = {"type": "notebook", "format": "json", "content": nb}
            try:
                await ensure_async(self.contents_manager.save(model, self._api_path(session)))
            except Exception as e:
                self.log.warning("DSAgent: could not save the notebook of session %s: %s", session.id, e)

    async def _write_when_calm(self, session: AgentSession, behind: _Behind) -> None:
        while not behind.hurry.is_set():
            due = behind.since + MAX_WAIT
            if not session.busy:
                due = min(due, behind.latest + QUIET)
            wait = due - time.monotonic()
            if wait <= 0:
                break
            try:  # a running task is looked at again every QUIET: it may have ended meanwhile
                await asyncio.wait_for(behind.hurry.wait(), min(wait, QUIET))
            except asyncio.TimeoutError:
                pass
        self._behind.pop(session.id, None)  # events from here on schedule the next write
        await self.write(session)

    async def _outdated(self, session: AgentSession) -> bool:
        try:
            logged = session.events.path.stat().st_mtime
        except FileNotFoundError:
            return False  # nothing ever happened in this session
        try:
            model = await ensure_async(self.contents_manager.get(self._api_path(session), content=False))
        except Exception:  # missing (404), or unreadable: rebuilding is the answer to both
            return True
        return model["last_modified"].timestamp() < logged

    def _api_path(self, session: AgentSession) -> str:
        return self.workspace.api_path(session.folder / self.name(session))

    def _lock(self, session: AgentSession) -> asyncio.Lock:
        return self._locks.setdefault(session.id, asyncio.Lock())
