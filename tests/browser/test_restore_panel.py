"""The panel on a session whose kernel is new: it says so, and its Restore kernel button brings the
history's variables back, showing the progress; a restore started elsewhere shows live too."""

from __future__ import annotations

import threading

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)


def test_restore_kernel_button(panel, fake, lab):
    panel.new_session("Come back tomorrow")
    fake.script("<code>\nrevenue = [5, 7]\nprint(sum(revenue))", "<answer>12")
    panel.send("load the revenue")
    panel.wait_done()
    bar = panel.root.locator(".jp-dsagent-kernel-bar")
    expect(bar).to_have_count(0)  # the kernel is the history's own

    # the kernel goes away (a cull, a user in JupyterLab), and the user comes back to the page
    auth = {"Authorization": f"token {lab.token}"}
    (kernel,) = httpx.get(f"{lab.url}api/kernels", headers=auth).json()
    httpx.delete(f"{lab.url}api/kernels/{kernel['id']}", headers=auth).raise_for_status()
    panel.reload()
    panel.open()
    expect(bar).to_contain_text("The kernel is new")
    panel.screenshot("restore-01-kernel-is-new")

    bar.get_by_role("button", name="Restore kernel").click()
    restored = panel.root.locator(".jp-dsagent-transcript .jp-dsagent-restore")
    expect(restored).to_have_text("Kernel restored: 1 of 1 cell(s) replayed.", timeout=60_000)
    expect(bar).to_have_count(0)
    panel.screenshot("restore-02-restored")
    sid = httpx.get(f"{lab.url}dsagent/api/sessions", headers=auth).json()["sessions"][0]["id"]
    state = httpx.get(f"{lab.url}dsagent/api/sessions/{sid}/kernel", headers=auth, timeout=60).json()
    assert [v["name"] for v in state["variables"]] == ["revenue"] and not state["is_new"]

    # the restore stays in the history after a reload, as one line
    panel.reload()
    panel.open()
    expect(restored).to_have_text("Kernel restored: 1 of 1 cell(s) replayed.")


HOLD = "import os, time\nwhile os.path.exists('data/hold'):\n    time.sleep(0.1)\nprices = [3, 4]"


def test_restore_started_elsewhere_shows_live(panel, fake, lab):
    """A restore started over the REST API (or from another window) shows in the open panel as it runs,
    without a reload, and the kernel bar follows it."""
    panel.new_session("Restored elsewhere")
    fake.script(f"<code>\n{HOLD}", "<answer>loaded")
    panel.send("load the prices")
    panel.wait_done()
    auth = {"Authorization": f"token {lab.token}"}
    sid = next(s["id"] for s in lab.api("GET", "api/sessions")["sessions"] if s["name"] == "Restored elsewhere")
    kernel = lab.api("GET", f"api/sessions/{sid}")["kernel_id"]
    httpx.delete(f"{lab.url}api/kernels/{kernel}", headers=auth).raise_for_status()
    hold = lab.root / "dsagent" / "sessions" / sid / "data" / "hold"
    hold.touch()  # the replayed cell waits until the test lets it go

    frames: list[str] = []

    def restore_over_rest() -> None:
        url = f"{lab.url}dsagent/api/sessions/{sid}/kernel/restore"
        with httpx.stream("POST", url, headers=auth, timeout=120) as r:
            frames.extend(line for line in r.iter_lines() if line.startswith("data:"))

    elsewhere = threading.Thread(target=restore_over_rest)
    elsewhere.start()
    try:
        bar = panel.root.locator(".jp-dsagent-kernel-bar")
        expect(bar).to_contain_text("Restoring the kernel: cell 1 of 1", timeout=30_000)
        panel.screenshot("restore-03-started-elsewhere")
    finally:
        hold.unlink()
        elsewhere.join(120)
    restored = panel.root.locator(".jp-dsagent-transcript .jp-dsagent-restore")
    expect(restored.last).to_have_text("Kernel restored: 1 of 1 cell(s) replayed.", timeout=60_000)
    expect(bar).to_have_count(0)
    assert frames and '"completed"' in frames[-1]
    # the panel goes on as before: the next task runs in the restored kernel
    fake.script("<code>\nprint(sum(prices))", "<answer>7")
    panel.send("sum them")
    panel.wait_done()
    expect(panel.answer.last).to_have_text("7")
