"""The session service: owns every session's record, folders, event log and kernel.

Handlers call it and nothing else; it calls the store and the engine. Kernels come only from the
server's kernel manager, started in the background on create so ``POST /api/sessions`` answers at once
and concurrent creates overlap instead of queueing behind kernel boots.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.gateway.managers import GatewayMappingKernelManager

from .engine.hitl import HITLGate
from .engine.kernel import KernelSession
from .engine.llm import missing_api_key
from .engine.prompt import describe_kernel
from .models import (
    CreateSessionRequest,
    ExecutionResult,
    FileCategory,
    KernelState,
    RunningTask,
    SessionResponse,
    SessionStatus,
    UpdateSessionRequest,
)
from .notebooks import NotebookWriter
from .policy import Policy
from .store.events import EventLog
from .store.history import closing_round, unfinished_task
from .store.records import SessionRecord, load_record, now, save_record
from .store.workspace import Workspace, check_session_id, new_session_id

if TYPE_CHECKING:
    from .app import DSAgent

# events that /messages shows as a message, counted into the record as they are appended
MESSAGE_EVENTS = frozenset({"user_message", "llm_response", "code_result", "summary"})
STREAM_ONLY = frozenset({"llm_delta"})  # too fine-grained to log; the llm_response carries the text
# history, not part of the reference's event stream; ``kernel_new``: from here on the history is built
# in a kernel that started empty (a new process, or a reset), so a restore replays the cells after it
LOG_ONLY = frozenset({"user_message", "summary", "kernel_new"})
BOOT_DELAY = 0.05  # seconds between answering a create and launching its kernel


class SessionNotFound(LookupError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id} not found")


class SessionBusy(RuntimeError):
    """The session's kernel or agent is in use by a running task."""


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
        """The session works in a user's own notebook and kernel, which are theirs: never restored.

        The single check point for that: sessions are not attached to notebooks yet.
        """
        return False

    @property
    def kernel_is_new(self) -> bool:
        """The history was built in a kernel process that is gone: the one running now (or the one
        the next use starts) has none of its variables."""
        built_in = self.record.kernel_incarnation
        return built_in is not None and self.kernel.incarnation != built_in

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
            self.publish("kernel_new", {"incarnation": incarnation, "previous": previous})
        self.adopt_kernel()

    def adopt_kernel(self) -> None:
        """The running kernel is the one the history stands for (after a cell, a reset, a restore)."""
        state = self.kernel.snapshot
        self.record.kernel_incarnation = self.kernel.incarnation
        self.record.kernel_names = [v.name for v in state.variables]
        self.record.kernel_description = describe_kernel(state)

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


class SessionService:
    """Creates, finds, changes and removes sessions."""

    def __init__(self, config: DSAgent, workspace: Workspace, log: logging.Logger) -> None:
        self.config = config
        self.workspace = workspace
        self.log = log
        self._sessions: dict[str, Session] = {}
        self.policy = Policy(config)
        self.notebooks = NotebookWriter(lambda: config.serverapp.contents_manager, workspace, log)
        for session_id in workspace.session_ids():
            folder = workspace.session_dir(session_id)
            record = load_record(folder)
            if record is None:
                log.warning("DSAgent: skipping session folder %s without a readable session.json", session_id)
                continue
            session = self._session(record, folder)
            self._sessions[session_id] = session
            self._close_interrupted(session)

    def _close_interrupted(self, session: Session) -> None:
        """Close a task the server was killed in the middle of, so /turns and clients see how it ended.

        Runs before the server answers anything, so no task of this process can be running yet. The
        message count is recounted from the log: the record may predate the last events of that task.
        A log that ends with ``done`` (nearly all) is not read further, nor kept in memory.
        """
        last = session.events.last()
        if last is None or last["event"] == "done":
            return
        events = session.events.read()
        task = unfinished_task(events)
        if task is None:
            return
        closing, usage = closing_round(task)
        self.log.warning("DSAgent: session %s: closing the task a server stop interrupted", session.id)
        session.publish("round_complete", closing.model_dump(mode="json"))
        session.publish("done", {"usage": usage.model_dump(mode="json"), "interrupted": True})
        session.record.message_count = sum(r["event"] in MESSAGE_EVENTS for r in events)
        session.record.touch()
        save_record(session.folder, session.record)  # before the event loop runs: no thread needed

    @property
    def kernel_manager(self) -> Any:
        return self.config.serverapp.kernel_manager

    def _session(self, record: SessionRecord, folder: Path) -> Session:
        kernel = KernelSession(
            self.kernel_manager,
            kernel_name=self.config.kernel_name,
            path=self.workspace.api_path(folder),
            cwd=str(folder),
            watches_activity=not isinstance(self.kernel_manager, GatewayMappingKernelManager),
            log=self.log,
        )
        return Session(record, folder, kernel, self.config.hitl_timeout, on_logged=self.notebooks.changed)

    # --- queries ---------------------------------------------------------------------------------

    def get(self, session_id: str) -> Session:
        check_session_id(session_id)
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound(session_id) from None

    def list(self, status: SessionStatus | None = None, limit: int = 50) -> tuple[list[Session], int]:
        """Sessions newest-updated first, and how many match in all."""
        matching = [s for s in self._sessions.values() if status is None or s.record.status == status]
        matching.sort(key=lambda s: s.record.updated_at, reverse=True)
        return matching[:limit], len(matching)

    def loaded(self) -> list[Session]:
        """Every session this server knows, in no particular order."""
        return list(self._sessions.values())

    def response(self, session: Session) -> SessionResponse:
        record = session.record
        return SessionResponse(
            **record.model_dump(),
            workspace_path=self.workspace.api_path(session.folder),
            missing_api_key=missing_api_key(record.model, self.config.api_base),
            running_task=self._running_task(session) if session.busy else None,
        )

    def _running_task(self, session: Session) -> RunningTask | None:
        """The running task's message and its rounds already logged (read from the log: only when busy).
        None when the run is a kernel restore of its own: the last task has ended."""
        rounds = 0
        for record in reversed(session.events.read()):
            if record["event"] == "done":
                return None
            if record["event"] == "round_complete":
                rounds += 1
            elif record["event"] == "user_message":
                return RunningTask(message=record["data"].get("message", ""), completed_rounds=rounds)
        return None

    def resolve_model(self, session: Session, model: str | None = None) -> str:
        """Explicit > session > configured default (itself DSAGENT_DEFAULT_MODEL > LLM_MODEL > gpt-4o)."""
        return model or session.record.model or self.config.default_model

    # --- changes ---------------------------------------------------------------------------------

    async def create(self, request: CreateSessionRequest) -> Session:
        """Create folders and record, then boot the kernel in the background; 400 outside the policy."""
        model = request.model or self.config.default_model
        hitl_mode = request.hitl_mode or self.policy.default_hitl_mode
        self.policy.check_model(model)
        self.policy.check_hitl_mode(hitl_mode)
        session_id = new_session_id()
        while session_id in self._sessions:
            session_id = new_session_id()
        created = now()
        record = SessionRecord(
            id=session_id,
            name=request.name or f"Session {datetime.now():%Y-%m-%d %H:%M}",
            created_at=created,
            updated_at=created,
            model=model,
            hitl_mode=hitl_mode,
        )
        folder = self.workspace.create_session_dirs(session_id)
        try:
            await asyncio.to_thread(save_record, folder, record)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        session = self._session(record, folder)
        self._sessions[session_id] = session
        self.start_kernel(session)
        return session

    def start_kernel(self, session: Session) -> None:
        """Boot the kernel without making the caller wait; failures surface on first use."""
        if session.kernel_start is None or session.kernel_start.done():
            session.kernel_start = asyncio.ensure_future(self._boot(session))

    async def _boot(self, session: Session) -> None:
        # Launching a kernel forks from the event loop: let the requests already arriving (a burst of
        # creates) be answered first; a few milliseconds on a boot that takes a second or more.
        await asyncio.sleep(BOOT_DELAY)
        try:
            await session.kernel.ensure_started()
        except Exception as e:  # reported again, to the caller, when the kernel is first used
            self.log.warning("DSAgent: kernel for session %s did not start: %s", session.id, e)

    async def kernel(self, session: Session) -> KernelSession:
        """The session's running kernel (started again after a restart, a cull or a crash)."""
        await session.kernel.ensure_started()
        return session.kernel

    async def kernel_state(self, session: Session) -> KernelState:
        """Fresh state when the kernel runs (waiting for a boot in progress), else the last snapshot."""
        if session.kernel_start is not None:
            await asyncio.gather(session.kernel_start, return_exceptions=True)
        if not session.kernel.is_alive:
            return session.kernel.snapshot.model_copy(update={"is_running": False, "is_new": session.kernel_is_new})
        state = await session.kernel.state()
        await self._count_variables(session, state)
        return state.model_copy(update={"is_new": session.kernel_is_new})

    async def execute(self, session: Session, code: str) -> ExecutionResult:
        """Run code for a client, outside any agent task; logged like the agent's own cells."""
        if session.busy:
            raise SessionBusy("Session is running a task; wait for it or cancel it before executing code")
        kernel = await self.kernel(session)
        self.reactivate(session)  # saved below
        session.publish("code_executing", {"code": code, "source": "user"})
        result = await kernel.execute(code, timeout=self.config.code_timeout, describe=True)
        session.publish("code_result", result.model_dump(mode="json"))
        session.record.kernel_variables = len(kernel.snapshot.variables)
        await self.save(session)
        return result

    async def reset(self, session: Session) -> KernelState:
        """Restart the kernel: variables are gone, the workspace cwd and standard imports are back."""
        if session.busy:
            raise SessionBusy("Session is running a task; cancel it before resetting the kernel")
        kernel = await self.kernel(session)
        state = await kernel.restart()
        self.reactivate(session)  # saved below
        session.follow_kernel(emptied=True)  # an empty kernel on purpose: not one to tell of or restore
        session.record.kernel_variables = len(state.variables)
        await self.save(session)
        return state

    @staticmethod
    def reactivate(session: Session) -> bool:
        """An archived session used again (code, reset, chat) is active again: its kernel runs.

        Called once the kernel is up, so an archive that ran meanwhile cannot leave an archived
        session with a running kernel, nor an active one without. True when the status changed.
        """
        if session.record.status != SessionStatus.archived:
            return False
        session.record.status = SessionStatus.active
        return True

    async def _count_variables(self, session: Session, state: KernelState) -> None:
        if session.record.kernel_variables != len(state.variables):
            session.record.kernel_variables = len(state.variables)
            await self.save(session)

    async def update(self, session: Session, request: UpdateSessionRequest) -> Session:
        """Apply the given fields; model and HITL mode take effect from the next model call or pause.
        Setting the status to ``archived`` archives the session (its kernel stops). Nothing changes
        when a model or mode lies outside the policy (400)."""
        if request.model is not None:
            self.policy.check_model(request.model)
        if request.hitl_mode is not None:
            self.policy.check_hitl_mode(request.hitl_mode)
        changes = request.model_dump(exclude_none=True)
        if changes.get("status") == SessionStatus.archived and session.record.status != SessionStatus.archived:
            await self.archive(session)
        for field, value in changes.items():
            setattr(session.record, field, value)
        await self.save(session)
        return session

    async def save(self, session: Session) -> None:
        """Write the record in a worker thread: its fsync can take milliseconds when the disk is busy
        (kernels starting), which the event loop, serving everyone, must not wait for."""
        session.record.touch()
        async with session.record_lock:
            await asyncio.to_thread(save_record, session.folder, session.record.model_copy())

    async def archive(self, session: Session) -> Session:
        """Stop the kernel and mark the session archived; its files and history stay.

        A kernel still booting (a session created a moment ago) is waited for, as on delete: else the
        boot would go on to start it after the archive, for a session that says it has none.
        """
        if session.busy:
            raise SessionBusy("Session is running a task; cancel it before archiving")
        if session.kernel_start is not None:
            await asyncio.gather(session.kernel_start, return_exceptions=True)
        await session.kernel.shutdown()
        session.record.status = SessionStatus.archived
        await self.save(session)
        return session

    async def delete(self, session: Session) -> None:
        """Stop any run, shut the kernel down, and remove the folder."""
        if session.run is not None and not session.run.done():
            session.run.cancel()
            await asyncio.gather(session.run, return_exceptions=True)
        if session.kernel_start is not None:
            await asyncio.gather(session.kernel_start, return_exceptions=True)
        await session.kernel.shutdown()
        await self.notebooks.forget(session)
        self._sessions.pop(session.id, None)
        await asyncio.to_thread(shutil.rmtree, session.folder, ignore_errors=True)

    async def shutdown(self) -> None:
        """Server stop: cancel runs (their closing events are logged) and kernel boots in flight,
        then write the notebooks still behind their logs."""
        tasks = [t for s in self._sessions.values() for t in (s.run, s.kernel_start) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.notebooks.flush_all(self._sessions.values())
        for session in self._sessions.values():
            session.kernel.close()
