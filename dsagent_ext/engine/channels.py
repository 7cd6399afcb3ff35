"""A kernel client's channels, read the same way for a local client and a gateway client.

A local client's ``get_*_msg`` awaits ZeroMQ; a gateway client's spins on ``asyncio.sleep(0)`` until
a message arrives, which burns a core for as long as a cell runs, so its thread-fed queues are polled
every ``QUEUE_POLL`` instead. Replies to earlier requests (a timed-out cell's) are skipped.
"""

from __future__ import annotations

import asyncio
import time
from queue import Empty, Queue
from typing import Any

QUEUE_POLL = 0.005  # how often a gateway client's message queues are checked
REPLY_TIMEOUT = 5.0  # shell reply after iopub idle


class Channels:
    """The iopub and shell channels of one started kernel client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._polled = isinstance(client.iopub_channel, Queue)  # gateway mode

    async def iopub(self, timeout: float) -> dict[str, Any]:
        """The next iopub message within ``timeout`` (raises ``Empty``)."""
        return await self._get(self.client.get_iopub_msg, timeout)

    async def reply(self, msg_id: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any] | None:
        """The shell reply to ``msg_id``, or None when it does not come within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = await self._get(self.client.get_shell_msg, remaining)
            except Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    async def _get(self, get_msg: Any, timeout: float) -> dict[str, Any]:
        if not self._polled:
            return await get_msg(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await get_msg(timeout=0)
            except Empty:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(QUEUE_POLL)
