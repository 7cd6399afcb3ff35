"""The panel under a non-root base URL, as JupyterHub serves a single-user server (``/user/<name>/``):
every request carries the prefix, and token + XSRF still authenticate the POSTs and the stream."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)

BASE_URL = "/user/alice/"


@pytest.fixture(scope="module")
def base_url() -> str:
    return BASE_URL


def test_task_under_base_url(panel, fake, lab):
    fake.script(
        "Plotting.<plan>\n1. [ ] Plot\n</plan><code>import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
        "<plan>\n1. [x] Plot\n</plan><answer>Plotted under a prefix.",
    )
    panel.new_session("Hub user")
    panel.send("plot three points")
    panel.wait_done()
    expect(panel.badges.filter(has_text="Success")).to_have_count(1)
    expect(panel.root.locator(".jp-dsagent-images img")).to_have_count(1)
    expect(panel.answer).to_contain_text("Plotted under a prefix.")
    expect(panel.plan_summary).to_have_text("Plan · 1/1 steps")
    panel.screenshot("10-base-url")
    calls = [url for url in panel.requests if "/dsagent/" in url]
    assert any(url.split("?")[0].endswith("/chat/stream") for url in calls)
    assert calls and all(url.startswith(f"{lab.url}dsagent/") for url in calls), calls
    assert lab.url.endswith(BASE_URL)


def test_reload_follows_a_running_task_under_base_url(panel, fake, lab):
    fake.script("<code>import time\ntime.sleep(3)\nprint('slow')", "<answer>finished")
    panel.new_session("Hub reload")
    panel.send("take your time")
    expect(panel.badges.filter(has_text="Running")).to_have_count(1, timeout=60_000)
    session = next(s for s in lab.api("GET", "api/sessions")["sessions"] if s["name"] == "Hub reload")
    assert session["running_task"] == {"message": "take your time", "completed_rounds": 0}
    panel.reload()
    panel.open()
    expect(panel.root.locator(".jp-dsagent-user")).to_have_text(["take your time"])
    panel.wait_done()
    expect(panel.answer).to_contain_text("finished")
    assert "slow" in panel.console_text()
    assert lab.api("GET", f"api/sessions/{session['id']}")["running_task"] is None
