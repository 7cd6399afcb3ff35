"""What one cell publishes on iopub, gathered into an ``ExecutionResult`` within a memory cap."""

from __future__ import annotations

import re
import time
from typing import Any

from ..models import ExecutionResult, ImageOutput

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpeg", "image/svg+xml": "svg"}


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes, which only cost the model tokens."""
    return _ANSI.sub("", text)


class _CappedText:
    """Keep the head of a stream up to ``cap`` characters; count, but do not hold, the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        keep = text[: max(self.cap - self.size, 0)]
        if keep:
            self.parts.append(keep)
            self.size += len(keep)
        self.dropped += len(text) - len(keep)

    def value(self) -> str:
        text = strip_ansi("".join(self.parts))
        if self.dropped:
            text += f"\n[... output truncated: {self.dropped} characters omitted ...]"
        return text


class CellOutput:
    """What one request published on iopub."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.stdout = _CappedText(cap)
        self.stderr = _CappedText(cap)
        self.images: list[ImageOutput] = []
        self.error: str | None = None

    def add(self, msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            (self.stderr if content.get("name") == "stderr" else self.stdout).add(content["text"])
        elif kind in ("execute_result", "display_data"):
            self._add_bundle(content.get("data", {}), kind == "execute_result")
        elif kind == "error":
            error = _CappedText(self.cap)
            error.add(f"{content.get('ename', 'Error')}: {content.get('evalue', '')}\n")
            error.add("\n".join(content.get("traceback", [])))
            self.error = error.value().rstrip()

    def _add_bundle(self, data: dict[str, Any], is_result: bool) -> None:
        # One image per bundle (png over jpeg over svg); text of a display only when it is no image,
        # so a figure does not also print "<Figure size 640x480 with 1 Axes>".
        mime = next((m for m in _IMAGE_MIMES if m in data), None)
        if mime:
            self.images.append(ImageOutput(format=_IMAGE_MIMES[mime], mime=mime, data=data[mime]))
        if "text/plain" in data and (is_result or not mime):
            self.stdout.add(data["text/plain"] + "\n")

    def result(self, success: bool, error: str | None, started: float) -> ExecutionResult:
        return ExecutionResult(
            stdout=self.stdout.value(),
            stderr=self.stderr.value(),
            error=error,
            images=self.images,
            success=success,
            execution_time_ms=round((time.monotonic() - started) * 1000, 1),
            truncated=bool(self.stdout.dropped or self.stderr.dropped),
        )
