"""A notebook open in JupyterLab, as the notebook tests drive it (next to ``panel.Panel``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from panel import Panel
from playwright.sync_api import Locator, expect

# the notebook widget of a path, through the app the page exposes (expose_app_in_browser)
_WIDGET = "p => [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === p)"


def write_notebook(root: Path, name: str, sources: list[str]) -> None:
    """A notebook file on disk, as the user would have it before opening JupyterLab."""
    cells = [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None, "id": f"c{i}"}
        for i, s in enumerate(sources)
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    (root / name).write_text(json.dumps(notebook))


class Notebook:
    def __init__(self, panel: Panel, path: str) -> None:
        self.panel = panel
        self.page = panel.page
        self.path = path

    def open(self) -> Notebook:
        self.page.evaluate(
            "async p => { await window.jupyterapp.commands.execute('docmanager:open', {path: p}); }", self.path
        )
        expect(self.widget.locator(".jp-Cell").first).to_be_visible(timeout=60_000)
        self.wait_kernel_idle()
        return self

    def close(self) -> None:
        """Close the tab as its close button does (a saved notebook: no dialog)."""
        close = "p => [...window.jupyterapp.shell.widgets('main')].filter(w => w.context?.path === p).forEach(w => w.close())"
        self.page.evaluate(close, self.path)
        self.page.wait_for_function(
            "p => ![...window.jupyterapp.shell.widgets('main')].some(w => w.context?.path === p)", arg=self.path
        )

    @property
    def widget(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible")

    def cell(self, index: int) -> Locator:
        return self.widget.locator(".jp-Cell").nth(index)

    def toolbar_button(self, command: str) -> Locator:
        return self.widget.locator(f'.jp-Toolbar [data-command="{command}"]')

    def wait_kernel_idle(self, timeout: float = 60_000) -> None:
        self.page.wait_for_function(
            f"p => {{ const w = ({_WIDGET})(p); const k = w && w.sessionContext.session && "
            "w.sessionContext.session.kernel; return k && k.status === 'idle'; }",
            arg=self.path,
            timeout=timeout,
        )

    def run(self, index: int) -> None:
        """Run one cell as the user does: select it, Ctrl+Enter (it stays selected); wait for its count."""
        self.cell(index).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Control+Enter")
        expect(self.cell(index).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=60_000)

    def select(self, index: int) -> None:
        """Make a cell the active one (as a click on it does)."""
        self.page.evaluate(
            f"([p, i]) => {{ const n = ({_WIDGET})(p).content; n.deselectAll(); n.activeCellIndex = i; }}",
            [self.path, index],
        )

    def model_cells(self) -> list[dict[str, Any]]:
        """The cells of the live notebook model (what saving would write)."""
        return self.page.evaluate(f"p => ({_WIDGET})(p).content.model.toJSON().cells", self.path)

    def kernel_id(self) -> str:
        return self.page.evaluate(f"p => ({_WIDGET})(p).sessionContext.session.kernel.id", self.path)

    def save(self) -> None:
        """Save as Ctrl+S does; resolves once the file is written."""
        self.page.evaluate(f"p => ({_WIDGET})(p).context.save()", self.path)
        assert self.page.evaluate(f"p => ({_WIDGET})(p).model.dirty", self.path) is False

    def set_source(self, index: int, source: str) -> None:
        """Edit a cell as typing would (through the editor's shared model)."""
        self.page.evaluate(
            f"([p, i, s]) => ({_WIDGET})(p).content.widgets[i].model.sharedModel.setSource(s)",
            [self.path, index, source],
        )

    def append_code_cell(self, source: str) -> int:
        """A new code cell at the end, as the user would type it; its index."""
        return self.page.evaluate(
            f"([p, s]) => {{ const m = ({_WIDGET})(p).content.model;"
            " m.sharedModel.insertCell(m.cells.length, {cell_type: 'code', source: s}); return m.cells.length - 1; }",
            [self.path, source],
        )


def agent_cells(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cells if "dsagent" in c.get("metadata", {})]


def text_of(cell: dict[str, Any]) -> str:
    """All text a cell's outputs show (streams, plain results, errors)."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        else:
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)
