"""What one cell publishes on iopub, gathered into an ``ExecutionResult`` within a memory cap.

Two views of the same messages: the flat text fields (``stdout``, ``stderr``, ``error``, ``images``) the
reference API and the model's feedback use, and ``outputs`` in nbformat v4 form, in order, as a
notebook shows them (a DataFrame's ``text/html`` included). Every output is capped on its own, and all
of them together, so one huge output cannot flood a stream or the server's memory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ..models import ExecutionResult, ImageOutput

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpeg", "image/svg+xml": "svg"}
TRUNCATED = "dsagent_truncated"  # metadata flag of a rich output that lost data to the cap

OutputSink = Callable[[dict[str, Any]], None]


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes, which only cost the model tokens."""
    return _ANSI.sub("", text)


def _omitted(count: int) -> str:
    return f"\n[... output truncated: {count} characters omitted ...]"


class _CappedText:
    """Keep the head of a stream up to ``cap`` characters; count, but do not hold, the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> str:
        """Take ``text``; return the part of it that was kept."""
        keep = text[: max(self.cap - self.size, 0)]
        if keep:
            self.parts.append(keep)
            self.size += len(keep)
        self.dropped += len(text) - len(keep)
        return keep

    def raw(self) -> str:
        text = "".join(self.parts)
        return text + _omitted(self.dropped) if self.dropped else text

    def value(self) -> str:
        return strip_ansi(self.raw())


def _bundle_size(data: dict[str, Any]) -> int:
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())


class _Outputs:
    """The nbformat outputs of one cell: consecutive stream text of one name merges, as in a notebook."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.budget = 4 * cap  # all outputs together
        self.items: list[dict[str, Any] | _CappedText] = []
        self.names: list[str | None] = []  # stream name of each item (None: not a stream)
        self.used = 0
        self.skipped = 0
        self.clear_pending = False

    def clear(self, wait: bool) -> None:
        if wait:
            self.clear_pending = True  # cleared when the next output arrives, as the front ends do
        else:
            self._clear()

    def _clear(self) -> None:
        self.items, self.names, self.used, self.clear_pending = [], [], 0, False

    def stream(self, name: str, text: str) -> dict[str, Any] | None:
        """Add stream text; return the piece a live client should append (None: nothing kept)."""
        if self.clear_pending:
            self._clear()
        if not (self.names and self.names[-1] == name):
            if self.used >= self.budget:
                self.skipped += 1
                return None
            self.items.append(_CappedText(self.cap))
            self.names.append(name)
        current = self.items[-1]
        assert isinstance(current, _CappedText)
        room = text[: max(self.budget - self.used, 0)]
        keep = current.add(room)
        current.dropped += len(text) - len(room)
        self.used += len(keep)
        return {"output_type": "stream", "name": name, "text": keep} if keep else None

    def rich(self, output: dict[str, Any], size: int) -> dict[str, Any] | None:
        """Add a display, a result or an error already capped to ``size`` characters."""
        if self.clear_pending:
            self._clear()
        if self.used + size > self.budget:
            self.skipped += 1
            return None
        self.items.append(output)
        self.names.append(None)
        self.used += size
        return output

    def value(self) -> list[dict[str, Any]]:
        outputs = [
            {"output_type": "stream", "name": name, "text": item.raw()} if isinstance(item, _CappedText) else item
            for item, name in zip(self.items, self.names)
        ]
        if self.skipped:
            outputs.append({
                "output_type": "stream", "name": "stderr",
                "text": f"[... {self.skipped} more outputs omitted: the cell's output exceeded the cap ...]\n",
            })
        return outputs


class CellOutput:
    """What one request published on iopub; ``on_output`` hears each output (or stream piece) as it comes."""

    def __init__(self, cap: int, on_output: OutputSink | None = None) -> None:
        self.cap = cap
        self.stdout = _CappedText(cap)
        self.stderr = _CappedText(cap)
        self.images: list[ImageOutput] = []
        self.error: str | None = None
        self.execution_count: int | None = None
        self.outputs = _Outputs(cap)
        self.on_output = on_output

    def add(self, msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        live = None
        if kind == "stream":
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            (self.stderr if name == "stderr" else self.stdout).add(content["text"])
            live = self.outputs.stream(name, content["text"])
        elif kind in ("execute_result", "display_data"):
            self._add_bundle(content.get("data", {}), kind == "execute_result")
            live = self._rich_bundle(kind, content)
        elif kind == "error":
            error = _CappedText(self.cap)
            error.add(f"{content.get('ename', 'Error')}: {content.get('evalue', '')}\n")
            error.add("\n".join(content.get("traceback", [])))
            self.error = error.value().rstrip()
            live = self._rich_error(content)
        elif kind == "execute_input":
            self.execution_count = content.get("execution_count")
        elif kind == "clear_output":
            self.outputs.clear(bool(content.get("wait")))
        if live is not None and self.on_output is not None:
            self.on_output(live)

    def _add_bundle(self, data: dict[str, Any], is_result: bool) -> None:
        # One image per bundle (png over jpeg over svg); text of a display only when it is no image,
        # so a figure does not also print "<Figure size 640x480 with 1 Axes>".
        mime = next((m for m in _IMAGE_MIMES if m in data), None)
        if mime:
            self.images.append(ImageOutput(format=_IMAGE_MIMES[mime], mime=mime, data=data[mime]))
        if "text/plain" in data and (is_result or not mime):
            self.stdout.add(data["text/plain"] + "\n")

    def _rich_bundle(self, kind: str, content: dict[str, Any]) -> dict[str, Any] | None:
        data = dict(content.get("data", {}))
        metadata = dict(content.get("metadata", {}))
        size = _bundle_size(data)
        if size > self.cap:  # keep the text, drop the rich forms, and say so
            text = str(data.get("text/plain", ""))
            omitted = sorted(m for m in data if m != "text/plain")
            if len(text) > self.cap:
                omitted.append(f"{len(text) - self.cap} characters of text")
            data = {"text/plain": f"{text[: self.cap]}\n[... output truncated: {', '.join(omitted)} omitted ...]"}
            metadata = {TRUNCATED: True}
            size = len(data["text/plain"])
        output: dict[str, Any] = {"output_type": kind, "data": data, "metadata": metadata}
        if kind == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return self.outputs.rich(output, size)

    def _rich_error(self, content: dict[str, Any]) -> dict[str, Any] | None:
        traceback: list[str] = []
        size = 0
        lines = [str(line) for line in content.get("traceback", [])]
        for n, line in enumerate(lines):
            if size + len(line) > self.cap:
                traceback.append(f"[... traceback truncated: {len(lines) - n} lines omitted ...]")
                break
            traceback.append(line)
            size += len(line)
        output = {
            "output_type": "error",
            "ename": str(content.get("ename", "Error"))[:1000],
            "evalue": str(content.get("evalue", ""))[: self.cap],
            "traceback": traceback,
        }
        return self.outputs.rich(output, size + len(output["evalue"]))

    def result(self, success: bool, error: str | None, started: float) -> ExecutionResult:
        return ExecutionResult(
            stdout=self.stdout.value(),
            stderr=self.stderr.value(),
            error=error,
            images=self.images,
            success=success,
            execution_time_ms=round((time.monotonic() - started) * 1000, 1),
            truncated=bool(self.stdout.dropped or self.stderr.dropped),
            outputs=self.outputs.value(),
            execution_count=self.execution_count,
        )
