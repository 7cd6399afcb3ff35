"""The agent working in the notebook the user has open: its kernel, its variables, its cells; quick
actions on a cell; approval of a proposed cell in the notebook or the panel; Stop."""

from __future__ import annotations

import re
import time

import nbformat
import pytest
from notebook import Notebook, agent_cells, text_of, write_notebook
from panel import eventually
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(300)

SALES = "import pandas as pd\nsales = pd.DataFrame({'month': [1, 2, 3, 4], 'sales': [10, 30, 20, 40]})"
WORK_IN = "dsagent:work-in-notebook"


@pytest.fixture(scope="module")
def notebook(panel, lab):
    """analysis.ipynb open, its first cell run by the user, the panel working in it."""
    write_notebook(lab.root, "analysis.ipynb", [SALES])
    notebook = Notebook(panel, "analysis.ipynb").open()
    notebook.run(0)
    notebook.toolbar_button(WORK_IN).click()
    bar = panel.root.get_by_label("Attached notebook", exact=True)
    expect(bar).to_contain_text("Works in analysis.ipynb")
    return notebook


def attached_session(lab) -> dict:
    sessions = lab.api("GET", "api/sessions?notebook_path=analysis.ipynb")["sessions"]
    assert len(sessions) == 1
    return sessions[0]


def assert_prompt_has(request: dict, *words: str) -> None:
    prompt = "\n".join(str(m["content"]) for m in request["messages"])
    missing = [w for w in words if w not in prompt]
    assert not missing, f"the model's prompt lacks {missing}"


def test_agent_cells_appear_in_the_open_notebook(panel, fake, lab, notebook):
    fake.script(
        "I'll filter the user's frame.\n<code>\nbig = sales[sales.sales > 15]\nprint(len(big), 'months')\n"
        "sales.head()\n</code>",
        "<answer>Months **2, 3 and 4** sold more than 15.</answer>",
    )
    panel.send("Which months sold more than 15?")
    panel.wait_done()

    # the model saw the user's variables and the notebook itself
    assert_prompt_has(fake.requests[-2], "sales", "pd.DataFrame")
    # below the user's cell: the agent's code with its live table, then the answer
    agent = notebook.cell(1)
    expect(agent.locator(".jp-OutputArea-output table")).to_be_visible()
    expect(agent.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]:"))
    expect(notebook.cell(2)).to_contain_text("Months 2, 3 and 4 sold more than 15.")
    cells = notebook.model_cells()
    assert len(cells) == 3
    code, answer = agent_cells(cells)
    sid = attached_session(lab)["id"]
    assert code["metadata"]["dsagent"] == {"session_id": sid, "round": 1}
    assert "big = sales[sales.sales > 15]" in "".join(code["source"])
    assert "3 months" in text_of(code)
    assert any("text/html" in o.get("data", {}) for o in code["outputs"])
    assert answer["cell_type"] == "markdown" and answer["metadata"]["dsagent"]["kind"] == "answer"
    # the panel shows the same table, rendered as in a notebook
    expect(panel.root.locator(".jp-dsagent-rich-outputs table")).to_be_visible()
    panel.screenshot("10-notebook")

    # the user's frame is untouched, and what the agent defined stays in the user's kernel
    check = lab.api("POST", f"api/sessions/{sid}/kernel/execute", {"code": "print(sales.shape, len(big))"})
    assert check["stdout"].strip() == "(4, 2) 3"
    assert notebook.kernel_id() == attached_session(lab)["kernel_id"]

    # saved by the user, the cells are in the file; no "changed on disk" on the way
    notebook.save()
    panel.reload()
    notebook.open()
    expect(notebook.cell(1).locator(".jp-OutputArea-output table")).to_be_visible()
    assert [c["cell_type"] for c in notebook.model_cells()] == ["code", "code", "markdown"]
    expect(panel.page.locator(".jp-Dialog")).to_have_count(0)


def test_fix_with_dsagent_on_an_error_cell(panel, fake, notebook):
    index = notebook.append_code_cell("print(total_sales)")
    notebook.run(index)
    expect(notebook.cell(index)).to_contain_text("NameError")
    fake.script(
        "<code>\ntotal_sales = sales.sales.sum()\nprint(total_sales)\n</code>", "<answer>Defined it: 100.</answer>"
    )
    notebook.cell(index).locator(".jp-InputPrompt").click(button="right")
    panel.page.locator(".lm-Menu-item", has_text="Fix with DSAgent").click()
    expect(panel.root.locator(".jp-dsagent-user").last).to_have_text(f"Fix the error in cell [{index}].")
    panel.wait_done()
    # the model was told which cell and saw its error
    assert_prompt_has(fake.requests[-2], "NameError", "print(total_sales)", '<code cell="3">')
    # the window writes the cells from its own stream of the session's events: it may lag the panel
    eventually(lambda: "100" in text_of(notebook.model_cells()[index + 1]))
    assert notebook.model_cells()[index + 1]["metadata"]["dsagent"]["round"] == 1

    # "Explain" works on any cell, from the same menu
    notebook.cell(0).locator(".jp-InputPrompt").click(button="right")
    panel.page.locator(".lm-Menu-item", has_text="Explain with DSAgent").click()
    expect(panel.root.locator(".jp-dsagent-user").last).to_have_text("Explain cell [0].")
    panel.wait_done()
    assert_prompt_has(fake.requests[-1], "Explain cell [0].")
    assert "<code cell=" not in fake.requests[-1]["messages"][0]["content"], "Explain may not rewrite cells"
    # the answer goes right below the explained cell
    eventually(lambda: notebook.model_cells()[1]["metadata"].get("dsagent", {}).get("kind") == "answer")


@pytest.mark.parametrize("approve_in", ["cell", "panel"])
def test_full_mode_an_edited_pending_cell_runs_as_edited(approve_in, panel, fake, lab, notebook):
    """Approved from the cell's toolbar or from the panel's card, the user's edit is what runs."""
    edited = f"print('edited, approved in the {approve_in}')"
    sid = attached_session(lab)["id"]
    lab.api("PUT", f"api/sessions/{sid}", {"hitl_mode": "full"})
    try:
        fake.script("<code>\nprint('as proposed')\n</code>", "<answer>Ran your version.</answer>")
        before = len(notebook.model_cells())
        notebook.select(before - 1)
        panel.send("print a line")
        expect(panel.hitl_card).to_contain_text("Run this code?", timeout=60_000)
        expect(notebook.cell(before)).to_contain_text("print('as proposed')")
        assert notebook.model_cells()[before]["metadata"]["dsagent"]["pending"] is True
        notebook.set_source(before, edited)
        if approve_in == "cell":
            notebook.toolbar_button("dsagent:approve-cell").click()
        else:
            panel.hitl_card.get_by_role("button", name="Approve").click()
        # the panel's card follows the notebook: the next pause is the answer's
        expect(panel.hitl_card).to_contain_text("Accept this answer?", timeout=60_000)
        panel.hitl_card.get_by_role("button", name="Approve").click()
        panel.wait_done()
        ran = next(t for t in reversed(lab.api("GET", f"api/sessions/{sid}/turns?limit=200")["turns"]) if t["code"])
        assert ran["code"] == edited
        assert ran["execution_result"]["stdout"] == f"edited, approved in the {approve_in}\n"
        assert [d["action"] for d in ran["hitl"] if d["request_type"] == "code"] == ["modify"]
        eventually(lambda: f"approved in the {approve_in}\n" in text_of(notebook.model_cells()[before]))
        cell = notebook.model_cells()[before]
        assert "".join(cell["source"]) == edited
        assert "pending" not in cell["metadata"]["dsagent"]
        assert f"approved in the {approve_in}" in panel.console_text()
        expect(notebook.toolbar_button("dsagent:approve-cell")).to_be_hidden()
    finally:
        lab.api("PUT", f"api/sessions/{sid}", {"hitl_mode": "none"})


def test_stop_interrupts_the_notebook_kernel(panel, fake, lab, notebook):
    fake.script("<code>\nimport time\ntime.sleep(30)\n</code>")
    before = len(notebook.model_cells())
    notebook.select(before - 1)
    panel.send("sleep a while")
    expect(notebook.cell(before)).to_contain_text("time.sleep(30)", timeout=60_000)
    expect(panel.badges.filter(has_text="Running")).to_have_count(1)
    panel.root.get_by_label("Stop the task", exact=True).click()
    panel.wait_done(timeout=25_000)
    expect(panel.root.locator(".jp-dsagent-notice")).to_have_text("Task cancelled by user.")
    # the notebook's kernel was interrupted (idle long before the 30 s), and lives on with the user's data
    notebook.wait_kernel_idle(timeout=20_000)
    assert "".join(notebook.model_cells()[before]["source"]) == "import time\ntime.sleep(30)"
    sid = attached_session(lab)["id"]
    check = lab.api("POST", f"api/sessions/{sid}/kernel/execute", {"code": "print(sales.shape)"})
    assert check["stdout"].strip() == "(4, 2)"


def test_undo_removes_the_agents_cells(panel, fake, notebook):
    fake.script("<code>\nprint('undo me')\n</code>", "<answer>Undo me too.</answer>")
    user_cells = [c["source"] for c in notebook.model_cells()]
    notebook.select(len(user_cells) - 1)
    panel.send("something to undo")
    panel.wait_done()
    eventually(lambda: len(notebook.model_cells()) == len(user_cells) + 2)
    # "Undo cell operation" (Z in command mode), as for the user's own inserted cells: JupyterLab groups
    # the edits of a moment into one undo step, so the agent's cells may take a few (one per cell)
    for _ in range(6):
        notebook.page.evaluate("() => window.jupyterapp.commands.execute('notebook:undo-cell-action')")
        notebook.page.wait_for_timeout(300)
        if [c["source"] for c in notebook.model_cells()] == user_cells:
            break
    assert [c["source"] for c in notebook.model_cells()] == user_cells


def test_one_writer_with_two_windows_and_a_closed_tab(panel, browser, fake, lab, notebook):
    from panel import Panel

    # a second window on the same notebook watches: the first holds the claim and writes the cells
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        second = Panel(context.new_page(), lab.url, lab.token, panel.shots)
        second.load()
        watcher = Notebook(second, notebook.path).open()
        fake.script("<code>\nprint('written once')\n</code>", "<answer>Once.</answer>")
        notebook.select(len(notebook.model_cells()) - 1)
        panel.send("print once")
        panel.wait_done()
        eventually(lambda: sum("written once" in text_of(c) for c in notebook.model_cells()) == 1)
        second.page.wait_for_timeout(2000)  # time for a wrongly writing second window to show itself
        assert not any("written once" in "".join(c["source"]) for c in watcher.model_cells())
        assert "written once" not in (lab.root / notebook.path).read_text()  # nor the server: a window writes
    finally:
        context.close()

    # the notebook's tab closes mid-task: the server appends what comes next to the file
    notebook.save()
    fake.script(
        "<code>\nimport time\ntime.sleep(3)\nprint('first half')\n</code>",
        "<code>\nprint('second half')\n</code>",
        "<answer>Both halves ran.</answer>",
    )
    notebook.select(len(notebook.model_cells()) - 1)
    panel.send("two halves")
    eventually(lambda: any("time.sleep(3)" in "".join(c["source"]) for c in notebook.model_cells()), timeout=60)
    panel.close_main_area()
    panel.wait_done()
    path = lab.root / notebook.path

    def saved() -> dict:
        # the server may be rewriting the file at this moment (in place): read until it parses
        for _ in range(50):
            try:
                return nbformat.reads(path.read_text(), as_version=4)
            except nbformat.reader.NotJSONError:
                time.sleep(0.1)
        raise AssertionError("the notebook file never parsed")

    eventually(lambda: any("Both halves ran." in c.source for c in saved().cells))
    nbformat.validate(saved())
    sources = [c.source for c in saved().cells]
    assert sum("time.sleep(3)" in s for s in sources) == 1  # the cell under way when the tab closed
    assert sum("print('second half')" in s for s in sources) == 1
    assert sum("Both halves ran." in s for s in sources) == 1
    assert "second half" in text_of(next(c for c in saved().cells if "print('second half')" in c.source))
    notebook.open()  # reopened: the file as the server left it, no "changed on disk"
    expect(panel.page.locator(".jp-Dialog")).to_have_count(0)


def test_a_vision_model_sees_the_active_cells_chart(panel, fake, lab, notebook):
    sid = attached_session(lab)["id"]
    lab.api("PUT", f"api/sessions/{sid}", {"model": "gpt-4o"})  # litellm knows it accepts images
    try:
        index = notebook.append_code_cell("import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.show()")
        notebook.run(index)
        expect(notebook.cell(index).locator(".jp-OutputArea-output img")).to_be_visible()
        fake.script("<answer>A line that falls, then rises.</answer>")
        notebook.cell(index).locator(".jp-InputPrompt").click(button="right")
        panel.page.locator(".lm-Menu-item", has_text="Explain with DSAgent").click()
        expect(panel.root.locator(".jp-dsagent-user").last).to_have_text(f"Explain cell [{index}].")
        panel.wait_done()
        # the panel sent the active cell's image with the live notebook; it went to the model with the message
        task = fake.requests[-1]["messages"][-1]
        assert isinstance(task["content"], list), task["content"]
        assert [p["type"] for p in task["content"]] == ["text", "image_url"]
        assert f"notebook cell(s) [{index}]" in task["content"][0]["text"]
        expect(panel.root.locator(".jp-dsagent-seen").last).to_have_text("The model looked at the figure")
    finally:
        lab.api("PUT", f"api/sessions/{sid}", {"model": "scripted"})


# last: the notebook works without its session from here on
def test_detach_and_switching_notebooks(panel, lab, notebook):
    write_notebook(lab.root, "other.ipynb", ["x = 1"])
    other = Notebook(panel, "other.ipynb").open()
    offer = panel.root.get_by_role("status").filter(has_text="No DSAgent session works in")
    expect(offer).to_contain_text("No DSAgent session works in other.ipynb")
    # back on analysis.ipynb: its session again
    notebook.open()
    expect(panel.root.get_by_label("Attached notebook", exact=True)).to_contain_text("analysis.ipynb")
    panel.root.get_by_label("Detach from notebook", exact=True).click()
    expect(panel.root.get_by_label("Attached notebook", exact=True)).to_have_count(0)
    eventually(lambda: lab.api("GET", "api/sessions?notebook_path=analysis.ipynb")["sessions"] == [])
    assert other.path == "other.ipynb"
