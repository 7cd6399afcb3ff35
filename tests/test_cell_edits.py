"""The agent rewrites a user's cell in place (``<code cell="N">``): in the file of a closed notebook,
in the events, the turns and the model's history; a cell the user changed meanwhile is never overwritten."""

from __future__ import annotations

import asyncio
import time

import nbformat
import pytest
from test_hitl import next_request, start_stream

pytestmark = pytest.mark.timeout(120)

FIXED = "total = sum(values)\nprint(total)"
FIX = f'The name is misspelt.\n<code cell="1">\n{FIXED}\n'


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, "notebook_markdown_cells": False, **getattr(request, "param", {})}


@pytest.fixture
def notebook(jp_root_dir):
    """Cell [1] failed with a NameError when the user ran it."""
    failed = nbformat.v4.new_code_cell("total = sum(valuez)\nprint(total)", execution_count=2)
    failed.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="name 'valuez' is not defined", traceback=[])]
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("values = [1, 2, 3]", execution_count=1), failed, nbformat.v4.new_markdown_cell("# Notes")]
    )
    nbformat.write(nb, jp_root_dir / "analysis.ipynb")
    return jp_root_dir / "analysis.ipynb"


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


async def logged(client, sid: str) -> list[dict]:
    """Every event of the session, replayed from its log."""
    path = f"/api/sessions/{sid}/chat/stream"
    return [e async for e in client.events("GET", path, headers={"Last-Event-ID": "0"}) if e["event"] != "comment"]


async def written(client, sid: str, path) -> nbformat.NotebookNode:
    """The notebook once the server has written every event of the session into it."""
    last = (await logged(client, sid))[-1]["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        session = (await client.call("GET", f"/api/sessions/{sid}")).json()
        if (session["written_through"] or 0) >= last:
            return read(path)
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not write the notebook")


async def attach(client, **body) -> str:
    r = await client.call("POST", "/api/sessions", json={"notebook_path": "analysis.ipynb", **body})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "values = [1, 2, 3]"})
    return sid


def data(events, name):
    return [e["data"] for e in events if e["event"] == name]


async def test_a_failed_cell_is_fixed_in_place_in_a_closed_notebook(client, fake_llm, notebook):
    sid = await attach(client)
    fake_llm.script(FIX, "<answer>Fixed: the total is 6.</answer>")
    events = await client.chat_stream(sid, "Fix the error in cell [1].")
    system = fake_llm.requests[0]["messages"][0]["content"]
    assert '<code cell="3">' in system and "[1] code, In [2]:\ntotal = sum(valuez)" in system
    cell = {"index": 1, "id": read(notebook).cells[1].id, "previous_source": "total = sum(valuez)\nprint(total)", "cell_type": "code"}
    # the events say which cell the code rewrote, and what it held
    (executing,) = data(events, "code_executing")
    (result,) = data(events, "code_result")
    first = data(events, "round_complete")[0]
    assert executing["cell"] == cell and result["cell"] == cell and first["cell"] == cell
    assert result["stdout"] == "6\n" and result["success"]
    # the model hears where its code ran
    assert "is now the source of cell [1]" in fake_llm.requests[1]["messages"][-1]["content"]
    nb = await written(client, sid, notebook)
    nbformat.validate(nb)
    assert len(nb.cells) == 3, "no cell was appended"
    fixed = nb.cells[1]
    assert fixed.source == "total = sum(values)\nprint(total)"
    assert fixed.outputs == [{"output_type": "stream", "name": "stdout", "text": "6\n"}]
    assert fixed.execution_count == result["execution_count"]
    review = fixed.metadata.dsagent
    assert review.previous_source == "total = sum(valuez)\nprint(total)" and review.previous_execution_count == 2
    assert review.previous_outputs[0]["ename"] == "NameError" and review.session_id == sid and review.round == 1
    assert [c.source for c in (nb.cells[0], nb.cells[2])] == ["values = [1, 2, 3]", "# Notes"]
    # /turns and the next task's history say so
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert turns[0]["cell"] == cell and turns[1]["cell"] is None
    fake_llm.script("<answer>ok</answer>")
    await client.chat_stream(sid, "thanks")
    history = "\n".join(m["content"] for m in fake_llm.requests[-1]["messages"][1:])
    assert "This code replaced the source of the notebook's cell [1]." in history


async def test_a_second_edit_of_the_cell_keeps_the_users_original(client, fake_llm, notebook):
    sid = await attach(client)
    fake_llm.script(
        '<code cell="1">\ntotal = sum(valuess)\n', FIX, '<code cell="2">\n# Notes\n\nThe total is 6.\n', "<answer>done</answer>"
    )
    events = await client.chat_stream(sid, "Fix cell [1] and note the total in cell [2].")
    assert [e["cell"]["previous_source"] for e in data(events, "code_executing")] == [
        "total = sum(valuez)\nprint(total)", "total = sum(valuess)", "# Notes",
    ]
    # a markdown cell is rewritten without running anything
    markdown = data(events, "code_result")[2]
    assert markdown["cell"]["cell_type"] == "markdown" and markdown["success"] and markdown["outputs"] == []
    assert "Cell [2] (markdown) now holds your text" in fake_llm.requests[3]["messages"][-1]["content"]
    nb = await written(client, sid, notebook)
    assert [c.source for c in nb.cells] == ["values = [1, 2, 3]", "total = sum(values)\nprint(total)", "# Notes\n\nThe total is 6."]
    assert nb.cells[1].metadata.dsagent.previous_source == "total = sum(valuez)\nprint(total)"
    assert nb.cells[1].metadata.dsagent.previous_outputs[0]["ename"] == "NameError"
    assert nb.cells[2].metadata.dsagent.previous_source == "# Notes" and nb.cells[2].cell_type == "markdown"


@pytest.mark.parametrize("target", ["1", "99"])
async def test_a_changed_or_missing_cell_gets_a_new_cell_and_the_model_is_told(client, fake_llm, notebook, target):
    sid = await attach(client)
    if target == "1":  # the user changed cell [1] after the model saw it
        fake_llm.script(FIX.replace('"1"', target), "<answer>done</answer>")
        model_saw = {"cells": [
            {"cell_type": "code", "source": c.source, "id": c.id} for c in read(notebook).cells
        ]}
        model_saw["cells"][1]["source"] = "total = sum(valuez)"  # what the window showed then
        r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "Fix cell [1].", "notebook_context": model_saw})
        assert r.status_code == 200, r.text
        reason = "cell [1] was changed by the user since you saw it"
    else:
        fake_llm.script(FIX.replace('"1"', target), "<answer>done</answer>")
        await client.chat_stream(sid, "Fix cell [99].")
        reason = "the notebook has no cell [99]"
    events = await logged(client, sid)
    assert all(e["data"].get("cell") is None for e in events if e["event"] in ("code_executing", "code_result", "round_complete"))
    told = fake_llm.requests[1]["messages"][-1]["content"]
    assert f"Your code did not replace cell [{target}] ({reason}" in told and "it ran as a new cell instead." in told
    nb = await written(client, sid, notebook)
    assert len(nb.cells) == 4 and nb.cells[1].source == "total = sum(valuez)\nprint(total)"
    assert nb.cells[3].source == "total = sum(values)\nprint(total)" and "previous_source" not in nb.cells[3].metadata.dsagent


async def test_a_task_that_asks_for_no_edits_only_adds_cells(client, fake_llm, notebook):
    # the panel's "Explain" sends edit_cells: false; a model that rewrites a cell anyway adds one
    sid = await attach(client)
    fake_llm.script(FIX, "<answer>It sums the values.</answer>")
    body = {"message": "Explain cell [1].", "edit_cells": False}
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json=body)
    assert r.status_code == 200, r.text
    assert '<code cell="3">' not in fake_llm.requests[0]["messages"][0]["content"]
    assert r.json()["rounds"][0]["cell"] is None
    told = fake_llm.requests[1]["messages"][-1]["content"]
    assert "Your code did not replace cell [1] (this task only adds cells" in told
    nb = await written(client, sid, notebook)
    assert len(nb.cells) == 4 and nb.cells[1].source == "total = sum(valuez)\nprint(total)"
    assert "previous_source" not in nb.cells[1].metadata.get("dsagent", {})


async def test_a_cell_the_user_changes_before_the_file_is_written_is_never_overwritten(client, fake_llm, notebook):
    """The code ran as an edit, but the user saved another text into the cell meanwhile: theirs stays."""
    sid = await attach(client)
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "tab"})
    assert r.status_code == 200
    fake_llm.script(FIX, "<answer>done</answer>")
    await client.chat_stream(sid, "Fix cell [1].")
    nb = read(notebook)
    nb.cells[1].source = "total = sum(values) # mine"
    nbformat.write(nb, notebook)
    await client.call("DELETE", f"/api/sessions/{sid}/notebook/claim", params={"client_id": "tab"})
    nb = await written(client, sid, notebook)
    assert nb.cells[1].source == "total = sum(values) # mine" and "dsagent" not in nb.cells[1].metadata
    assert nb.cells[3].source == "total = sum(values)\nprint(total)"


@pytest.mark.parametrize("typed", [False, True])
async def test_a_claiming_window_reports_its_cells_and_a_change_there_wins(client, fake_llm, notebook, typed):
    """The model was shown the window's cells; the window reported its cells since (changed, or not)."""
    sid = await attach(client)
    shown = [{"cell_type": c.cell_type, "source": c.source, "id": c.id} for c in read(notebook).cells]
    live = [dict(cell) for cell in shown]
    if typed:
        live[1]["source"] = "total = sum(values)  # typed"
    r = await client.call("POST", f"/api/sessions/{sid}/notebook/claim", json={"client_id": "tab", "cells": live})
    assert r.status_code == 200
    fake_llm.script(FIX, "<answer>done</answer>")
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "Fix cell [1].", "notebook_context": {"cells": shown}})
    first = r.json()["rounds"][0]
    told = fake_llm.requests[1]["messages"][-1]["content"]
    if typed:
        assert first["cell"] is None and "cell [1] was changed by the user since you saw it" in told
    else:
        assert first["cell"]["id"] == shown[1]["id"] and "is now the source of cell [1]" in told
    assert len(read(notebook).cells) == 3, "the window writes the cells, not the server"


@pytest.mark.parametrize("decision", ["reject", "approve"])
async def test_full_mode_asks_with_the_cell_and_a_reject_leaves_it(client, fake_llm, notebook, decision):
    sid = await attach(client, hitl_mode="full")
    fake_llm.script(FIX, "<answer>done</answer>")
    task, queue = await start_stream(client, sid, "Fix the error in cell [1].")
    request = await next_request(queue)
    cell_id = read(notebook).cells[1].id
    assert request["request_type"] == "code" and request["code"] == "total = sum(values)\nprint(total)"
    assert request["cell"] == {"index": 1, "id": cell_id, "previous_source": "total = sum(valuez)\nprint(total)", "cell_type": "code"}
    assert request["message"] == "Replace cell [1] with this code and run it?"
    status = (await client.call("GET", f"/api/sessions/{sid}/hitl/status")).json()
    assert status["pending_cell"] == request["cell"] and status["pending_message"] == request["message"]
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": decision})
    assert r.status_code == 200, r.text
    if decision == "approve":
        await next_request(queue)  # the answer
        await client.call("POST", f"/api/sessions/{sid}/hitl/approve")
    events = await task
    nb = await written(client, sid, notebook)
    if decision == "reject":
        assert not data(events, "code_executing")
        assert [c.source for c in nb.cells] == ["values = [1, 2, 3]", "total = sum(valuez)\nprint(total)", "# Notes"]
        assert nb.cells[1].outputs[0]["ename"] == "NameError" and "dsagent" not in nb.cells[1].metadata
    else:
        assert len(nb.cells) == 3 and nb.cells[1].source == "total = sum(values)\nprint(total)"
        assert nb.cells[1].outputs[0]["text"] == "6\n"


async def test_a_failed_edit_retried_with_the_users_code_stays_in_the_cell(client, fake_llm, notebook):
    sid = await attach(client, hitl_mode="on_error")
    fake_llm.script('<code cell="1">\ntotal = sum(valuess)\n', "<answer>done</answer>")
    task, queue = await start_stream(client, sid, "Fix cell [1].")
    request = await next_request(queue)
    assert request["request_type"] == "error" and request["cell"]["index"] == 1
    r = await client.call("POST", f"/api/sessions/{sid}/hitl/respond", json={"action": "retry", "modified_code": FIXED})
    assert r.status_code == 200, r.text
    events = await task
    first, second = data(events, "code_executing")
    assert first["cell"]["previous_source"] == "total = sum(valuez)\nprint(total)"
    assert second["cell"]["previous_source"] == "total = sum(valuess)"  # what the cell held when it ran again
    nb = await written(client, sid, notebook)
    assert len(nb.cells) == 3 and nb.cells[1].source == FIXED and nb.cells[1].outputs[0]["text"] == "6\n"
    assert nb.cells[1].metadata.dsagent.previous_source == "total = sum(valuez)\nprint(total)"
