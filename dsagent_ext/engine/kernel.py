"""A session's kernel, run through the Jupyter server's own kernel manager.

Using ``serverapp.kernel_manager`` (never a private ``KernelManager``) keeps agent kernels listed in
JupyterLab, subject to the server's culling, and remote in gateway mode. Only ``execute()`` plus
``get_iopub_msg`` is used to drive a cell, because ``execute_interactive`` breaks with gateway clients.

An *attached* session works in the kernel of a user's notebook instead, shared with the user's own
cells; ``notebook_kernel.NotebookKernel`` holds what that changes. The client, whether the process
behind it lives, and reading a request's output off its channels are ``connection.KernelConnection``'s.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from queue import Empty
from typing import Any

from jupyter_core.utils import ensure_async

from ..models import ExecutionResult, KernelState
from .channels import Channels
from .connection import KernelConnection
from .introspect import (
    INTROSPECT_CODE,
    STATE_EXPRESSION,
    incarnation_of,
    parse_expression,
    parse_state,
    setup_code,
    workspace_found,
)
from .notebook_kernel import USER_KERNEL_DEAD, NotebookKernel
from .outputs import CellOutput, OutputSink

START_TIMEOUT = 60.0  # kernel_info round trip after a (re)start
RECOVER_TIMEOUT = 10.0  # how long the server's auto-restarter gets to bring a dead kernel back
INTERRUPT_GRACE = 5.0  # time for an interrupted cell to reach idle
INTROSPECT_TIMEOUT = 10.0
# a kernel that dies while starting is started again, up to this many starts in all: locally its ports
# are chosen before it binds them, and another process can take one meanwhile (it dies at once)
START_ATTEMPTS = 3

DIED_ERROR = "The kernel died while running this cell; it will be restarted on the next execution"


class KernelDiedStarting(RuntimeError):
    """The kernel process ended before it answered (a port taken by another process, a broken env)."""

    def __init__(self) -> None:
        super().__init__("The kernel died while starting")


class KernelSession(KernelConnection):
    """One session's kernel: started through the server's kernel manager so it is listed, culled and remote-capable."""

    def __init__(
        self,
        kernel_manager: Any,
        *,
        kernel_name: str,
        path: str,
        cwd: str,
        output_cap: int = 1_000_000,
        watches_activity: bool = False,
        log: logging.Logger | None = None,
        adopt: Callable[[], Awaitable[str]] | None = None,
        kernel_id: str | None = None,
    ) -> None:
        """``watches_activity``: the manager notes every message of its kernels in ``last_activity``
        (jupyter_server's local manager does; a gateway's copy is only refreshed now and then).
        ``adopt``: attach to the kernel id it returns (``kernel_id`` when already known) instead of
        starting one."""
        notebook = None if adopt is None else NotebookKernel(kernel_manager, adopt, watches_activity=watches_activity)
        super().__init__(kernel_manager, kernel_id, notebook, log or logging.getLogger(__name__))
        self.kernel_name = kernel_name
        self.path = path
        self.cwd = cwd
        self.output_cap = output_cap
        self.snapshot = KernelState()
        self._fresh = False  # ``snapshot`` came back with our last cell (and no cell of ours ran since)
        self._described_at: Any = None  # the kernel's ``last_activity`` when ``snapshot`` came back
        self._watches_activity = watches_activity
        self.workspace_reachable = True  # the kernel sees ``cwd`` (false: a gateway host without the files)
        self._namespace: str | None = None  # the id the setup cell drew in this kernel's namespace
        self.pristine = False  # connected, set up, and no cell of ours has run since
        self._lock = asyncio.Lock()  # one user of the kernel at a time: cells, introspection, restarts
        self._cell_running = False  # the lock is held by a client's cell (not a start, restart or introspection)

    @property
    def incarnation(self) -> str | None:
        """Which kernel process (and namespace) this is: the kernel id plus an id the setup cell drew in
        the namespace, since a restart keeps the kernel id. None while no kernel runs."""
        if self._client is None or self._namespace is None or not self.is_alive:
            return None
        return f"{self.kernel_id}/{self._namespace}"

    @property
    def attached(self) -> bool:
        """The kernel is a user's notebook kernel, not ours."""
        return self._notebook is not None

    @property
    def busy(self) -> bool:
        """A cell or an introspection currently holds the kernel."""
        return self._lock.locked()

    async def ensure_started(self) -> None:
        """Start the kernel, or replace one that died or was culled; one start for concurrent callers."""
        if self._client is not None and self.is_alive:
            return
        async with self._lock:
            await self._ensure_started()

    async def execute(
        self, code: str, *, timeout: float, describe: bool = False, on_output: OutputSink | None = None
    ) -> ExecutionResult:
        """Run a cell, waiting at most ``timeout`` seconds for all of it.

        ``on_output`` hears each nbformat output as it arrives (stream text in pieces). With
        ``describe`` the kernel also describes its namespace in the same request (a few
        milliseconds in the kernel, no extra round trip), so the next ``state()`` is free.
        A failing cell is a result with ``success=False``; only a kernel that cannot be
        started raises (``RuntimeError`` or ``TimeoutError``).
        """
        async with self._lock:
            await self._ensure_started()
            self._cell_running = True
            try:
                return await self._run(code, timeout=timeout, describe=describe, on_output=on_output)
            finally:
                self._cell_running = False

    async def state(self, *, reuse: bool = False) -> KernelState:
        """Describe the namespace; while the kernel is in use answer the last snapshot at once.

        A description that came back with our last cell is answered without asking the kernel again
        when the kernel has not sent a single message since (so no other client, a console on this
        kernel, ran code), or with ``reuse`` (the agent's next round, moments later, behind a gateway).
        """
        if self.attached and not self.snapshot.is_running:
            # the user's namespace is what the model must see: wait for the attach (its setup describes it)
            try:
                async with self._lock:  # an attach under way holds it until its description is in
                    await self._ensure_started()
            except Exception as e:  # reported again, to the caller, when the kernel is used
                self.log.warning("dsagent could not attach to the notebook's kernel: %s", e)
        if self.busy or self._client is None or not self.is_alive:
            return self.snapshot.model_copy(update={"is_running": self.is_alive})
        if self._fresh and (reuse or self._untouched()):
            return self.snapshot
        async with self._lock:
            return await self._introspect()

    async def interrupt(self) -> None:
        """Interrupt the running cell (SIGINT locally, a REST call in gateway mode); in a user's kernel
        only a cell of ours, never the user's own cell our request is queued behind."""
        if not self.is_alive:
            return
        if self._notebook is not None and not await self._notebook.ours_running(self._channels, reading=self.busy):
            return
        await ensure_async(self._km.interrupt_kernel(self.kernel_id))

    async def restart(self) -> KernelState:
        """Restart the kernel process (all variables are lost) and return its fresh state."""
        async with self._preempt():
            if self.kernel_id is not None and self.kernel_id in self._km:
                await self._restart()
            else:
                await self._ensure_started()
            return self.snapshot

    async def shutdown(self) -> None:
        """Shut the kernel down through the manager (a user's kernel is only let go); safe to call twice."""
        async with self._preempt():
            kernel_id, self.kernel_id = self.kernel_id, None
            self._disconnect()
            self.snapshot = self.snapshot.model_copy(update={"is_running": False})
            if not self.attached and kernel_id is not None and kernel_id in self._km:
                await ensure_async(self._km.shutdown_kernel(kernel_id, now=True))

    # -- lifecycle ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _preempt(self) -> AsyncIterator[None]:
        """Take the kernel from a running cell: interrupt it, and abandon it if it will not stop.

        Only a cell is interrupted: a kernel still starting (or restarting) dies of a SIGINT while it
        imports, which failed the start and the request waiting for it; those are waited for.
        """
        if self._cell_running:
            await self.interrupt()
            try:
                await asyncio.wait_for(self._lock.acquire(), INTERRUPT_GRACE)
            except asyncio.TimeoutError:
                self._lost = True  # the cell's wait loop sees this and gives up at once
                await self._lock.acquire()
        else:
            await self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    async def _ensure_started(self) -> None:
        # Poll the process too: a kernel that died between cells must not fail the next one.
        if self._client is not None and self.is_alive and await self._process_alive():
            return
        if self._notebook is not None:
            await self._attach(self._notebook)
            return
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self._start_or_recover()
                return
            except KernelDiedStarting:
                if attempt == START_ATTEMPTS:
                    raise
                if attempt == 1:  # once: a new kernel is the usual cure
                    self.log.warning("dsagent kernel %s died while starting; starting it again", self.kernel_id)
                await self._discard()

    async def _discard(self) -> None:
        """Give up a dead kernel (one that died as it started: the manager's restarter would start it
        again on the same ports, and the one taken stays taken; a new kernel gets ports of its own)."""
        kernel_id, self.kernel_id = self.kernel_id, None
        self._disconnect()
        if kernel_id is not None and kernel_id in self._km:
            try:
                await ensure_async(self._km.shutdown_kernel(kernel_id, now=True))
            except Exception:
                self.log.warning("Could not shut down dead kernel %s", kernel_id, exc_info=True)

    async def _start_or_recover(self) -> None:
        """Connect to the kernel the manager brought back under our id, else start a new one."""
        if self.kernel_id is not None and self.kernel_id in self._km:
            # Locally the server's restarter brings a dead kernel back under the same id;
            # shutting it down meanwhile would race that restart and could orphan a process.
            if await self._wait_alive(RECOVER_TIMEOUT):
                await self._connect()
                return
        await self._discard()
        self.kernel_id = await ensure_async(
            self._km.start_kernel(kernel_name=self.kernel_name, path=self.path)
        )
        self.log.info("dsagent kernel %s started in %s", self.kernel_id, self.path)
        self._km.get_kernel(self.kernel_id).add_restart_callback(self._on_auto_restart, "restart")
        await self._connect()

    async def _attach(self, notebook: NotebookKernel) -> None:
        """Connect to the notebook's kernel (found again if it was shut down or replaced meanwhile)."""
        self._disconnect()
        self.kernel_id = await notebook.find(self.kernel_id)
        if not await self._wait_alive(RECOVER_TIMEOUT):
            raise RuntimeError(USER_KERNEL_DEAD)
        self.log.info("dsagent attached to kernel %s", self.kernel_id)
        self._km.get_kernel(self.kernel_id).add_restart_callback(self._on_auto_restart, "restart")
        await self._connect()

    async def _wait_ready(self, channels: Channels) -> None:
        """Wait for a kernel_info reply and for iopub to deliver, so no cell output is missed."""
        if self._notebook is not None:
            await self._notebook.wait_turn(self.kernel_id, self._gone)  # kernel_info would queue behind it
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            msg_id = channels.client.kernel_info()
            reply = await channels.reply(msg_id, timeout=1.0)
            if reply is not None:
                try:
                    await channels.iopub(0.2)
                    return
                except Empty:
                    continue
            if not await self._process_alive():
                raise KernelDiedStarting()
        raise TimeoutError(f"The kernel did not answer within {START_TIMEOUT:g}s")

    async def _connect(self) -> None:
        """Open a fresh client (ports may change on restart) and run the setup cell."""
        self._disconnect()
        client = self._km.get_kernel(self.kernel_id).client()
        # no heartbeat: liveness is the kernel manager's to tell, and each heartbeat is a thread pinging
        await ensure_async(client.start_channels(hb=False))
        self._client, self._channels = client, Channels(client)
        try:
            await self._wait_ready(self._channels)
            self._lost = False
            setup = await self._run(setup_code(self.cwd, own=not self.attached), timeout=START_TIMEOUT, silent=True)
            if self._client is None:
                raise KernelDiedStarting()
        except BaseException:
            self._disconnect()  # so the next call connects again instead of trusting this client
            raise
        if not setup.success:
            self.log.warning("dsagent kernel setup failed: %s", setup.error)
        self.workspace_reachable = workspace_found(setup.stdout)
        self._namespace = incarnation_of(setup.stdout)
        self.pristine = True
        if not self.workspace_reachable:
            self.log.warning(
                "dsagent kernel %s cannot see its session workspace %s (a gateway host without the server's "
                "files?): uploads and artifacts are unavailable to it. Mount the server's root_dir at the "
                "same path on the kernel hosts.", self.kernel_id, self.path,
            )
        await self._introspect()

    async def _restart(self) -> None:
        self._disconnect()
        pending = await ensure_async(self._km.restart_kernel(self.kernel_id, now=True))
        if inspect.isawaitable(pending):  # the local manager hands back a "kernel answered" future
            await pending
        await self._connect()

    # -- one request -------------------------------------------------------------------------------

    async def _run(
        self, code: str, *, timeout: float, silent: bool = False, describe: bool = False,
        on_output: OutputSink | None = None,
    ) -> ExecutionResult:
        if self._notebook is not None:
            await self._notebook.wait_turn(self.kernel_id, self._gone)
        started = time.monotonic()
        client, channels = self._client, self._channels
        if describe or not silent:
            self._fresh = False  # until this request's description comes back
        if not silent:
            self.pristine = False
        expressions = {"state": STATE_EXPRESSION} if describe else {}
        msg_id = client.execute(
            code, silent=silent, store_history=not silent, user_expressions=expressions,
            allow_stdin=False, stop_on_error=False,
        )
        if self._notebook is not None:
            self._notebook.sent(msg_id)
        out = CellOutput(self.output_cap, on_output)
        outcome = await self._collect(msg_id, out, timeout)
        error = out.error
        if outcome == "timeout":
            await self.interrupt()
            outcome = await self._collect(msg_id, out, INTERRUPT_GRACE)
            error = f"Timeout: execution exceeded {timeout:g}s and was interrupted"
            if outcome == "timeout" and self._notebook is not None:
                self._notebook.finished()  # not ours to restart: the user decides
                error += "; it did not stop and is still running in the notebook's kernel"
                return out.result(False, error, started)
            if outcome == "timeout":
                self.log.warning("dsagent kernel %s ignored an interrupt; restarting", self.kernel_id)
                self._cell_running = False  # from here on a start, not to be interrupted
                await self._restart()
                error += "; it did not stop, so the kernel was restarted"
                return out.result(False, error, started)
        if outcome == "died":
            self._lost = True
            self._disconnect()
            self.snapshot = self.snapshot.model_copy(update={"is_running": False})
            return out.result(False, DIED_ERROR, started)
        if self._notebook is not None:
            self._notebook.finished()
        reply = await channels.reply(msg_id)
        status = reply["content"].get("status") if reply else None
        if status not in (None, "ok") and error is None:
            error = f"Execution {status}"
        if describe and reply is not None:
            self._take_description(reply["content"].get("user_expressions", {}).get("state", {}))
        return out.result(error is None, error, started)

    def _take_description(self, expression: dict[str, Any]) -> None:
        """Keep the namespace description evaluated after a cell (none when the cell failed)."""
        state = parse_expression(expression)
        if state is not None:
            self.snapshot = state.model_copy(update={"workspace_reachable": self.workspace_reachable})
            self._fresh = True
            self._described_at = self._last_activity()

    def _untouched(self) -> bool:
        """The kernel sent nothing since our description came back (if the manager can tell)."""
        return self._described_at is not None and self._last_activity() == self._described_at

    def _last_activity(self) -> Any:
        if not self._watches_activity or self.kernel_id not in self._km:
            return None
        return getattr(self._km.get_kernel(self.kernel_id), "last_activity", None)

    async def _introspect(self) -> KernelState:
        """Refresh the snapshot; a failure keeps the old one rather than failing the caller."""
        try:
            described = await self._run("", timeout=INTROSPECT_TIMEOUT, silent=True, describe=True)
            if not self._fresh:  # the helper is gone (a reset namespace): define it again
                result = await self._run(INTROSPECT_CODE, timeout=INTROSPECT_TIMEOUT, silent=True)
                if not result.success:
                    raise RuntimeError(result.error or described.error)
                state = parse_state(result.stdout)
                self.snapshot = state.model_copy(update={"workspace_reachable": self.workspace_reachable})
        except Exception as e:
            self.log.warning("dsagent kernel introspection failed: %s", e)
            self.snapshot = self.snapshot.model_copy(update={"is_running": self.is_alive})
        return self.snapshot
