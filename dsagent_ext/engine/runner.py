"""One task of the agent: rounds of model → code → kernel until it is done, as a stream of events.

The runner knows nothing of HTTP: it is given a model client and a kernel, and yields
``AgentEvent``s in the reference's order (``thinking``, ``llm_delta``*, ``llm_response``, ``plan``,
``code_executing``, ``code_result``, ``round_complete``, ..., ``done``). Whoever drives it decides
where the events go (event log, SSE, WebSocket).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..models import ExecutionResult, KernelState, PlanResponse, RoundResult, Usage
from .conversation import execution_feedback
from .llm import LLMClient, LLMError
from .prompt import build_system_prompt, describe_kernel
from .protocol import ParsedReply, parse_reply

STOP = ["</code>", "</answer>"]
CONTINUE = "Continue with the next step of your plan, or give the <answer> if the task is complete."


class Executor(Protocol):
    """The kernel side: ``KernelSession`` satisfies it."""

    async def execute(self, code: str, *, timeout: float) -> ExecutionResult: ...

    async def state(self) -> KernelState: ...

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


@dataclass
class _Round:
    """What one round has produced so far, to close it properly whatever interrupts it."""

    number: int
    content: str = ""
    reply: ParsedReply = field(default_factory=ParsedReply)
    code: str | None = None
    result: ExecutionResult | None = None
    executing: bool = False
    usage: Usage | None = None


@dataclass
class AgentRunner:
    """Runs one user message to completion; ``history`` is the conversation before it."""

    llm: LLMClient
    executor: Executor
    config: RunConfig
    history: list[dict[str, str]] = field(default_factory=list)
    plan: PlanResponse | None = None
    usage: Usage = field(default_factory=Usage)

    async def run(self, message: str) -> AsyncIterator[AgentEvent]:
        """Yield every event of the task, ending with ``done`` (after ``error`` on failure)."""
        messages = [*self.history, {"role": "user", "content": message}]
        current = _Round(1)
        try:
            for number in range(1, self.config.max_rounds + 1):
                current = _Round(number)
                async for event in self._round(current, messages):
                    yield event
                last = number == self.config.max_rounds
                result = self._close(current, last)
                yield AgentEvent("round_complete", result.model_dump(mode="json"))
                if result.is_complete:
                    break
                messages.append({"role": "assistant", "content": current.content})
                feedback = execution_feedback(current.result, self.config.feedback_chars) if current.result else CONTINUE
                messages.append({"role": "user", "content": feedback})
        except asyncio.CancelledError:
            _uncancel()
            if current.executing:
                await self.executor.interrupt()
            yield AgentEvent("round_complete", self._stopped(current, "cancelled", "Task cancelled by user."))
        except LLMError as e:
            yield AgentEvent("error", {"error": str(e)})
        yield AgentEvent("done", {"usage": self.usage.model_dump(mode="json")})

    async def _round(self, current: _Round, messages: list[dict[str, str]]) -> AsyncIterator[AgentEvent]:
        """Ask the model, then run its code: the events of one round up to ``round_complete``."""
        yield AgentEvent("thinking", {"message": "Processing...", "round": current.number})
        state = await self.executor.state()
        prompt = [{"role": "system", "content": build_system_prompt(describe_kernel(state))}, *messages]
        parts: list[str] = []
        async for chunk in self.llm.stream(self.config.model, prompt, stop=STOP):
            if chunk.text:
                parts.append(chunk.text)
                yield AgentEvent("llm_delta", {"delta": chunk.text, "round": current.number})
            if chunk.usage is not None:
                current.usage = chunk.usage
                self._add_usage(chunk.usage)
        current.content = "".join(parts)
        yield AgentEvent("llm_response", {"content": current.content, "round": current.number})
        reply = current.reply = parse_reply(current.content)
        if reply.plan is not None:
            self.plan = reply.plan
            yield AgentEvent("plan", reply.plan.model_dump(mode="json"))
        if reply.code and not reply.has_answer:
            current.code = reply.code
            yield AgentEvent("code_executing", {"code": reply.code, "round": current.number})
            current.executing = True
            current.result = await self.executor.execute(reply.code, timeout=self.config.code_timeout)
            current.executing = False
            yield AgentEvent("code_result", current.result.model_dump(mode="json"))

    def _close(self, current: _Round, last: bool) -> RoundResult:
        reply = current.reply
        stop = "answer" if reply.has_answer else "no_code" if current.code is None else None
        content = current.content
        if stop is None and last:
            stop = "max_rounds"
            content += f"\n\n[Max rounds ({self.config.max_rounds}) reached]"
        return RoundResult(
            round=current.number,
            content=content,
            code=current.code,
            execution_result=current.result,
            plan=self.plan,
            has_answer=reply.has_answer,
            answer=reply.answer,
            thinking=reply.thinking,
            is_complete=stop is not None,
            usage=current.usage,
            stop_reason=stop,
        )

    def _stopped(self, current: _Round, reason: str, answer: str) -> dict[str, Any]:
        """The final round of a task ended from outside (cancel, reject)."""
        return RoundResult(
            round=current.number,
            content=current.content,
            code=current.code,
            execution_result=current.result,
            plan=self.plan,
            answer=answer,
            is_complete=True,
            usage=current.usage,
            stop_reason=reason,
        ).model_dump(mode="json")

    def _add_usage(self, usage: Usage) -> None:
        total = self.usage
        total.prompt_tokens += usage.prompt_tokens
        total.completion_tokens += usage.completion_tokens
        total.total_tokens += usage.total_tokens
        if usage.cost_usd is not None:
            total.cost_usd = (total.cost_usd or 0.0) + usage.cost_usd


def _uncancel() -> None:
    """Accept the cancellation so the closing events can still be awaited and yielded."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()

