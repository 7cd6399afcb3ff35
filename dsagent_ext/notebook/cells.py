"""The agent's cells in an attached notebook: exactly one writer, the window that claims it or the server.

A JupyterLab window showing the notebook claims it (a lease it renews every few seconds) and inserts
the agent's cells into its notebook model, so the user's unsaved edits stay and no "file changed on
disk" appears. While no claim is live (no window, a closed tab, a lapsed heartbeat) the server appends
the cells of every logged event after ``written_through`` to the file through the contents manager.
``written_through`` is the seq of the last event whose cell is in the notebook (told by the claimant,
advanced by the server) and lives in the session record, so neither a handover nor a restart doubles
a cell. Leases are in memory: after a restart, windows claim again with their next heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async

from ..settings import NotebookSettings
from ..store.notebook import agent_cells
from .session import AgentSession


QUIET = 0.2  # seconds after an event before the server writes (events of one moment go in one save)


class ClaimHeld(RuntimeError):
    """Another window holds the notebook of this session."""

    http_status = 409

    def __init__(self, holder: str) -> None:
        super().__init__("Another window is writing this session's cells into the notebook")
        self.payload = {"client_id": holder}


class NotAttached(ValueError):
    http_status = 400


@dataclass
class Claim:
    client_id: str
    expires: float
    timer: asyncio.TimerHandle | None = None


class NotebookCells:
    """Claims on attached notebooks, and the server's writer for the cells no window writes."""

    def __init__(
        self,
        settings: NotebookSettings,
        contents_manager: Any,
        save: Callable[[AgentSession], Awaitable[None]],
        log: logging.Logger,
    ) -> None:
        self.settings = settings
        self.contents_manager = contents_manager
        self.lease = settings.claim_lease  # seconds a claim lasts without a renewal
        self._save = save  # writes the session record (``written_through``)
        self.log = log
        self._claims: dict[str, Claim] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # --- claims ----------------------------------------------------------------------------------

    def holder(self, session: AgentSession) -> str | None:
        """The client whose claim is live, if any."""
        claim = self._claims.get(session.id)
        return claim.client_id if claim is not None and claim.expires > time.monotonic() else None

    async def claim(self, session: AgentSession, client_id: str, written_through: int | None) -> None:
        """Take or renew the claim; the claimant reports how far its notebook holds the agent's cells."""
        if not session.record.notebook_path:
            raise NotAttached("Session is not attached to a notebook")
        async with self._lock(session):  # not while the server is appending: the claimant's count would be stale
            holder = self.holder(session)
            if holder is not None and holder != client_id:
                raise ClaimHeld(holder)
            self._release_timer(session)
            claim = Claim(client_id, time.monotonic() + self.lease)
            # a lapse writes what the window did not: armed on every renewal
            claim.timer = asyncio.get_running_loop().call_later(self.lease + QUIET, self.changed, session)
            self._claims[session.id] = claim
            if written_through is not None and written_through > (session.record.written_through or 0):
                session.record.written_through = min(written_through, session.events.last_seq)
                await self._save(session)

    def release(self, session: AgentSession, client_id: str) -> None:
        """Give the claim up (only its holder can); the server writes from here on."""
        claim = self._claims.get(session.id)
        if claim is not None and claim.client_id == client_id:
            self._release_timer(session)
            del self._claims[session.id]
            self.changed(session)

    def _release_timer(self, session: AgentSession) -> None:
        claim = self._claims.get(session.id)
        if claim is not None and claim.timer is not None:
            claim.timer.cancel()

    # --- the server's writer ---------------------------------------------------------------------

    def catch_up_later(self, session: AgentSession) -> None:
        """After a restart: give windows one lease to claim again, then write what none has."""
        if session.record.notebook_path and session.record.written_through != session.events.last_seq:
            asyncio.get_running_loop().call_later(self.lease + QUIET, self.changed, session)

    def changed(self, session: AgentSession) -> None:
        """An event was logged (or a claim ended): append the cells soon, unless a window writes them."""
        if not session.record.notebook_path or self.holder(session) is not None or session.id in self._pending:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # sessions loading before the server runs
            return
        self._pending[session.id] = asyncio.ensure_future(self._write_soon(session))

    async def flush(self, session: AgentSession) -> None:
        """Return once the cells logged so far are written (or a window holds the notebook)."""
        pending = self._pending.get(session.id)
        if pending is not None:
            await asyncio.shield(pending)
        async with self._lock(session):
            pass

    async def forget(self, session: AgentSession) -> None:
        """The session is deleted or detached: drop its claim and any write not yet started."""
        self._release_timer(session)
        self._claims.pop(session.id, None)
        pending = self._pending.pop(session.id, None)
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)

    async def _write_soon(self, session: AgentSession) -> None:
        await asyncio.sleep(QUIET)
        self._pending.pop(session.id, None)  # events from here on schedule the next write
        await self.write(session)

    async def write(self, session: AgentSession) -> None:
        """Append the cells after ``written_through`` to the notebook file; a failure is logged, never raised."""
        path = session.record.notebook_path
        async with self._lock(session):
            if not path or self.holder(session) is not None:
                return
            after = session.record.written_through or 0
            cells, plan, through = agent_cells(session.events.read(), after, session.id, self.settings.markdown_cells)
            if through == after:
                return
            try:
                if cells or plan is not None:
                    await self._append(path, session.id, cells, plan)
            except Exception as e:
                self.log.warning("DSAgent: could not add the agent's cells to notebook %s: %s", path, e)
                return
            session.record.written_through = through
            await self._save(session)

    async def _append(self, path: str, session_id: str, cells: list[Any], plan: str | None) -> None:
        """Add the cells at the end; a new plan text goes into the task's plan cell (the session's last)."""
        manager = self.contents_manager
        model = await ensure_async(manager.get(path, content=True, type="notebook"))
        notebook = model["content"]
        if plan is not None:
            plans = [cell for cell in notebook.cells if _is_plan_of(cell, session_id)]
            if plans:
                plans[-1].source = plan
        notebook.cells.extend(cells)
        nbformat.validate(notebook)
        await ensure_async(manager.save({"type": "notebook", "format": "json", "content": notebook}, path))

    def _lock(self, session: AgentSession) -> asyncio.Lock:
        return self._locks.setdefault(session.id, asyncio.Lock())


def _is_plan_of(cell: Any, session_id: str) -> bool:
    mark = cell.get("metadata", {}).get("dsagent", {})
    return mark.get("session_id") == session_id and mark.get("kind") == "plan"
