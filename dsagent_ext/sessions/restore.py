"""Kernel restore: rebuild a session's kernel by replaying, in a fresh kernel, the cells of its history.

After a server restart, a crash or a cull a session's history is all there but its kernel is new
and empty. A restore runs, in order, the cells that succeeded since the history last started from an
empty namespace on purpose (the last reset, a ``kernel_new`` marked ``reset``): those of the kernels
that are gone, then those run since in the current one (the agent or the user may have used the new
kernel before the restore), in a kernel that has run nothing but the agent's setup (it is restarted
first otherwise). It is a run of the session like a task: one at a
time, cancelled like one, its ``restore_progress`` events logged and handed to the session's
subscribers; they never become ``code_executing``/``code_result`` events, so the notebook, the
messages and the next restore see each cell once.

Two kinds of cells are listed as skipped instead of being run again, unless the client asks for all:
cells that only wrote files (every top-level statement a call such as ``df.to_csv(...)``,
``fig.savefig(...)``, ``joblib.dump(...)``, ``open(..., "w").write(...)`` or ``print(...)``, or a
``with open(..., "w")`` block of such calls, and at least one of them writes a file: nothing is
defined, the files are still there), and cells that took longer than
``restore_slow_cell_seconds`` when they ran (``execution_time_ms`` in the log).
"""

from __future__ import annotations

import ast
import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.prompt import new_kernel_notice, restored_kernel_notice
from ..models import RESTORE_ENDS, RESTORE_EVENT, RestoreProgress, SkippedCell
from ..settings import RestoreSettings
from .live import Session, SessionBusy
from .service import SessionService

# calls whose only effect is a file (or output): a cell made of nothing else defines nothing to restore
FILE_WRITERS = frozenset({
    "to_csv", "to_parquet", "to_excel", "to_json", "to_pickle", "to_feather", "to_html", "to_markdown",
    "savefig", "write_text", "write_bytes", "write_image", "write_html", "dump", "imsave",
})
OUTPUT_ONLY = frozenset({"print", "display", "show", "close", "write", "writelines"})
WRITE_MODES = ("w", "a", "x")


class RestoreRefused(Exception):
    """The session's kernel is not ours to restore."""

    http_status = 409


class RestoreOff(Exception):
    """The server does not restore kernels (``restore_kernel = off``)."""

    http_status = 403


@dataclass
class Cell:
    code: str
    execution_time_ms: float | None


@dataclass
class Plan:
    """What a restore will do: the cells to run, and those it lists instead."""

    cells: list[Cell]
    skipped: list[SkippedCell] = field(default_factory=list)


def history_cells(events: Iterable[dict[str, Any]]) -> list[Cell]:
    """The cells that succeeded since the last reset, in order, whichever kernel process ran them.

    A new process (a restart, a crash, a cull) loses state the history still stands for; only a
    reset empties the namespace on purpose.
    """
    cells: list[Cell] = []
    code = None
    for record in events:
        event, data = record["event"], record["data"]
        if event == "kernel_new" and data.get("reset"):
            cells = []
        elif event == "code_executing":
            code = data.get("code")
        elif event == "code_result":
            if code and data.get("success"):
                cells.append(Cell(code, data.get("execution_time_ms")))
            code = None
    return cells


def only_writes_files(code: str) -> bool:
    """Every top-level statement writes a file or output, and at least one writes a file."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython syntax (``!pip``, ``%time``): not ours to judge, so it runs
        return False
    writes = False
    for node in tree.body:
        if isinstance(node, ast.With) and any(_opens_for_writing(item.context_expr) for item in node.items):
            body = [_call_name(statement) for statement in node.body]
            if None in body or not set(body) <= FILE_WRITERS | OUTPUT_ONLY:
                return False
            writes = True
            continue
        name = _call_name(node)
        if name in FILE_WRITERS or _writes_opened_file(node):
            writes = True
        elif name not in OUTPUT_ONLY:
            return False
    return writes


def _call_name(node: ast.stmt) -> str | None:
    """``f`` for a statement that is just a call ``f(...)`` or ``x.y.f(...)``."""
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return None
    func = node.value.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _writes_opened_file(node: ast.stmt) -> bool:
    """``open(..., "w").write(...)``."""
    call = node.value if isinstance(node, ast.Expr) else None
    func = call.func if isinstance(call, ast.Call) else None
    return isinstance(func, ast.Attribute) and func.attr in ("write", "writelines") and _opens_for_writing(func.value)


def _opens_for_writing(expr: ast.expr) -> bool:
    if not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Name) or expr.func.id != "open":
        return False
    mode = expr.args[1] if len(expr.args) > 1 else next((k.value for k in expr.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(m in mode.value for m in WRITE_MODES)


def ends_restore(record: dict[str, Any]) -> bool:
    """The last event of a restore run on its own (an automatic one goes on into its task)."""
    data = record["data"]
    return record["event"] == RESTORE_EVENT and data.get("status") in RESTORE_ENDS and not data.get("auto")


class RestoreService:
    """Plans, runs and cancels kernel restores."""

    def __init__(self, settings: RestoreSettings, sessions: SessionService, log: logging.Logger) -> None:
        self.settings = settings
        self.sessions = sessions
        self.log = log

    def plan(self, session: Session, *, replay_all: bool = False) -> Plan:
        slow_ms = self.settings.slow_cell_seconds * 1000
        plan = Plan([])
        for cell in history_cells(session.events.read()):
            reason = None
            if not replay_all:
                if only_writes_files(cell.code):
                    reason = "writes_files"
                elif cell.execution_time_ms is not None and cell.execution_time_ms > slow_ms:
                    reason = "slow"
            if reason is None:
                plan.cells.append(cell)
            else:
                plan.skipped.append(SkippedCell(code=cell.code, reason=reason, execution_time_ms=cell.execution_time_ms))
        return plan

    def wanted(self, session: Session) -> bool:
        """An automatic restore is due before the next task: allowed, and the kernel is new."""
        return self.settings.mode == "auto" and not session.attached and session.kernel_is_new

    def start(self, session: Session, *, replay_all: bool = False) -> int:
        """Start a restore as the session's run; the ``seq`` of its first event (to follow it from)."""
        if self.settings.mode == "off":
            raise RestoreOff("Kernel restore is turned off on this server (restore_kernel = off)")
        if session.attached:
            raise RestoreRefused("This session works in the user's own notebook: its kernel is theirs, never restored")
        if session.busy:
            doing = "a kernel restore" if session.restoring else "a task"
            raise SessionBusy(f"Session is running {doing}; wait for it or cancel it before restoring the kernel")
        plan = self.plan(session, replay_all=replay_all)
        started = self._announce(session, plan, auto=False)
        session.run = asyncio.ensure_future(self.replay(session, plan, auto=False))
        return started

    def _announce(self, session: Session, plan: Plan, *, auto: bool) -> int:
        data = RestoreProgress(status="started", auto=auto, total=len(plan.cells), skipped=plan.skipped)
        return session.publish(RESTORE_EVENT, data.model_dump(mode="json"))["seq"]

    async def replay(self, session: Session, plan: Plan, *, auto: bool) -> RestoreProgress:
        """Run the plan's cells in a fresh kernel, publishing each step; the last event's data.

        Cancelling ends it with a ``cancelled`` event (the running cell is interrupted) and returns.
        """
        if auto:
            self._announce(session, plan, auto=True)
        kernel = session.kernel
        progress = RestoreProgress(status="running", auto=auto, total=len(plan.cells), skipped=plan.skipped)
        session.restoring = True
        executing = False
        try:
            await kernel.ensure_started()  # a new kernel has run the agent's setup, and nothing else
            if not kernel.pristine:
                await kernel.restart()
            for number, cell in enumerate(plan.cells, 1):
                progress.cell, progress.code = number, cell.code
                session.publish(RESTORE_EVENT, progress.model_dump(mode="json", exclude={"skipped"}))
                executing = True
                result = await kernel.execute(cell.code, timeout=self.settings.code_timeout)
                executing = False
                if not result.success:
                    progress.status, progress.error = "failed", result.error or "The cell failed"
                    break
                progress.replayed = number
            else:
                progress.status, progress.cell, progress.code = "completed", None, None
        except asyncio.CancelledError:
            _uncancel()
            if executing:  # the cell goes on in the kernel unless interrupted
                await kernel.interrupt()
            progress.status = "cancelled"
        except Exception as e:  # the kernel would not start: say so, never hang the run
            self.log.warning("DSAgent: restoring the kernel of session %s failed: %s", session.id, e)
            progress.status, progress.error = "failed", f"The kernel could not be started: {e}"
        finally:
            session.restoring = False
        return await self._end(session, progress)

    async def _end(self, session: Session, progress: RestoreProgress) -> RestoreProgress:
        """Describe the kernel, note it in the record (only a complete restore stands for the history),
        and publish the last event."""
        state = await session.kernel.state()
        if progress.status == "completed":
            session.adopt_kernel()
            session.record.kernel_state_lost = False
        progress.kernel = session.describe(state)
        session.record.kernel_variables = len(progress.kernel.variables)
        try:
            await self.sessions.save(session)
        except OSError as e:
            self.log.warning("DSAgent: could not save the record of session %s: %s", session.id, e)
        session.publish(RESTORE_EVENT, progress.model_dump(mode="json"))
        return progress


def agent_notice(session: Session, restore: RestoreProgress | None) -> str | None:
    """What the next task's model is told about its kernel (None: it is the history's own)."""
    if restore is not None and restore.status == "completed":
        return restored_kernel_notice(restore.replayed, [_first_line(cell.code) for cell in restore.skipped])
    if not session.kernel_is_new:
        return None
    present = {v.name for v in session.kernel.snapshot.variables} if session.kernel.incarnation else set()
    missing = [name for name in session.record.kernel_names if name not in present]
    note = None
    if restore is not None:
        where = f" at cell {restore.cell} of {restore.total}" if restore.cell else ""
        note = f"An automatic restore of the old kernel ({restore.status}{where}) replayed {restore.replayed} cell(s)"
        note += f": {restore.error}" if restore.error else "."
    return new_kernel_notice(session.record.kernel_description, missing, note)


def _first_line(code: str) -> str:
    lines = [line for line in code.strip().splitlines() if line.strip()]
    return (lines[0][:100] + (" ..." if len(lines) > 1 else "")) if lines else ""


def _uncancel() -> None:
    """Accept the cancellation so the closing event can still be awaited and published."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
