"""What a cell gives back, plans, and token usage."""

from __future__ import annotations

from typing import Any

from pydantic import Field, computed_field

from .base import Body, Model


class ImageOutput(Model):
    format: str
    mime: str
    data: str


class ExecutionResult(Model):
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    images: list[ImageOutput] = Field(default_factory=list)
    success: bool = True
    execution_time_ms: float | None = None
    truncated: bool = False
    outputs: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The cell's outputs in nbformat v4 form, in order (``stream``, ``execute_result``, "
        "``display_data`` with whole mime bundles, ``error``); each capped, a truncated rich output has "
        "``metadata.dsagent_truncated``.",
    )
    execution_count: int | None = Field(default=None, description="The kernel's execution count of the cell.")

    @computed_field(description="What a notebook shows as text: stdout, then stderr, then the error.")  # type:ignore[prop-decorator]
    @property
    def output(self) -> str:
        text = self.stdout + self.stderr
        if self.error:
            text += ("\n" if text and not text.endswith("\n") else "") + self.error
        return text


class ExecuteCodeRequest(Body):
    code: str = Field(max_length=1_000_000)


class ResetKernelRequest(Body):
    restart_user_kernel: bool = False


class PlanStep(Model):
    number: int
    description: str
    completed: bool


class PlanResponse(Model):
    steps: list[PlanStep]
    raw_text: str
    total_steps: int
    completed_steps: int
    is_complete: bool


class Usage(Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None

    def plus(self, other: Usage) -> Usage:
        """Both calls' usage together (the cost is known when either's is)."""
        cost = None if self.cost_usd is None and other.cost_usd is None else (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=cost,
        )
