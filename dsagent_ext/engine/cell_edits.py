"""Edits of the user's cells: ``<code cell="N">`` is the new source of the notebook's cell [N].

The model names a cell by the index it was shown in the notebook section of its prompt. The edit goes
ahead only while that cell still holds what the model saw: an edit the user made in between wins, and
the code runs as a new cell instead, with the model told why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

EDITABLE = ("code", "markdown")


def cell_text(value: Any) -> str:
    """nbformat text: a string, or a list of lines as stored on disk."""
    return "".join(value) if isinstance(value, list) else str(value or "")


def _field(cell: Any, name: str) -> Any:
    return cell.get(name) if isinstance(cell, dict) else getattr(cell, name, None)


@dataclass
class CellEdit:
    """The cell a round rewrites, as the model saw it."""

    index: int
    id: str | None
    cell_type: str
    previous_source: str

    def event(self) -> dict[str, Any]:
        """The ``cell`` field of the round's events."""
        return {"index": self.index, "id": self.id, "previous_source": self.previous_source, "cell_type": self.cell_type}


@dataclass
class CellEdits:
    """The cells the model was shown in this task, and the notebook's cells as they are now.

    ``current`` returns the live cells (a claiming window's notebook model, else the file), or None
    when they cannot be known, in which case the cells are taken to be as shown.
    """

    current: Callable[[], Awaitable[Sequence[Any] | None]]
    shown: list[Any] = field(default_factory=list)
    # what each cell held before this task's edits of it: a window's or the file's view may lag behind
    # the agent's own edit for a moment, which is no change by the user
    _before: dict[int, set[str]] = field(default_factory=dict)

    async def target(self, index: int) -> CellEdit | str:
        """The cell ``[index]`` to rewrite, or why it cannot be (a sentence for the model)."""
        if not 0 <= index < len(self.shown):
            return f"the notebook has no cell [{index}]"
        seen = self.shown[index]
        cell_type = str(_field(seen, "cell_type") or "code")
        if cell_type not in EDITABLE:
            return f"cell [{index}] is a {cell_type} cell"
        cell_id = _field(seen, "id")
        source = cell_text(_field(seen, "source"))
        now = await self.current()
        if now is not None:
            matching = [c for c in now if _field(c, "id") == cell_id] if cell_id else list(now[index : index + 1])
            if not matching:
                return f"cell [{index}] no longer exists in the notebook"
            if cell_text(_field(matching[0], "source")) not in {source, *self._before.get(index, ())}:
                return f"cell [{index}] was changed by the user since you saw it, and the user's edit wins"
        return CellEdit(index, cell_id, cell_type, source)

    def again(self, edit: CellEdit) -> CellEdit:
        """The same edit run once more (a retry after it failed): the cell holds the last attempt now."""
        return replace(edit, previous_source=cell_text(_field(self.shown[edit.index], "source")))

    def applied(self, edit: CellEdit, source: str) -> None:
        """The edit is in the notebook: a later edit of the same cell starts from this text."""
        self._before.setdefault(edit.index, set()).add(edit.previous_source)
        self.shown[edit.index] = {"id": edit.id, "cell_type": edit.cell_type, "source": source}


def not_edited(index: int, reason: str) -> str:
    """What the model is told when its ``<code cell="N">`` ran as a new cell."""
    return f"Your code did not replace cell [{index}] ({reason}): it ran as a new cell instead."


def edited(edit: CellEdit) -> str:
    """What the model is told before the result of an edit."""
    if edit.cell_type == "markdown":
        return f"Cell [{edit.index}] (markdown) now holds your text; nothing was run."
    return f"Your code is now the source of cell [{edit.index}] and ran there."
