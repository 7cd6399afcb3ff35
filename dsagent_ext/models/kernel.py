"""Kernel state and kernel restore."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Body, Model


class KernelVariable(Model):
    name: str
    type: str
    value_preview: str | None = None


class DataFrameInfo(Model):
    name: str
    shape: list[int]
    columns: list[str]
    dtypes: dict[str, str]
    memory_mb: float


class KernelState(Model):
    variables: list[KernelVariable] = Field(default_factory=list)
    dataframes: list[DataFrameInfo] = Field(default_factory=list)
    imports: list[str] = Field(default_factory=list)
    is_running: bool = False
    # false when the kernel runs where the session folder is not visible (a gateway host without
    # the server's files): uploads cannot be read and saved files do not become artifacts
    workspace_reachable: bool = True
    is_new: bool = Field(
        default=False,
        description="The session's history was built in a kernel process that is gone: this one (or the one "
        "its next use starts) has none of its variables. ``POST .../kernel/restore`` replays them.",
    )
    lacks_state: bool = Field(
        default=False,
        description="The kernel has not got everything the history built: it is new, or it was used after "
        "replacing a kernel whose work no restore brought back. ``POST .../kernel/restore`` rebuilds it.",
    )


RESTORE_EVENT = "restore_progress"
RESTORE_ENDS = frozenset({"completed", "failed", "cancelled"})


class RestoreRequest(Body):
    replay_all: bool = Field(
        default=False,
        description="Re-run the cells that only wrote files or ran longer than ``restore_slow_cell_seconds`` "
        "too, instead of listing them as skipped.",
    )


class SkippedCell(Model):
    """A cell of the history that a restore lists instead of running again."""

    code: str
    reason: Literal["writes_files", "slow"]
    execution_time_ms: float | None = None


class RestoreProgress(Model):
    """The data of a ``restore_progress`` event: one per step of a restore, the last one ends it."""

    status: Literal["started", "running", "completed", "failed", "cancelled"]
    auto: bool = Field(default=False, description="Started by the agent before a task (``restore_kernel: auto``).")
    total: int = Field(description="Cells this restore replays.")
    cell: int | None = Field(default=None, description="The cell running, or the one that failed or was cancelled (1-based).")
    replayed: int = Field(default=0, description="Cells replayed successfully so far.")
    code: str | None = None
    error: str | None = None
    skipped: list[SkippedCell] = Field(default_factory=list)
    kernel: KernelState | None = Field(default=None, description="The kernel's description when the restore ended.")
