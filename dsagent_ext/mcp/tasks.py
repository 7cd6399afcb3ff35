"""Watching a session's task for one MCP call: progress notifications, approvals, and the result.

The task belongs to the session (``RunService``); a call only subscribes to its events, the same ones
the panel and REST clients get. The call ends when the task does, when ``wait_seconds`` pass, when a
new approval is needed and the client cannot be asked, or when the client goes away: the task goes on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mcp.server.fastmcp import Context
from mcp.types import CallToolResult, ContentBlock

from ..engine.hitl import Pause
from ..models import PlanResponse, Usage
from ..sessions.runs import Subscription
from ..sessions.live import Session
from .approvals import approval, ask, supports_elicitation
from .content import MAX_IMAGES, OUTPUT_CAP, b64_image_block, cap, text_block
from .results import RoundView, TaskResult, TaskStatus, dump

MIN_INTERVAL = 0.25  # seconds between two progress notifications (milestones and keep-alives aside)
MILESTONES = frozenset({"code_executing", "hitl_request", "round_complete", "error", "done"})  # always told
# the short progress message of each event, ``{round}`` filled in
STEPS = {
    "thinking": "round {round}: thinking",
    "llm_response": "round {round}: model replied",
    "plan": "round {round}: plan ready",
    "code_executing": "round {round}: running code",
    "code_result": "round {round}: code finished",
    "hitl_request": "waiting for approval",
    "hitl_resolved": "approval decided",
    "round_complete": "round {round} complete",
    "error": "error",
    "done": "task finished",
}


class TaskWatch:
    """Follows one subscription for one call and builds its ``TaskResult``."""

    def __init__(self, ctx: Context[Any, Any, Any], session: Session, caller: Any, keepalive: float) -> None:
        self.ctx = ctx
        self.session = session
        self.caller = caller
        self.keepalive = keepalive
        self.rounds: list[RoundView] = []
        self.images: list[ContentBlock] = []
        self.images_omitted = 0
        self.plan: PlanResponse | None = None
        self.usage = Usage()
        self.answer: str | None = None
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.finished = False
        self.next_event = 0
        self.progress = 0
        self._last_sent = 0.0
        self._asked: Pause | None = None  # the pause this call has asked about (once each)

    # --- what the task did -------------------------------------------------------------------

    def absorb(self, record: dict[str, Any], *, earlier: bool = False) -> None:
        """Take one event in; ``earlier``: before the call's starting point (status, not rounds)."""
        name, data = record["event"], record["data"]
        if record.get("seq") is not None:
            self.next_event = max(self.next_event, record["seq"])
        if name == "plan":
            self.plan = PlanResponse(**data)
        elif name == "round_complete":
            self.stop_reason = data.get("stop_reason") or self.stop_reason
            if data.get("has_answer") or data.get("answer"):
                self.answer = data.get("answer")
            if data.get("plan"):
                self.plan = PlanResponse(**data["plan"])
            if not earlier:
                self._round(data)
        elif name == "error":
            self.error = data.get("error")
        elif name == "done":
            self.finished = True
            self.usage = Usage(**(data.get("usage") or {}))

    def _round(self, data: dict[str, Any]) -> None:
        result = data.get("execution_result") or {}
        self.rounds.append(
            RoundView(
                round=data.get("round", 0),
                code=data.get("code"),
                success=result.get("success") if result else None,
                output=cap(result.get("output", "") if result else "", OUTPUT_CAP),
                error=result.get("error") if result else None,
            )
        )
        for image in result.get("images", []) if result else []:
            if len(self.images) >= MAX_IMAGES:
                self.images_omitted += 1
                continue
            block = b64_image_block(image.get("data", ""), image.get("mime", ""))
            if block is not None:
                self.images.append(block)

    def status(self) -> TaskStatus:
        pause = self.session.gate.pending
        if pause is not None and not pause.future.done():
            return "awaiting_approval"
        if not self.finished:
            return "running" if self.session.busy else "completed"
        if self.stop_reason in ("cancelled", "rejected"):
            return "cancelled" if self.stop_reason == "cancelled" else "rejected"
        if self.error and not self.answer:
            return "failed"
        return "completed"

    def result(self) -> CallToolResult:
        status = self.status()
        pause = self.session.gate.pending
        task = TaskResult(
            session_id=self.session.id,
            status=status,
            answer=self.answer,
            rounds=self.rounds,
            plan=self.plan,
            usage=self.usage,
            next_event=self.next_event,
            approval=approval(pause) if status == "awaiting_approval" and pause is not None else None,
            error=self.error,
        )
        text = f"Task {status}"
        if task.answer and status == "completed":
            text += f": {task.answer}"
        elif task.approval is not None:
            text += f": {task.approval.message} (answer in JupyterLab, or with respond_approval if allowed)"
        elif status == "running":
            text += f": call get_task with after_event={task.next_event} to go on"
        elif task.error:
            text += f": {task.error}"
        if self.images_omitted:
            text += f" ({self.images_omitted} more images not shown)"
        return CallToolResult(content=[text_block(text), *self.images], structuredContent=dump(task))

    # --- following it ------------------------------------------------------------------------

    def catch_up(self, after: int | None) -> None:
        """Read the latest task's events up to ``after`` (its status so far; the call starts after them)."""
        events = self.session.events.read()
        starts = [i for i, r in enumerate(events) if r["event"] == "user_message"]
        for record in events[starts[-1] if starts else 0 :]:
            if after is not None and record["seq"] > after:
                break
            self.absorb(record, earlier=True)

    async def follow(self, subscription: Subscription, wait_seconds: float, *, ask_pending: bool) -> CallToolResult:
        """Relay events until the task ends, ``wait_seconds`` pass, or an approval needs the caller.

        ``ask_pending``: a pause already pending when the call started is asked about (or waited on)
        rather than returned at once, as the caller knows about it already."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        events = subscription.events(self.keepalive).__aiter__()
        nxt: asyncio.Future[Any] | None = None
        asking: asyncio.Task[str] | None = None
        gone = asyncio.ensure_future(self.caller.disconnected.wait())
        known = self.session.gate.pending if ask_pending else None
        left = wait_seconds  # time the call had left when it began asking (asking suspends the deadline)
        try:
            while not self.finished:
                pause = self.session.gate.pending
                if pause is not None and not pause.future.done() and pause is not self._asked and asking is None:
                    if supports_elicitation(self.ctx):
                        self._asked, left = pause, max(1.0, deadline - loop.time())
                        asking = asyncio.ensure_future(ask(self.ctx, self.session.gate, pause, self.caller.identity))
                    elif pause is not known and self.next_event >= self.session.events.last_seq:
                        break  # a new approval, everything before it in the result: the caller tells its human
                if nxt is None:
                    nxt = asyncio.ensure_future(events.__anext__())
                waits: set[asyncio.Future[Any]] = {nxt, gone} | ({asking} if asking is not None else set())
                timeout = None if asking is not None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if asking is not None and (asking.done() or (self._asked is not None and self._asked.future.done())):
                    if not asking.done():
                        asking.cancel()  # decided in JupyterLab or over REST meanwhile
                    elif not asking.cancelled() and asking.exception() is not None:
                        self.error = f"Could not ask the client: {asking.exception()}"
                    asking = None
                    deadline = loop.time() + left
                if gone in done or (not done and loop.time() >= deadline):
                    break
                if nxt in done:
                    try:
                        record = nxt.result()
                    except StopAsyncIteration:
                        break
                    nxt = None
                    await self._relay(record)
        finally:
            for future in (nxt, asking, gone):
                if future is not None and not future.done():
                    future.cancel()
            subscription.close()
        return self.result()

    async def _relay(self, record: dict[str, Any] | None) -> None:
        """Absorb an event and tell the client, at most every MIN_INTERVAL (keep-alives always)."""
        if record is None:
            await self._notify("still working" if self.session.busy else "idle", force=True)
            return
        self.absorb(record)
        step = STEPS.get(record["event"])
        if step is not None:
            data = record["data"] if isinstance(record["data"], dict) else {}
            await self._notify(step.format(round=data.get("round", len(self.rounds) or 1)), force=record["event"] in MILESTONES)

    async def _notify(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_sent < MIN_INTERVAL:
            return
        token = self.ctx.request_context.meta.progressToken if self.ctx.request_context.meta else None
        if token is None:
            return
        self._last_sent = now
        self.progress += 1
        try:
            await self.ctx.session.send_progress_notification(
                token, self.progress, None, message, related_request_id=self.ctx.request_id
            )
        except Exception:  # the client is gone: the result will not reach it either
            pass
