"""Our connection to a kernel of the server's kernel manager: the client, whether the process behind it
still lives, and the output of one request of ours read off its channels.

The process can die between cells, be brought back by the server's auto-restarter under the same
kernel id, or be culled; the manager is asked, not the client, since a gateway client cannot poll a
process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from queue import Empty
from typing import Any

from jupyter_core.utils import ensure_async

from .channels import Channels
from .notebook_kernel import NotebookKernel
from .outputs import CellOutput

POLL_INTERVAL = 1.0  # iopub silence after which we check that the kernel is still alive


class KernelConnection:
    """A client on one kernel of the manager (ours, or a user's notebook kernel we share)."""

    def __init__(
        self, kernel_manager: Any, kernel_id: str | None, notebook: NotebookKernel | None, log: logging.Logger
    ) -> None:
        self._km = kernel_manager
        self.kernel_id: str | None = kernel_id
        self._notebook = notebook  # the user's notebook kernel we share (None: the kernel is ours)
        self.log = log
        self._client: Any = None
        self._channels: Channels | None = None  # the client's, read without spinning
        self._lost = False  # the kernel process behind our client died or was auto-restarted

    @property
    def is_alive(self) -> bool:
        """Started and still known to the kernel manager (culling removes it there)."""
        return self.kernel_id is not None and not self._lost and self.kernel_id in self._km

    def close(self) -> None:
        """Drop our connection but leave the kernel to its manager (which stops it with the server)."""
        self._disconnect()

    def _disconnect(self) -> None:
        client, self._client, self._channels = self._client, None, None
        if client is not None:
            try:
                client.stop_channels()
            except Exception:
                self.log.debug("Error stopping kernel channels", exc_info=True)

    def _on_auto_restart(self) -> None:
        """The server's restarter found the kernel dead and is starting a new process."""
        self._lost = True

    async def _process_alive(self) -> bool:
        """Ask the manager, not the client: a gateway client cannot poll a process."""
        if self.kernel_id is None or self.kernel_id not in self._km:
            return False
        return bool(await ensure_async(self._km.get_kernel(self.kernel_id).is_alive()))

    async def _gone(self) -> bool:
        """The kernel process behind our client died (or the manager no longer has it)."""
        return self._lost or not await self._process_alive()

    async def _wait_alive(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not await self._process_alive():
            if self.kernel_id not in self._km or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    async def _collect(self, msg_id: str, out: CellOutput, timeout: float) -> str:
        """Gather our request's iopub output until it is idle: "idle", "timeout" or "died".

        ``timeout`` runs from when the kernel takes the request: time spent queued behind another
        client's cell (a user's, in an attached kernel) does not count.
        """
        notebook = self._notebook  # our own kernel runs nobody else's cells ours would queue behind
        deadline = None if notebook is not None and not notebook.taken else time.monotonic() + timeout
        while True:
            if self._lost:
                return "died"
            remaining = POLL_INTERVAL if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            try:
                msg = await self._channels.iopub(min(POLL_INTERVAL, remaining))
            except Empty:
                if await self._gone():
                    return "died"
                continue
            except RuntimeError:  # gateway: the websocket router has stopped
                return "died"
            if notebook is not None and deadline is None and msg["parent_header"].get("msg_id") == msg_id:
                notebook.taken = True  # the kernel took our request: the time limit runs from now
                deadline = time.monotonic() + timeout
            if msg["msg_type"] == "status":
                state = msg["content"].get("execution_state")
                if state in ("restarting", "dead"):  # a server relaying the kernel (gateway) saw it die
                    return "died"
                if state == "idle" and msg["parent_header"].get("msg_id") == msg_id:
                    return "idle"
            elif msg["parent_header"].get("msg_id") == msg_id:
                out.add(msg)
