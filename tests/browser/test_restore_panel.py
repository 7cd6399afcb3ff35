"""The panel on a session whose kernel is new: it says so, and its Restore kernel button brings the
history's variables back, showing the progress."""

from __future__ import annotations

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
