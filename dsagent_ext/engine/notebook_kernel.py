"""The kernel of a user's notebook, as a session attached to that notebook shares it with the user.

The session adopts the kernel id its ``adopt`` callable finds (the notebook's, from the server's
session manager) and never starts, restarts or shuts that kernel down on its own. The user's cells
share it: ours wait until the kernel is free, their time limit runs from when the kernel takes them,
parent message ids keep outputs apart, and an interrupt only ever stops a cell of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from .channels import Channels

TURN_POLL = 0.1  # how often an attached session looks whether the user's cell has finished

USER_KERNEL_DEAD = "The notebook's kernel is not running; restart it from the notebook"


class NotebookKernel:
    """Finds the notebook's kernel, waits for the user's cells, and tells our cell from theirs."""

    def __init__(self, kernel_manager: Any, adopt: Callable[[], Awaitable[str]], *, watches_activity: bool) -> None:
        self._km = kernel_manager
        self._adopt = adopt
        self._watches_activity = watches_activity
        self._in_flight: str | None = None  # msg id of our request until its result is in
        self.taken = False  # the kernel has taken our request (it is not queued behind the user's cell)

    async def find(self, kernel_id: str | None) -> str:
        """The notebook's kernel id: ``kernel_id`` while the manager still has it, else looked up again
        (the kernel was shut down or replaced meanwhile)."""
        if kernel_id is None or kernel_id not in self._km:
            return await self._adopt()
        return kernel_id

    async def wait_turn(self, kernel_id: str | None, gone: Callable[[], Awaitable[bool]]) -> None:
        """Send nothing while the server sees the kernel busy (a user's cell): it would only queue up
        behind it, and a task cancelled meanwhile would still leave it to run later."""
        while self._server_state(kernel_id) == "busy":
            if await gone():
                return
            await asyncio.sleep(TURN_POLL)

    def _server_state(self, kernel_id: str | None) -> str | None:
        """The execution state the server tracks for the kernel from its messages (only a local manager
        does; behind a gateway the time limit starting with our request is what protects us)."""
        if not self._watches_activity or kernel_id not in self._km:
            return None
        return getattr(self._km.get_kernel(kernel_id), "execution_state", None)

    def sent(self, msg_id: str) -> None:
        """Our request is queued: until the kernel takes it, an interrupt would stop the user's cell."""
        self._in_flight, self.taken = msg_id, False

    def finished(self) -> None:
        """Our request's result is in (or it is left to run): nothing of ours to interrupt."""
        self._in_flight, self.taken = None, False

    async def ours_running(self, channels: Channels | None, *, reading: bool) -> bool:
        """Whether the kernel runs our request, so that an interrupt stops ours, not the user's cell.

        While no cell of ours reads iopub (``reading`` false: a cancelled cell), what iopub holds
        tells whether the kernel took our request after we stopped reading.
        """
        if self.taken:
            return True
        if self._in_flight is None or reading or channels is None:
            return False
        while True:
            try:
                msg = await channels.iopub(0)
            except (Empty, RuntimeError):
                return False
            if msg["parent_header"].get("msg_id") == self._in_flight:
                return True
