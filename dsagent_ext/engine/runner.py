"""One task of the agent: rounds of model → code → kernel until it is done, as a stream of events.

The runner knows nothing of HTTP: it is given a model client, a kernel and (optionally) a HITL gate,
and yields ``AgentEvent``s in the reference's order (``thinking``, ``llm_delta``*, ``llm_response``,
``plan``, [``hitl_request``, ``hitl_resolved``], ``code_executing``, ``code_result``,
``round_complete``, ..., ``done``). Whoever drives it decides where the events go. What a round has
produced so far, and how it closes, is kept in a ``rounds.Round``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..models import ExecutionResult, HITLAction, KernelState, NotebookContext, PlanResponse, Usage
from ..settings import VisionSettings
from .cell_edits import CellEdits, edited, not_edited
from .conversation import execution_feedback
from .hitl import Decision, HITLGate, Pause, PauseKind
from .llm import LLMClient, LLMError
from .notebook_context import describe_notebook
from .outputs import OutputSink
from .prompt import build_system_prompt, describe_kernel
from .protocol import parse_plan, parse_reply
from .rounds import Round, add_usage
from .vision import cell_pictures, count_images, drop_images, notebook_pictures, sees_images, with_pictures

STOP = ["</code>", "</answer>"]
ABORTED = "Task aborted by user."


class Executor(Protocol):
    """The kernel side: ``KernelSession`` satisfies it."""

    async def execute(
        self, code: str, *, timeout: float, describe: bool = False, on_output: OutputSink | None = None
    ) -> ExecutionResult: ...

    async def state(self, *, reuse: bool = False) -> KernelState: ...

    async def interrupt(self) -> None: ...


@dataclass
class AgentEvent:
    name: str
    data: dict[str, Any]


@dataclass
class RunConfig:
    model: str
    max_rounds: int = 30
    code_timeout: float = 300
    feedback_chars: int = 10_000
    notebook: str | None = None  # the user's notebook whose kernel the agent works in
    workspace: str | None = None  # the session folder, relative to that kernel's working directory
    vision: VisionSettings = field(default_factory=VisionSettings)


class Rejected(Exception):
    """A human rejected the task (or let a pause time out)."""


@dataclass
class AgentRunner:
    """Runs one user message to completion.

    ``history`` loads the conversation before it, and ``notebook`` the user's notebook; both are
    awaited after the first ``thinking`` event, so clients see the task start before a long history
    is read (and maybe summarised).
    """

    llm: LLMClient
    executor: Executor
    config: RunConfig
    history: Callable[[], Awaitable[list[dict[str, str]]]] | None = None
    # the user's notebook for the prompt (and its images for a model that sees them), read once per task
    notebook: Callable[[], Awaitable[NotebookContext | None]] | None = None
    notebook_view: str = ""
    sees_images: bool = False  # the model is shown images (decided on the first round)
    edits: CellEdits | None = None  # the notebook's cells, for ``<code cell="N">`` (attached sessions)
    gate: HITLGate | None = None
    # after each round that leaves the task open, given the task's usage so far: the ``error`` event
    # that ends the task (a spending limit reached), or None to go on
    budget: Callable[[Usage], dict[str, Any] | None] | None = None
    plan: PlanResponse | None = None
    usage: Usage = field(default_factory=Usage)
    approved_steps: list[str] | None = None
    kernel_notice: str | None = None  # what happened to the kernel since the history's turns
    charged: Usage | None = None  # model calls made for the next round besides its reply (a summary)

    def charge(self, usage: Usage) -> None:
        """Count a model call made for the task outside its rounds' replies: in the task's usage (its
        budget) and in the usage of the round it was made for, which the ledger and the session's
        cost count."""
        add_usage(self.usage, usage)
        self.charged = usage if self.charged is None else self.charged.plus(usage)

    async def run(self, message: str) -> AsyncIterator[AgentEvent]:
        """Yield every event of the task, ending with ``done`` (after ``error`` on failure or when the
        budget stops it)."""
        messages = [{"role": "user", "content": message}]
        current = Round(1)
        try:
            for number in range(1, self.config.max_rounds + 1):
                current = Round(number)
                async for event in self._round(current, messages):
                    yield event
                result = current.close(self.plan, last=number == self.config.max_rounds, max_rounds=self.config.max_rounds)
                yield AgentEvent("round_complete", result.model_dump(mode="json"))
                if result.is_complete:
                    break
                stop = self.budget(self.usage) if self.budget is not None else None
                if stop is not None:
                    yield AgentEvent("error", stop)
                    break
                messages.append({"role": "assistant", "content": current.content})
                drop_images(messages)  # only the latest round's images stay
                messages.append({"role": "user", "content": await self._next_message(current)})
        except asyncio.CancelledError:
            _uncancel()
            if current.executing:
                await self.executor.interrupt()
            yield AgentEvent("round_complete", current.stopped(self.plan, "cancelled", "Task cancelled by user."))
        except Rejected:
            yield AgentEvent("round_complete", current.stopped(self.plan, "rejected", ABORTED))
        except LLMError as e:
            yield AgentEvent("error", {"error": str(e)})
        yield AgentEvent("done", {"usage": self.usage.model_dump(mode="json")})

    async def _round(self, current: Round, messages: list[dict[str, Any]]) -> AsyncIterator[AgentEvent]:
        """Ask the model, then run its code: the events of one round up to ``round_complete``."""
        async for event in self._ask(current, messages):
            yield event
        reply = current.reply
        if reply.plan is not None:
            self.plan = reply.plan
            yield AgentEvent("plan", reply.plan.model_dump(mode="json"))
            if self._is_new_plan(reply.plan):
                async for event in self._pause(current, "plan", plan=reply.plan, code=reply.code):
                    yield event
                if not self._plan_decision(current):
                    return
        if reply.has_answer:
            async for event in self._pause(current, "answer", answer=reply.answer):
                yield event
            decision = current.take("answer")
            if decision is not None and decision.action == HITLAction.feedback:
                current.steer = f"The user asks you to revise your answer: {decision.message}"
            return
        if not reply.code:
            return
        current.code = reply.code
        if reply.cell is not None:
            await self._target(current, reply.cell)
        async for event in self._pause(current, "code", code=reply.code, cell=current.edited_cell):
            yield event
        if not self._code_decision(current):
            return
        if current.cell is not None and current.decisions:  # the user may have edited the cell during the pause
            await self._target(current, current.cell.index)
        while True:
            async for event in self._execute(current):
                yield event
            assert current.result is not None
            if current.result.success:
                return
            async for event in self._pause(
                current, "error", code=current.code, error=current.result.error, cell=current.edited_cell
            ):
                yield event
            if not self._error_decision(current):
                return

    async def _ask(self, current: Round, messages: list[dict[str, Any]]) -> AsyncIterator[AgentEvent]:
        yield AgentEvent("thinking", {"message": "Processing...", "round": current.number})
        # let subscribers send it now: nothing below suspends before the model call's setup, which is
        # milliseconds of CPU (the first event of a task waited for all of it)
        await asyncio.sleep(0)
        if current.number == 1:
            await self._first_round(messages)
        current.usage, self.charged = self.charged, None  # the round's usage starts with what it charged
        # later rounds reuse what came back with the last cell; the first asks the kernel (unless it
        # has been silent since its last description)
        state = await self.executor.state(reuse=current.number > 1)
        system = build_system_prompt(
            describe_kernel(state), workspace_reachable=state.workspace_reachable, kernel_notice=self.kernel_notice,
            notebook=self.config.notebook, workspace=self.config.workspace, notebook_view=self.notebook_view,
            cell_edits=self.edits is not None,
            sees_images=self.sees_images,
        )
        prompt = [{"role": "system", "content": system}, *messages]
        current.images_seen = sum(count_images(m["content"]) for m in messages)
        parts: list[str] = []
        async for chunk in self.llm.stream(self.config.model, prompt, stop=STOP):
            if chunk.text:
                parts.append(chunk.text)
                yield AgentEvent("llm_delta", {"delta": chunk.text, "round": current.number})
            if chunk.usage is not None:
                current.usage = chunk.usage if current.usage is None else current.usage.plus(chunk.usage)
                add_usage(self.usage, chunk.usage)
        current.content = "".join(parts)
        yield AgentEvent("llm_response", {"content": current.content, "round": current.number})
        current.reply = parse_reply(current.content)

    async def _first_round(self, messages: list[dict[str, Any]]) -> None:
        """Load what the task starts from: the earlier conversation, the user's notebook (whose images go
        with the task's message, for a model that sees them)."""
        task = messages[-1]
        if self.history is not None:
            messages[:0] = await self.history()
        self.sees_images = await sees_images(self.llm, self.config.model, self.config.vision.mode)
        context = await self.notebook() if self.notebook is not None else None
        if context is None:
            return
        self.notebook_view = describe_notebook(context, self.config.notebook)
        if self.sees_images:
            note, pictures = await notebook_pictures(task["content"], context, self.config.vision)
            if pictures:
                task["content"] = with_pictures(f"{task['content']}\n\n{note}", pictures)

    async def _next_message(self, current: Round) -> str | list[dict[str, Any]]:
        """The next user message: the cell's outcome, with the images it displayed for a model that sees them."""
        result = current.result
        feedback_chars = self.config.feedback_chars
        if not (self.sees_images and current.steer is None and result is not None and result.success and result.images):
            return current.next_prompt(feedback_chars)
        note, pictures = await cell_pictures(result.images, self.config.vision)
        return with_pictures(current.next_prompt(feedback_chars, images=note), pictures)

    async def _execute(self, current: Round) -> AsyncIterator[AgentEvent]:
        assert current.code is not None
        if current.cell is not None and current.result is not None and self.edits is not None:
            current.cell = self.edits.again(current.cell)  # a retry: the cell holds the failed attempt
        cell = {"cell": current.edited_cell} if current.cell is not None else {}
        yield AgentEvent("code_executing", {"code": current.code, "round": current.number, **cell})
        if current.cell is not None and current.cell.cell_type == "markdown":
            current.result = ExecutionResult()  # a markdown cell's new text: nothing runs
        else:
            async for event in self._run(current):
                yield event
        if current.cell is not None and self.edits is not None:
            self.edits.applied(current.cell, current.code)
            if edited(current.cell) not in (current.note or ""):
                current.add_note(edited(current.cell))
        yield AgentEvent("code_result", {**current.result.model_dump(mode="json"), "round": current.number, **cell})

    async def _target(self, current: Round, index: int) -> None:
        """Find the cell ``<code cell="N">`` rewrites; when there is none, the code runs as a new cell."""
        if self.edits is not None:
            found = await self.edits.target(index)
        else:
            found = "this task only adds cells" if self.config.notebook else "this session works in no notebook"
        if isinstance(found, str):
            current.cell = None
            current.add_note(not_edited(index, found))
        else:
            current.cell = found

    async def _run(self, current: Round) -> AsyncIterator[AgentEvent]:
        """Run the round's code in the kernel, its outputs as they arrive."""
        current.executing = True
        arrived: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def run_cell() -> ExecutionResult:
            try:  # the description comes back with the result, ready for the next round's prompt
                return await self.executor.execute(
                    current.code or "", timeout=self.config.code_timeout, describe=True, on_output=arrived.put_nowait
                )
            finally:
                arrived.put_nowait(None)

        cell = asyncio.ensure_future(run_cell())
        try:
            while (output := await arrived.get()) is not None:
                yield AgentEvent("code_output", {"round": current.number, "output": output})
            current.result = await cell
        finally:
            if not cell.done():  # the task was cancelled: the caller interrupts the kernel
                cell.cancel()
                await asyncio.gather(cell, return_exceptions=True)
        current.executing = False

    async def _pause(self, current: Round, kind: PauseKind, **pending: Any) -> AsyncIterator[AgentEvent]:
        """If the mode pauses here, announce the request, wait, and record the decision."""
        if self.gate is None or not self.gate.wants(kind):
            return
        pause = self.gate.open(Pause(kind, **pending))  # awaiting before anyone hears of it
        yield AgentEvent("hitl_request", pause.request(self.gate.timeout))
        decision = await self.gate.wait(pause)
        record = {"request_type": kind, "round": current.number, **decision.record()}
        current.decisions.append(record)
        yield AgentEvent("hitl_resolved", record)
        if decision.action == HITLAction.reject:
            raise Rejected
        current.decision = decision

    def _plan_decision(self, current: Round) -> bool:
        """Apply a plan decision; False when the round stops here (the model revises first)."""
        decision = current.take("plan")
        if decision is None or decision.action == HITLAction.approve:
            self.approved_steps = _steps(self.plan)
            if decision is not None and decision.message:
                current.add_note(f"The user approved your plan and says: {decision.message}")
            return True
        if decision.action == HITLAction.modify:
            assert decision.modified_plan is not None
            self.plan = parse_plan(decision.modified_plan) or self.plan
            self.approved_steps = _steps(self.plan)
            current.steer = f"The user changed your plan. Follow this plan instead:\n{decision.modified_plan}" + _said(decision)
        elif decision.action == HITLAction.feedback:
            current.steer = f"The user reviewed your plan before anything ran and says: {decision.message}\nRevise the plan."
        else:  # skip
            current.steer = "The user skipped this step: it was not run. Continue with the next step of the plan." + _said(decision)
        return False

    def _code_decision(self, current: Round) -> bool:
        """Apply a decision taken before the code ran; False when it must not run."""
        decision = current.take("code")
        if decision is None or decision.action == HITLAction.approve:
            if decision is not None and decision.message:
                current.add_note(f"The user approved your code before it ran and says: {decision.message}")
            return True
        if decision.action == HITLAction.modify:
            current.code = decision.modified_code
            current.add_note(
                f"The user edited your code before it ran. This is what ran:\n```python\n{current.code}\n```" + _said(decision)
            )
            return True
        if decision.action == HITLAction.feedback:
            current.steer = f"The user did not run this code and says: {decision.message}\nRevise it."
        else:  # skip
            current.steer = "The user skipped running this code. Continue with the next step." + _said(decision)
        return False

    def _error_decision(self, current: Round) -> bool:
        """Apply a decision on failed code; True when the code is to run again."""
        decision = current.take("error")
        if decision is None or decision.action == HITLAction.approve:
            if decision is not None and decision.message:
                current.add_note(f"The user saw the code fail and says: {decision.message}")
            return False
        if decision.action in (HITLAction.retry, HITLAction.modify):
            current.code = decision.modified_code or current.code
            if decision.message:
                current.add_note(f"The user had the code run again and says: {decision.message}")
            return True
        assert current.result is not None
        if decision.action == HITLAction.feedback:
            current.steer = (
                execution_feedback(current.result, self.config.feedback_chars) + f"\nUser guidance: {decision.message}"
            )
        else:  # skip
            current.steer = (
                "The user acknowledged the error and chose to skip this step. Continue with the next one." + _said(decision)
            )
        return False

    def _is_new_plan(self, plan: PlanResponse) -> bool:
        """Pause on a plan once, and again only when its steps change (not when steps are ticked)."""
        return _steps(plan) != self.approved_steps


def _said(decision: Decision) -> str:
    """The words a human added to a decision that has its own instruction, as a sentence to append."""
    return f"\nThe user says: {decision.message}" if decision.message else ""


def _steps(plan: PlanResponse | None) -> list[str] | None:
    return [step.description for step in plan.steps] if plan else None


def _uncancel() -> None:
    """Accept the cancellation so the closing events can still be awaited and yielded."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
