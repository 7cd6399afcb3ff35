"""The agent fixes the user's cell where it is: the new source and outputs in the same cell, a diff
against what it held, Keep and Revert in the cell (and for all in the panel), approval of the change
before it runs in ``full`` mode, undo, and a review that outlives a reload."""

from __future__ import annotations

import json

import pytest
from notebook import Notebook, text_of, write_notebook
from panel import eventually
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(300)

BROKEN = "total = sum(valuez)\nprint(total)"
FIXED = "total = sum(values)\nprint(total)"


@pytest.fixture(scope="module")
def notebook(panel, lab):
    """edits.ipynb open, its first cell run by the user, the panel working in it."""
    write_notebook(lab.root, "edits.ipynb", ["values = [1, 2, 3]"])
    notebook = Notebook(panel, "edits.ipynb").open()
    notebook.run(0)
    notebook.toolbar_button("dsagent:work-in-notebook").click()
    expect(panel.root.get_by_label("Attached notebook", exact=True)).to_contain_text("Works in edits.ipynb")
    return notebook


def saved_source(path, index: int) -> str | None:
    """Cell ``index`` of the notebook file (None while the server is rewriting it)."""
    try:
        return "".join(json.loads(path.read_text())["cells"][index]["source"])
    except (ValueError, IndexError):
        return None


def session_id(lab) -> str:
    return lab.api("GET", "api/sessions?notebook_path=edits.ipynb")["sessions"][0]["id"]


def failing_cell(notebook) -> int:
    """A new cell at the end that the user ran: it failed with a NameError."""
    index = notebook.append_code_cell(BROKEN)
    notebook.run(index)
    expect(notebook.cell(index)).to_contain_text("NameError")
    return index


def fix_with_dsagent(panel, fake, notebook, index: int, wait: bool = True) -> None:
    fake.script(f'The name is misspelt.\n<code cell="{index}">\n{FIXED}\n', "<answer>Fixed: the total is 6.</answer>")
    notebook.cell(index).locator(".jp-InputPrompt").click(button="right")
    panel.page.locator(".lm-Menu-item", has_text="Fix with DSAgent").click()
    expect(panel.root.locator(".jp-dsagent-user").last).to_have_text(f"Fix the error in cell [{index}].")
    if wait:
        panel.wait_done()


def source(notebook, index: int) -> str:
    return "".join(notebook.model_cells()[index]["source"])


def review(notebook, index: int):
    return notebook.cell(index).get_by_role("group", name="DSAgent edit", exact=True)


def fixed_in_place(notebook, index: int, cells_before: int) -> None:
    """The failed cell now holds the fix and ran clean; no code cell was added for it."""
    eventually(lambda: "6" in text_of(notebook.model_cells()[index]))
    cells = notebook.model_cells()
    assert "".join(cells[index]["source"]) == FIXED
    assert "NameError" not in text_of(cells[index])
    assert cells[index]["metadata"]["dsagent"]["previous_source"] == BROKEN
    code_cells = [c for c in cells if c["cell_type"] == "code"]
    assert len(code_cells) == cells_before, "a code cell was added"


def test_fix_in_place_shows_a_diff_and_revert_restores(panel, fake, lab, notebook):
    index = failing_cell(notebook)
    code_cells = sum(c["cell_type"] == "code" for c in notebook.model_cells())
    fix_with_dsagent(panel, fake, notebook, index)
    # the model was taught to edit and saw the failed cell
    system = fake.requests[-2]["messages"][0]["content"]
    assert '<code cell="3">' in system and "NameError" in system
    fixed_in_place(notebook, index, code_cells)
    diff = review(notebook, index)
    expect(diff).to_be_visible()
    expect(diff.locator(".jp-dsagent-diff-del")).to_have_text("- total = sum(valuez)")
    expect(diff.locator(".jp-dsagent-diff-add")).to_have_text("+ total = sum(values)")
    expect(diff.locator(".jp-dsagent-diff-same")).to_have_text("  print(total)")
    expect(notebook.cell(index).locator(".jp-OutputArea-output")).to_have_text("6")
    # the panel offers the same for every edited cell
    expect(panel.root.get_by_role("group", name="Edited cells")).to_contain_text("1 cell edited by the agent")
    turn = [t for t in lab.api("GET", f"api/sessions/{session_id(lab)}/turns")["turns"] if t["code"]][-1]
    assert turn["cell"]["index"] == index and turn["cell"]["previous_source"] == BROKEN
    notebook.cell(index).scroll_into_view_if_needed()
    panel.screenshot("cell-edit")

    revert = diff.get_by_role("button", name="Revert")
    assert "cannot be undone" in revert.get_attribute("title")
    revert.click()
    expect(review(notebook, index)).to_have_count(0)
    cell = notebook.model_cells()[index]
    assert "".join(cell["source"]) == BROKEN and "dsagent" not in cell["metadata"]
    assert "NameError" in text_of(cell)
    expect(notebook.cell(index)).to_contain_text("NameError")
    expect(panel.root.get_by_role("group", name="Edited cells")).to_have_count(0)


def test_keep_removes_the_diff(panel, fake, notebook):
    index = failing_cell(notebook)
    fix_with_dsagent(panel, fake, notebook, index)
    eventually(lambda: "6" in text_of(notebook.model_cells()[index]))
    expect(review(notebook, index)).to_be_visible()
    review(notebook, index).get_by_role("button", name="Keep").click()
    expect(review(notebook, index)).to_have_count(0)
    cell = notebook.model_cells()[index]
    assert "".join(cell["source"]) == FIXED and "dsagent" not in cell["metadata"] and text_of(cell) == "6\n"


def test_a_cell_typed_in_just_before_asking_is_edited_in_place(panel, fake, lab, notebook):
    """The window tells the server its cells as the task starts: the text the user typed a moment
    before asking is what the model saw, not a change made behind its back."""
    index = failing_cell(notebook)
    typed = "total = sum(valuez) + 0\nprint(total)"
    notebook.set_source(index, typed)
    fix_with_dsagent(panel, fake, notebook, index)  # at once: no time for the window's usual report
    eventually(lambda: "6" in text_of(notebook.model_cells()[index]))
    cell = notebook.model_cells()[index]
    assert "".join(cell["source"]) == FIXED and cell["metadata"]["dsagent"]["previous_source"] == typed
    turn = [t for t in lab.api("GET", f"api/sessions/{session_id(lab)}/turns")["turns"] if t["code"]][-1]
    assert turn["cell"]["index"] == index
    review(notebook, index).get_by_role("button", name="Keep").click()
    expect(review(notebook, index)).to_have_count(0)


def test_full_mode_shows_the_change_before_it_runs_and_reject_leaves_the_cell(panel, fake, lab, notebook):
    sid = session_id(lab)
    lab.api("PUT", f"api/sessions/{sid}", {"hitl_mode": "full"})
    try:
        index = failing_cell(notebook)
        before = notebook.model_cells()[index]
        fix_with_dsagent(panel, fake, notebook, index, wait=False)
        expect(panel.hitl_card).to_contain_text(f"Replace cell [{index}] with this code and run it?", timeout=60_000)
        card_diff = panel.hitl_card.get_by_role("group", name=f"Changes to cell [{index}]")
        expect(card_diff.locator(".jp-dsagent-diff-add")).to_have_text("+ total = sum(values)")
        proposal = notebook.cell(index).get_by_role("group", name="Proposed DSAgent edit")
        expect(proposal.locator(".jp-dsagent-diff-del")).to_have_text("- total = sum(valuez)")
        expect(proposal.locator(".jp-dsagent-diff-add")).to_have_text("+ total = sum(values)")
        assert notebook.model_cells()[index] == before  # nothing has run or changed yet
        proposal.get_by_role("button", name="Reject").click()
        panel.wait_done()
        expect(proposal).to_have_count(0)
        assert notebook.model_cells()[index] == before
        expect(notebook.cell(index)).to_contain_text("NameError")
    finally:
        lab.api("PUT", f"api/sessions/{sid}", {"hitl_mode": "none"})


def test_undo_reverts_the_edit(panel, fake, notebook):
    index = failing_cell(notebook)
    fix_with_dsagent(panel, fake, notebook, index)
    eventually(lambda: "6" in text_of(notebook.model_cells()[index]))
    # "Undo cell operation" (Z in command mode), as for an edit of the user's own; the agent's answer
    # cell below is a step of its own
    for _ in range(8):
        notebook.page.evaluate("() => window.jupyterapp.commands.execute('notebook:undo-cell-action')")
        notebook.page.wait_for_timeout(300)
        if source(notebook, index) == BROKEN:
            break
    cell = notebook.model_cells()[index]
    assert "".join(cell["source"]) == BROKEN and "dsagent" not in cell["metadata"]
    expect(review(notebook, index)).to_have_count(0)


def test_a_reload_keeps_the_pending_review(panel, fake, notebook):
    index = failing_cell(notebook)
    fix_with_dsagent(panel, fake, notebook, index)
    eventually(lambda: "6" in text_of(notebook.model_cells()[index]))
    notebook.save()
    panel.reload()
    notebook.open()
    diff = review(notebook, index)
    expect(diff.locator(".jp-dsagent-diff-add")).to_have_text("+ total = sum(values)")
    expect(panel.root.get_by_role("group", name="Edited cells")).to_contain_text("edited by the agent")
    panel.root.get_by_role("group", name="Edited cells").get_by_role("button", name="Revert all").click()
    expect(review(notebook, index)).to_have_count(0)
    cell = notebook.model_cells()[index]
    assert "".join(cell["source"]) == BROKEN and "NameError" in text_of(cell)


def test_an_edit_the_server_wrote_into_the_closed_notebook_is_reviewed_when_it_opens(panel, fake, lab, notebook):
    index = failing_cell(notebook)
    notebook.save()
    notebook.close()  # the server writes the agent's work into the file from now on
    sid = session_id(lab)
    fake.script(f'<code cell="{index}">\n{FIXED}\n', "<answer>Fixed.</answer>")
    turn = lab.api("POST", f"api/sessions/{sid}/chat", {"message": f"Fix the error in cell [{index}]."})["rounds"][0]
    assert turn["cell"]["index"] == index and turn["execution_result"]["stdout"] == "6\n"
    eventually(lambda: saved_source(lab.root / notebook.path, index) == FIXED)
    notebook.open()
    diff = review(notebook, index)
    expect(diff.locator(".jp-dsagent-diff-add")).to_have_text("+ total = sum(values)")
    expect(notebook.cell(index).locator(".jp-OutputArea-output")).to_have_text("6")
    diff.get_by_role("button", name="Revert").click()
    cell = notebook.model_cells()[index]
    assert "".join(cell["source"]) == BROKEN and "NameError" in text_of(cell) and "dsagent" not in cell["metadata"]

