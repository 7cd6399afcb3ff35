"""The session service: owns every session's record, folders, event log and kernel.

Handlers call it and nothing else; it calls the store and the engine. Kernels come only from the
server's kernel manager, started in the background on create so ``POST /api/sessions`` answers at once
and concurrent creates overlap instead of queueing behind kernel boots.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import shutil
from datetime import datetime
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_server.gateway.managers import GatewayMappingKernelManager

from ..engine.kernel import KernelSession
from ..engine.llm import missing_api_key
from ..governance.policy import Policy
from ..models import (
    CreateSessionRequest,
    ExecutionResult,
    KernelState,
    RunningTask,
    SessionResponse,
    SessionStatus,
    UpdateSessionRequest,
)
from ..notebook.attachments import Attachments
from ..notebook.cells import NotebookCells
from ..notebook.writer import NotebookWriter
from ..settings import SessionSettings
from ..store.history import closing_round, unfinished_task
from ..store.records import SessionRecord, load_record, now, save_record
from ..store.workspace import Workspace, check_session_id, new_session_id
from .live import MESSAGE_EVENTS, Session, SessionBusy, SessionNotFound, UserKernelReset

BOOT_DELAY = 0.05  # seconds between answering a create and launching its kernel


class SessionService:
    """Creates, finds, changes and removes sessions."""

    def __init__(
        self,
        settings: SessionSettings,
        workspace: Workspace,
        policy: Policy,
        *,
        contents_manager: Any,
        kernel_manager: Any,
        session_manager: Any,
        kernel_spec_manager: Any,
        log: logging.Logger,
    ) -> None:
        """The managers are the server's: kernels, notebooks and Jupyter sessions are its own."""
        self.settings = settings
        self.workspace = workspace
        self.policy = policy
        self.kernel_manager = kernel_manager
        self.log = log
        self._sessions: dict[str, Session] = {}
        # raises ``UnroutableModel`` for a name litellm sends nowhere (``RunService.check_route``, which
        # asks where litellm runs); None: names are only checked against the policy
        self.route_model: Callable[[str], Awaitable[None]] | None = None
        self.cells = NotebookCells(settings.notebook, contents_manager, self.save, log)
        self.attachments = Attachments(
            settings.notebook,
            contents_manager,
            session_manager,
            kernel_spec_manager,
            log,
            sessions=self.loaded,
            kernel=self._kernel,
            cells=self.cells,
        )
        self.notebooks = NotebookWriter(contents_manager, workspace, log)
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

    def _session(self, record: SessionRecord, folder: Path) -> Session:
        kernel = self._kernel(record, folder)
        return Session(record, folder, kernel, self.settings.hitl_timeout, on_logged=self._logged)

    def _logged(self, session: Session) -> None:
        """Both notebooks follow the log: the session's own, and an attached user's notebook."""
        self.notebooks.changed(session)
        self.cells.changed(session)

    def _kernel(self, record: SessionRecord, folder: Path, kernel_id: str | None = None) -> KernelSession:
        """The session's own kernel, or the kernel of the notebook it is attached to."""
        path = record.notebook_path
        return KernelSession(
            self.kernel_manager,
            kernel_name=self.settings.kernel_name,
            path=self.workspace.api_path(folder),
            cwd=str(folder),
            watches_activity=not isinstance(self.kernel_manager, GatewayMappingKernelManager),
            log=self.log,
            adopt=(lambda: self.attachments.kernel_for(path)) if path else None,
            kernel_id=kernel_id,
        )

    # --- queries ---------------------------------------------------------------------------------

    def get(self, session_id: str) -> Session:
        check_session_id(session_id)
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound(session_id) from None

    def list(
        self, status: SessionStatus | None = None, limit: int = 50, notebook_path: str | None = None
    ) -> tuple[list[Session], int]:
        """Sessions newest-updated first (of one status, attached to one notebook, if given), and how many match."""
        matching = [
            s for s in self._sessions.values()
            if (status is None or s.record.status == status)
            and (notebook_path is None or s.record.notebook_path == notebook_path)
        ]
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
            missing_api_key=missing_api_key(record.model, self.settings.api_base),
            running_task=self._running_task(session) if session.busy else None,
            kernel_id=session.kernel.kernel_id,
            notebook_markdown_cells=self.settings.notebook.markdown_cells,
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

    def workspace_from_notebook(self, session: Session) -> str | None:
        """The session folder relative to the folder of its notebook (an attached kernel's working directory)."""
        if not session.record.notebook_path:
            return None
        notebook_dir = PurePosixPath(session.record.notebook_path).parent.as_posix()
        return posixpath.relpath(self.workspace.api_path(session.folder), notebook_dir)

    def resolve_model(self, session: Session, model: str | None = None) -> str:
        """Explicit > session > configured default (itself DSAGENT_DEFAULT_MODEL > LLM_MODEL > gpt-4o)."""
        return model or session.record.model or self.settings.default_model

    # --- changes ---------------------------------------------------------------------------------

    async def check_model(self, model: str) -> None:
        """400 for a model outside the policy, or one litellm can send to no provider."""
        self.policy.check_model(model)
        if self.route_model is not None:
            await self.route_model(model)

    async def create(self, request: CreateSessionRequest) -> Session:
        """Create folders and record, then boot the kernel in the background; 400 outside the policy.

        A session attached to a notebook answers with the notebook's kernel id: found (or started)
        before the answer, so a client sees at once which kernel it shares.
        """
        await self.check_model(request.model or self.settings.default_model)
        self.policy.check_hitl_mode(request.hitl_mode or self.policy.default_hitl_mode)
        if request.notebook_path is None:
            return await self._create(request, None, None)
        path = await self.attachments.check(request.notebook_path)
        async with self.attachments.taking(path) as kernel_id:
            return await self._create(request, path, kernel_id)

    async def _create(self, request: CreateSessionRequest, notebook_path: str | None, kernel_id: str | None) -> Session:
        session_id = new_session_id()
        while session_id in self._sessions:
            session_id = new_session_id()
        created = now()
        record = SessionRecord(
            id=session_id,
            name=request.name or f"Session {datetime.now():%Y-%m-%d %H:%M}",
            created_at=created,
            updated_at=created,
            model=request.model or self.settings.default_model,
            hitl_mode=request.hitl_mode or self.policy.default_hitl_mode,
            notebook_path=notebook_path,
        )
        folder = self.workspace.create_session_dirs(session_id)
        try:
            await asyncio.to_thread(save_record, folder, record)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        session = Session(
            record, folder, self._kernel(record, folder, kernel_id), self.settings.hitl_timeout, on_logged=self._logged
        )
        self._sessions[session_id] = session
        self.start_kernel(session)
        return session

    async def attach(self, session: Session, notebook_path: str | None) -> None:
        """Move the session to a notebook's kernel (``None``: back to a kernel of its own) and boot it."""
        if session.busy:
            raise SessionBusy("Session is running a task; wait for it or cancel it before changing its notebook")
        if await self.attachments.attach(session, notebook_path):
            self.start_kernel(session)

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
            return session.describe(session.kernel.snapshot.model_copy(update={"is_running": False}))
        state = await session.kernel.state()
        await self._count_variables(session, state)
        return session.describe(state)

    async def execute(self, session: Session, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run code for a client, outside any agent task; logged like the agent's own cells.
        ``timeout``: seconds before the kernel is interrupted (``code_timeout`` when None)."""
        if session.busy:
            raise SessionBusy("Session is running a task; wait for it or cancel it before executing code")
        kernel = await self.kernel(session)
        self.reactivate(session)  # saved below
        session.publish("code_executing", {"code": code, "source": "user"})
        result = await kernel.execute(code, timeout=timeout or self.settings.code_timeout, describe=True)
        session.publish("code_result", result.model_dump(mode="json"))
        session.record.kernel_variables = len(kernel.snapshot.variables)
        await self.save(session)
        return result

    async def reset(self, session: Session, restart_user_kernel: bool = False) -> KernelState:
        """Restart the kernel: variables are gone, the workspace cwd and standard imports are back.

        For an attached session that is the user's notebook kernel: done only when asked for explicitly.
        """
        if session.busy:
            raise SessionBusy("Session is running a task; cancel it before resetting the kernel")
        if session.record.notebook_path and not restart_user_kernel:
            raise UserKernelReset(
                f"Resetting this session restarts the kernel of notebook {session.record.notebook_path}: every "
                "variable the user defined there is lost. Repeat with restart_user_kernel=true to do it."
            )
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
        when a model or mode lies outside the policy (400). ``notebook_path`` counts when present,
        even as ``null`` (detach)."""
        if request.model is not None:
            await self.check_model(request.model)
        if request.hitl_mode is not None:
            self.policy.check_hitl_mode(request.hitl_mode)
        if "notebook_path" in request.model_fields_set:
            await self.attach(session, request.notebook_path)
        changes = request.model_dump(exclude_none=True, exclude={"notebook_path"})
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
        """Stop the kernel (detach from a notebook's) and mark the session archived; its files and history stay."""
        if session.busy:
            raise SessionBusy("Session is running a task; cancel it before archiving")
        await self.attachments.release(session)
        session.record.status = SessionStatus.archived
        await self.save(session)
        return session

    async def delete(self, session: Session) -> None:
        """Stop any run, shut the kernel down, and remove the folder."""
        if session.run is not None and not session.run.done():
            session.run.cancel()
            await asyncio.gather(session.run, return_exceptions=True)
        await self.attachments.let_go(session)  # the user's notebook keeps the agent's last cells
        await self.notebooks.forget(session)
        self._sessions.pop(session.id, None)
        await asyncio.to_thread(shutil.rmtree, session.folder, ignore_errors=True)

    async def shutdown(self) -> None:
        """Server stop: cancel runs (their closing events are logged) and let kernel boots in flight
        end (a boot cancelled halfway leaves the kernel manager a kernel it cannot shut down), then
        write the notebooks still behind their logs."""
        runs = [s.run for s in self._sessions.values() if s.run is not None and not s.run.done()]
        boots = [s.kernel_start for s in self._sessions.values() if s.kernel_start is not None]
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, *boots, return_exceptions=True)
        await self.notebooks.flush_all(self._sessions.values())
        await asyncio.gather(*(self.cells.flush(s) for s in self._sessions.values()))
        for session in self._sessions.values():
            session.kernel.close()
