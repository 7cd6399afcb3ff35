"""The user's notebook as the model reads it: cells numbered in order, short outputs, the active cell marked.

Capped at every level (a cell's source, its outputs, the whole view) so a long notebook costs a bounded
number of tokens; when the whole does not fit, the cells nearest the active one (else the last ones)
are kept, and the gaps say how many cells they stand for.
"""

from __future__ import annotations

from typing import Any

from ..models import NotebookContext
from .outputs import strip_ansi

SOURCE_CHARS = 3_000
OUTPUT_CHARS = 1_500  # per cell, all its outputs together; an error's traceback is kept up to this
VIEW_CHARS = 24_000


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} characters omitted ...]"


def _text(value: Any) -> str:
    """nbformat text: a string, or a list of lines as stored on disk."""
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output_text(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return _text(output.get("text"))
    if kind == "error":
        traceback = "\n".join(_text(line) for line in output.get("traceback") or [])
        return traceback or f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    data = output.get("data") or {}
    if "text/plain" in data:
        return _text(data["text/plain"]) + "\n"
    images = [mime for mime in data if mime.startswith("image/")]
    if images:
        return f"[image: {images[0]}]\n"
    return "".join(f"[{mime} output]\n" for mime in data)


def _cell(index: int, cell: Any, marks: list[str]) -> str:
    header = f"[{index}] {cell.cell_type}"
    if cell.cell_type == "code" and cell.execution_count is not None:
        header += f", In [{cell.execution_count}]"
    if marks:
        header += f" ({', '.join(marks)})"
    lines = [header + ":", _cap(_text(cell.source), SOURCE_CHARS).rstrip() or "(empty)"]
    outputs = strip_ansi("".join(_output_text(o) for o in cell.outputs or [])).rstrip()
    if outputs:
        lines.append("Output:\n" + _cap(outputs, OUTPUT_CHARS))
    return "\n".join(lines)


def describe_notebook(context: NotebookContext, path: str | None = None, limit: int = VIEW_CHARS) -> str:
    """The notebook section of the system prompt ("" for a notebook without cells)."""
    if not context.cells:
        return ""
    selected = set(context.selected_cell_indices or [])
    active = context.active_cell_index
    rendered = []
    for index, cell in enumerate(context.cells):
        marks = (["active"] if index == active else []) + (["selected"] if index in selected and index != active else [])
        rendered.append(_cell(index, cell, marks))
    # keep the cells nearest the active one (the last one without it) within the limit
    focus = active if active is not None and 0 <= active < len(rendered) else len(rendered) - 1
    kept: set[int] = set()
    used = 0
    for index in sorted(range(len(rendered)), key=lambda i: (i not in selected and i != focus, abs(i - focus), -i)):
        if used + len(rendered[index]) > limit and kept:
            break
        kept.add(index)
        used += len(rendered[index])
    parts: list[str] = []
    gap = 0
    for index, text in enumerate(rendered):
        if index in kept:
            if gap:
                parts.append(f"[... {gap} cells omitted ...]")
                gap = 0
            parts.append(text)
        else:
            gap += 1
    if gap:
        parts.append(f"[... {gap} cells omitted ...]")
    name = f" `{path}`" if path else ""
    intro = (
        f"## The user's notebook{name}\n"
        "Its cells in order, as the user sees them (unsaved edits included when the user has it open); "
        "`[n]` is the cell's index, as in \"cell [3]\". Outputs are shortened."
    )
    return intro + "\n\n" + "\n\n".join(parts)
