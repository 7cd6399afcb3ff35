"""The sidebar in a real browser: sessions, a streamed task with plan, code, plot and answer, human
in the loop, stop, and a reload in the middle of a task."""

from __future__ import annotations

import json
import re

import pytest
from fake_llm import FakeReply
from panel import eventually
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)

CSV = "month,sales\n1,10\n2,30\n3,20\n"

TASK = [
    "<intent>complex</intent>I'll load **sales.csv**, plot it and summarise.\n"
    "<plan>\n1. [ ] Load data\n2. [ ] Plot the trend\n3. [ ] Summarise\n</plan>\n"
    "<code>\nimport pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(df.shape)\n</code>",
    FakeReply(
        text="Loaded. Now the plot.\n<plan>\n1. [x] Load data\n2. [ ] Plot the trend\n3. [ ] Summarise\n</plan>\n"
        "<code>\nimport time\nimport matplotlib.pyplot as plt\ntime.sleep(2)\nfig, ax = plt.subplots(figsize=(5, 3))\n"
        "ax.plot(df.month, df.sales, marker='o')\nax.set_title('Monthly sales')\n"
        "fig.savefig('artifacts/trend.png')\nplt.show()\n</code>",
        chunk_delay=0.02,
    ),
    "<plan>\n1. [x] Load data\n2. [x] Plot the trend\n3. [ ] Summarise\n</plan>\n<code>\nprint(df.sales.sum())\n</code>",
    "<plan>\n1. [x] Load data\n2. [x] Plot the trend\n3. [x] Summarise\n</plan>\n"
    "<answer>Sales peaked in **month 2**; the total is 60.",
]

PLAN = "<intent>complex</intent>Two steps.<plan>\n1. [ ] Compute\n2. [ ] Report\n</plan><code>x = 6 * 7\nprint(x)"
DONE = "<plan>\n1. [x] Compute\n2. [x] Report\n</plan><answer>x is 42"


def session_id(lab, name: str) -> str:
    return next(s["id"] for s in lab.api("GET", "api/sessions")["sessions"] if s["name"] == name)


def expect_asks_as_the_server(card, lab, name: str, request_type: str) -> None:
    """The card's question is the server's ``hitl_request.message``, not a fixed text of the panel."""
    message = lab.hitl_request(session_id(lab, name), request_type)["message"]
    assert message
    expect(card.locator(".jp-dsagent-hitl-title")).to_have_text(message)


def test_session_upload_and_three_round_task(panel, fake, lab, tmp_path):
    panel.new_session("Sales analysis")
    csv = tmp_path / "sales.csv"
    csv.write_text(CSV)
    files = panel.root.get_by_label("Files", exact=True)
    files.locator("summary").click(position={"x": 8, "y": 8})
    panel.root.locator('[data-testid="dsagent-upload-input"]').set_input_files(str(csv))
    expect(files.get_by_label("Data files", exact=True).get_by_text("sales.csv")).to_be_visible()

    fake.script(*TASK)
    panel.send("Analyse data/sales.csv and plot the monthly trend")
    # mid-task: the plan advanced, round 2's cell is running
    expect(panel.badges.filter(has_text="Running")).to_have_count(1, timeout=60_000)
    expect(panel.plan_summary).to_have_text("Plan · 1/3 steps")
    expect(panel.root.get_by_label("Stop the task", exact=True)).to_be_visible()
    expect(panel.message_box).to_be_disabled()
    panel.screenshot("01-task-running")

    panel.wait_done()
    expect(panel.plan_summary).to_have_text("Plan · 3/3 steps")
    expect(panel.root.locator(".jp-dsagent-progress")).to_have_attribute("aria-valuenow", "100")
    expect(panel.badges).to_have_count(3)
    expect(panel.badges.filter(has_text="Success")).to_have_count(3)
    expect(panel.badges.first).to_contain_text(re.compile(r"\d+(\.\d)? (ms|s)"))
    assert "(3, 2)" in panel.console_text() and "60" in panel.console_text()
    image = panel.root.locator(".jp-dsagent-images img")
    expect(image).to_have_count(1)
    assert image.evaluate("img => img.naturalWidth") > 100
    expect(panel.answer).to_contain_text("Sales peaked in month 2; the total is 60.")
    expect(panel.answer.locator("strong")).to_have_text("month 2")  # markdown, rendered
    # raw protocol tags never show
    transcript = panel.root.locator(".jp-dsagent-transcript").inner_text()
    assert "<plan>" not in transcript and "<code>" not in transcript and "[x]" not in transcript
    expect(panel.root.locator(".jp-dsagent-usage").last).to_contain_text(re.compile(r"Session: [\d,]+ tokens"))
    # the saved figure is listed as an artifact with a preview
    artifacts = files.get_by_label("Artifacts", exact=True)
    expect(artifacts.get_by_text("trend.png")).to_be_visible()
    expect(artifacts.locator("img.jp-dsagent-thumbnail")).to_be_visible()
    panel.screenshot("02-task-done")

    # artifacts open in JupyterLab too
    artifacts.get_by_label("Open trend.png", exact=True).click()
    expect(panel.page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")).to_contain_text("trend.png")

    # a figure enlarges in a dialog
    image.click()
    dialog = panel.page.locator(".jp-Dialog")
    expect(dialog.locator("img.jp-dsagent-image-large")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()

    # the session notebook opens in a notebook tab
    sid = session_id(lab, "Sales analysis")
    panel.root.get_by_label("Open notebook", exact=True).click()
    expect(panel.page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=60_000)
    expect(panel.page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")).to_contain_text(f"{sid}.ipynb")
    panel.screenshot("03-notebook-open")
    panel.close_main_area()


def test_refused_and_failed_tasks_show_a_banner(panel, fake):
    panel.new_session("Errors")
    # the server refuses a task whose model has no key (its 400 is tested in test_chat.py; the
    # scripted model needs no key, so the refusal is played back here)
    refusal = "No API key for model gpt-4o: set OPENAI_API_KEY on the server or pick another model"
    route = "**/dsagent/api/sessions/*/chat/stream*"
    panel.page.route(
        route, lambda r: r.fulfill(status=400, content_type="application/json", body=json.dumps({"detail": refusal}))
    )
    try:
        panel.send("hello")
        banner = panel.root.locator(".jp-dsagent-banner")
        expect(banner).to_contain_text(refusal)
        expect(panel.message_box).to_be_enabled()
        panel.screenshot("04-error-banner")
    finally:
        panel.page.unroute(route)
    panel.root.get_by_label("Dismiss error", exact=True).click()
    expect(banner).to_have_count(0)
    # a model that keeps failing ends the task with an error event
    fake.script(*[FakeReply(status=500, text="down")] * 8)
    fake.default = ""
    panel.send("try again")
    expect(banner).to_contain_text("500", timeout=60_000)
    panel.wait_done()


def test_plan_only_approved_with_the_button(panel, fake, lab):
    fake.script(PLAN, DONE)
    panel.new_session("Plan approval", mode="plan_only")
    panel.send("compute x")
    card = panel.hitl_card
    expect(card).to_be_visible(timeout=60_000)
    expect_asks_as_the_server(card, lab, "Plan approval", "plan")
    expect(card.locator(".jp-dsagent-plan-steps li")).to_have_text(["Compute", "Report"])
    expect(panel.badges).to_have_count(0)  # nothing ran yet
    panel.screenshot("05-plan-approval")
    card.get_by_role("button", name="Approve").click()
    panel.wait_done()
    expect(card).to_have_count(0)
    expect(panel.answer).to_contain_text("x is 42")
    assert "42" in panel.console_text()
    expect(panel.root.locator(".jp-dsagent-decision").first).to_contain_text("plan approve")


def test_full_mode_edit_and_modify_code(panel, fake):
    fake.script("<code>print('original')", "<answer>ran the edited code")
    panel.new_session("Edit code", mode="full")
    panel.send("print something")
    card = panel.hitl_card
    expect(card).to_contain_text("Run this code?", timeout=60_000)
    card.get_by_role("button", name="Edit").click()
    editor = card.get_by_label("Edited code", exact=True)
    expect(editor).to_have_value("print('original')")
    editor.fill("print('edited')")
    panel.screenshot("06-edit-code")
    card.get_by_role("button", name="Send edit").click()
    # full mode pauses again before the answer
    expect(card).to_contain_text("Accept this answer?", timeout=60_000)
    card.get_by_role("button", name="Approve").click()
    panel.wait_done()
    assert "edited" in panel.console_text() and "original" not in panel.console_text()
    expect(panel.answer).to_contain_text("ran the edited code")


def test_failed_code_asks_in_the_servers_words(panel, fake, lab):
    fake.script("<code>print(undefined_total)", "<answer>Skipped the failing step.")
    panel.new_session("Ask on error", mode="on_error")
    panel.send("print the total")
    card = panel.hitl_card
    expect(card).to_be_visible(timeout=60_000)
    expect_asks_as_the_server(card, lab, "Ask on error", "error")
    expect(card).to_contain_text("NameError")
    card.get_by_role("button", name="Skip").click()
    panel.wait_done()
    expect(card).to_have_count(0)
    expect(panel.answer).to_contain_text("Skipped the failing step.")


def test_stop_a_running_task(panel, fake):
    fake.script("<code>import time\nfor i in range(600):\n    time.sleep(0.1)")
    panel.new_session("Stop me")
    panel.send("wait a minute")
    expect(panel.badges.filter(has_text="Running")).to_have_count(1, timeout=60_000)
    panel.root.get_by_label("Stop the task", exact=True).click()
    panel.wait_done(timeout=60_000)
    expect(panel.root.locator(".jp-dsagent-notice")).to_have_text("Task cancelled by user.")
    expect(panel.badges.filter(has_text="Running")).to_have_count(0)
    panel.screenshot("07-stopped")


def test_reload_mid_task_resumes(panel, fake, lab):
    fake.script(
        "<plan>\n1. [ ] a\n2. [ ] b\n</plan><code>print('first')",
        "<plan>\n1. [x] a\n2. [ ] b\n</plan><code>import time\ntime.sleep(8)\nprint('second')",
        "<plan>\n1. [x] a\n2. [x] b\n</plan><answer>both ran",
    )
    panel.new_session("Reload me")
    panel.send("two steps please")
    expect(panel.badges.filter(has_text="Running")).to_have_count(1, timeout=60_000)
    expect(panel.badges.filter(has_text="Success")).to_have_count(1)

    panel.reload()
    panel.open()
    # history from /turns (round 1), then the running round from the resumed stream
    expect(panel.root.locator(".jp-dsagent-title")).to_have_text("Reload me")
    expect(panel.root.locator(".jp-dsagent-user")).to_have_text(["two steps please"])
    expect(panel.message_box).to_be_disabled()
    panel.screenshot("08-reloaded-mid-task")
    panel.wait_done()
    expect(panel.badges.filter(has_text="Success")).to_have_count(2)
    assert "first" in panel.console_text() and "second" in panel.console_text()
    expect(panel.answer).to_have_count(1)
    expect(panel.answer).to_contain_text("both ran")
    expect(panel.plan_summary).to_have_text("Plan · 2/2 steps")


def test_pending_approval_survives_reload(panel, fake, lab):
    fake.script(PLAN, DONE)
    panel.new_session("Approve after reload", mode="plan_only")
    panel.send("compute x")
    expect(panel.hitl_card).to_be_visible(timeout=60_000)
    panel.reload()
    panel.open()
    expect(panel.hitl_card).to_be_visible(timeout=60_000)
    expect_asks_as_the_server(panel.hitl_card, lab, "Approve after reload", "plan")
    panel.hitl_card.get_by_role("button", name="Approve").click()
    panel.wait_done()
    expect(panel.answer).to_contain_text("x is 42")


def test_session_list_rename_archive_delete(panel, lab, tmp_path):
    panel.new_session("Keep me")
    # pickers change the session at runtime
    panel.root.locator(".jp-dsagent-settings").get_by_label("Human in the loop", exact=True).select_option("full")
    model = panel.root.locator(".jp-dsagent-settings").get_by_label("Model", exact=True)
    model.fill("openai/other")
    model.press("Enter")
    sid = session_id(lab, "Keep me")
    stored = lambda: lab.api("GET", f"api/sessions/{sid}")  # noqa: E731
    eventually(lambda: stored()["hitl_mode"] == "full" and stored()["model"] == "openai/other")
    # a file dropped on the panel is uploaded to data/
    panel.page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(['a,b\\n1,2\\n'], 'dropped.csv', {type: 'text/csv'}));
            const chat = document.querySelector('#dsagent-sidebar .jp-dsagent-chat');
            chat.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    data = lambda: lab.api("GET", f"api/sessions/{sid}/files?category=data")["files"]  # noqa: E731
    eventually(lambda: [f["name"] for f in data()] == ["dropped.csv"])
    panel.back_to_sessions()
    sessions = panel.root.get_by_label("Sessions", exact=True)
    row = sessions.locator("li", has_text="Keep me")
    expect(row).to_contain_text("active")
    row.get_by_label("Rename session Keep me", exact=True).click()
    dialog = panel.page.locator(".jp-Dialog")
    dialog.locator("input").fill("Renamed")
    dialog.get_by_role("button", name="Ok").click()
    row = sessions.locator("li", has_text="Renamed")
    expect(row).to_be_visible()
    row.get_by_label("Archive session Renamed", exact=True).click()
    expect(row).to_contain_text("archived")
    panel.screenshot("09-session-list")
    row.get_by_label("Delete session Renamed", exact=True).click()
    panel.page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    expect(sessions.locator("li", has_text="Renamed")).to_have_count(0)
    assert "Renamed" not in [s["name"] for s in lab.api("GET", "api/sessions")["sessions"]]


def test_rich_outputs_render_as_in_a_notebook(panel, fake):
    fake.script(
        "<code>\nimport pandas as pd\nfrom IPython.display import Markdown, display\n"
        "display(Markdown('Total: **60**'))\nprint('shown as text')\n"
        "pd.DataFrame({'month': [1, 2, 3], 'sales': [10, 30, 20]})\n</code>",
        "<answer>A table.",
    )
    panel.new_session("Rich outputs")
    panel.send("show the table")
    panel.wait_done()
    rich = panel.root.locator(".jp-dsagent-transcript .jp-dsagent-rich-outputs")
    # the DataFrame as a table and the markdown rendered, by JupyterLab's own renderers
    expect(rich.locator("table tbody tr")).to_have_count(3)
    expect(rich.locator("table th", has_text="sales")).to_be_visible()
    expect(rich.locator(".jp-RenderedMarkdown strong")).to_have_text("60")
    # text stays in the console, without the table's plain-text copy
    text = panel.console_text()
    assert "shown as text" in text and "month  sales" not in text
    panel.screenshot("11-rich-outputs")
    # leaving the session takes its rendered outputs down with it, and the panel goes on
    panel.back_to_sessions()
    expect(panel.root.get_by_label("Sessions", exact=True).locator("li", has_text="Rich outputs")).to_be_visible()


def test_the_round_shows_the_model_saw_the_figure(panel, fake, lab):
    fake.script(
        "<code>\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\n</code>",
        "<answer>The line rises, then falls.",
    )
    panel.new_session("Vision")
    lab.api("PUT", f"api/sessions/{session_id(lab, 'Vision')}", {"model": "gpt-4o"})  # litellm knows it accepts images
    panel.send("plot it and tell me what you see")
    panel.wait_done()
    seen = panel.root.locator(".jp-dsagent-transcript .jp-dsagent-seen")
    expect(seen).to_have_count(1)
    expect(panel.root.locator('.jp-dsagent-round[data-round="2"] .jp-dsagent-seen')).to_have_text(
        "The model looked at the figure"
    )
    assert isinstance(fake.requests[-1]["messages"][-1]["content"], list)  # the image went with the request
    panel.reload()  # from /turns, the same
    panel.open()
    expect(panel.root.locator(".jp-dsagent-title")).to_have_text("Vision")
    expect(panel.root.locator('.jp-dsagent-round[data-round="2"] .jp-dsagent-seen')).to_have_count(1)
    panel.screenshot("12-model-saw-the-figure")
