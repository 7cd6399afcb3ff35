"""The session notebook, rebuilt from the event log and saved through the server's contents manager.

Rebuilding from the log (rather than patching a file) makes the notebook always agree with
``/turns`` and lets any contents manager (local, S3, database) store it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import nbformat
from nbformat.corpus.words import generate_corpus_id
from nbformat.notebooknode import NotebookNode, from_dict
from nbformat.v4 import nbformat as NBFORMAT
from nbformat.v4 import nbformat_minor as NBFORMAT_MINOR

from ..engine.hitl import describe_decision
from ..engine.protocol import parse_reply

NOTEBOOK_OUTPUT_CAP = 200_000
# the agent's cells ran in the session workspace with these imports; re-running needs the same
SETUP = """\
# Setup as in the agent's kernel: run from the session workspace (this notebook sits in notebooks/)
%matplotlib inline
import os
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
if os.path.basename(os.getcwd()) == "notebooks":
    os.chdir("..")"""
_ERROR_HEAD = re.compile(r"^(\w[\w.]*): ?(.*)$")


# The same nodes as nbformat.v4's new_notebook/new_markdown_cell/new_code_cell/new_output, without
# their per-node jsonschema validation: rebuilding a notebook cell by cell cost more than all the rest
# of a round.
# The contents manager still validates the whole notebook once, when it saves it.
def new_markdown_cell(source: str) -> NotebookNode:
    return NotebookNode(id=generate_corpus_id(), cell_type="markdown", source=source, metadata=NotebookNode())


def new_code_cell(source: str, execution_count: int | None = None) -> NotebookNode:
    return NotebookNode(
        id=generate_corpus_id(), cell_type="code", metadata=NotebookNode(),
        execution_count=execution_count, source=source, outputs=[],
    )


def new_output(output_type: str, **fields: Any) -> NotebookNode:
    if output_type == "display_data":
        fields.setdefault("metadata", NotebookNode())
    return NotebookNode(output_type=output_type, **fields)


def _capped(text: str) -> str:
    if len(text) <= NOTEBOOK_OUTPUT_CAP:
        return text
    return text[:NOTEBOOK_OUTPUT_CAP] + f"\n[... {len(text) - NOTEBOOK_OUTPUT_CAP} characters omitted ...]\n"


def notebook_outputs(result: dict[str, Any]) -> list[Any]:
    """A logged execution result's outputs as notebook nodes (rebuilt from the text fields for a log
    written before results carried ``outputs``)."""
    if result.get("outputs"):
        return [from_dict(output) for output in result["outputs"]]
    outputs = []
    for name in ("stdout", "stderr"):
        if result.get(name):
            outputs.append(new_output("stream", name=name, text=_capped(result[name])))
    for image in result.get("images") or []:
        outputs.append(new_output("display_data", data={image["mime"]: image["data"]}))
    if result.get("error"):
        lines = result["error"].splitlines() or ["Error"]
        match = _ERROR_HEAD.match(lines[0])
        ename, evalue = match.groups() if match else ("Error", lines[0])
        outputs.append(new_output("error", ename=ename, evalue=evalue, traceback=lines))
    return outputs


def _assistant_markdown(content: str) -> str | None:
    reply = parse_reply(content)
    parts = [reply.text.strip()] if reply.text.strip() else []
    if reply.plan is not None:
        parts.append("\n".join(f"- [{'x' if s.completed else ' '}] {s.description}" for s in reply.plan.steps))
    if reply.answer:
        parts.append(f"### Answer\n\n{reply.answer}")
    return "\n\n".join(parts) or None


def build_notebook(title: str, events: Iterable[dict[str, Any]]) -> nbformat.NotebookNode:
    """Markdown for the user, the agent's prose, plan and answer, and each human decision; a code cell per
    executed block."""
    nb = NotebookNode(nbformat=NBFORMAT, nbformat_minor=NBFORMAT_MINOR, cells=[], metadata=NotebookNode(
        kernelspec=NotebookNode(name="python3", display_name="Python 3", language="python"),
        language_info=NotebookNode(name="python"),
    ))
    nb.cells.append(new_markdown_cell(f"# {title}\n\n*Written by DSAgent: each code cell ran in the session kernel.*"))
    nb.cells.append(new_code_cell(SETUP))
    count = 0
    code_cell = None
    for record in events:
        event, data = record["event"], record["data"]
        if event == "user_message":
            nb.cells.append(new_markdown_cell(f"**User:** {data.get('message', '')}"))
        elif event == "llm_response":
            text = _assistant_markdown(data.get("content", ""))
            if text:
                nb.cells.append(new_markdown_cell(text))
        elif event == "code_executing":
            count += 1
            code_cell = new_code_cell(data.get("code", ""), execution_count=count)
            nb.cells.append(code_cell)
        elif event == "code_result" and code_cell is not None:
            code_cell.outputs = notebook_outputs(data)
            code_cell = None
        elif event == "hitl_resolved":
            nb.cells.append(new_markdown_cell(f"> **Human review:** {describe_decision(data)}"))
    return nb


def agent_cells(
    events: list[dict[str, Any]], after: int, session_id: str, markdown: bool = True
) -> tuple[list[NotebookNode], str | None, int]:
    """What the agent's logged events after seq ``after`` add to a user's notebook: new cells, the new
    text of a plan cell already in it (or None), and the seq they go through.

    A code cell per executed round (source, outputs, execution count, ``metadata.dsagent``); with
    ``markdown``, one plan cell per task (its steps ticked as it advances) and the final answer. A
    cell whose code is still running is left for the next call: the seq stops before it. A round that
    rewrote a user's cell gives that cell's new version, its ``metadata.dsagent.edit`` saying which
    cell (see ``apply_edit``).
    """
    cells: list[NotebookNode] = []
    plan_update: str | None = None
    through = after
    code: dict[str, Any] | None = None
    plan_cell: NotebookNode | None = None  # this call's plan cell of the task
    planned = False  # the task has its plan cell
    number = None  # the round under way
    for record in events:
        event, data, seq = record["event"], record["data"], record["seq"]
        if event == "user_message":
            planned, plan_cell = False, None
        elif event == "thinking":
            number = data.get("round")
        elif event == "plan" and markdown and seq > after:
            text = "**Plan**\n\n" + "\n".join(
                f"- [{'x' if step.get('completed') else ' '}] {step.get('description')}" for step in data.get("steps", [])
            )
            if not planned:
                plan_cell = _agent_markdown(text, session_id, number, "plan")
                cells.append(plan_cell)
            elif plan_cell is not None:
                plan_cell.source = text
            else:
                plan_update = text
        if event == "plan":
            planned = True
        elif event == "code_executing":
            code = data
        elif event == "code_result" and code is not None and seq > after and "round" in data:
            edit = code.get("cell")
            if edit is not None and edit.get("cell_type") == "markdown":
                cell = new_markdown_cell(code.get("code", ""))
            else:
                cell = new_code_cell(code.get("code", ""), execution_count=data.get("execution_count"))
                cell.outputs = notebook_outputs(data)
            cell.metadata["dsagent"] = NotebookNode(session_id=session_id, round=data["round"])
            if edit is not None:
                cell.metadata["dsagent"]["edit"] = from_dict(edit)
            cells.append(cell)
        elif event == "round_complete" and markdown and seq > after and data.get("stop_reason") == "answer":
            cells.append(_agent_markdown(data.get("answer") or "", session_id, data.get("round"), "answer"))
        if event == "code_result":
            code = None
        if seq > after and code is None:
            through = seq
    return cells, plan_update, through


def _agent_markdown(text: str, session_id: str, number: int | None, kind: str) -> NotebookNode:
    cell = new_markdown_cell(text.strip())
    cell.metadata["dsagent"] = NotebookNode(session_id=session_id, round=number, kind=kind)
    return cell


def apply_edit(cells: list[NotebookNode], new: NotebookNode) -> bool:
    """Put an edit (a cell of ``agent_cells`` whose ``metadata.dsagent.edit`` names a user's cell) into
    that cell of ``cells``; False when the cell is gone or holds something else now (the user's edit
    wins: the caller adds ``new`` as a cell of its own).

    Until the user keeps or reverts it, the cell's ``metadata.dsagent`` keeps what it held before the
    agent's first edit (``previous_source``, ``previous_outputs``, ``previous_execution_count``).
    """
    mark = new.metadata["dsagent"]
    edit = mark.pop("edit")
    if edit.get("id"):
        targets = [cell for cell in cells if cell.get("id") == edit["id"]]
    else:
        targets = cells[edit["index"] : edit["index"] + 1]
    if not targets or _source(targets[0]) != edit.get("previous_source", "") or targets[0].cell_type != new.cell_type:
        return False
    cell = targets[0]
    previous = cell.get("metadata", {}).get("dsagent", {})
    review = NotebookNode(
        session_id=mark["session_id"], round=mark["round"],
        previous_source=previous.get("previous_source", _source(cell)),
    )
    if cell.cell_type == "code":
        review["previous_outputs"] = previous.get("previous_outputs", cell.get("outputs", []))
        review["previous_execution_count"] = previous.get("previous_execution_count", cell.get("execution_count"))
        cell.outputs = new.outputs
        cell.execution_count = new.execution_count
    cell.source = new.source
    cell.metadata["dsagent"] = review
    return True


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source
