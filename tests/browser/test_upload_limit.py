"""A file over the upload limit dropped on the panel: the user reads the server's reason, not a
network error (the server answers before reading the body, and must not reset the connection)."""

from __future__ import annotations

import pytest
from panel import eventually
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)

LIMIT_MB = 1
DROPPED_MB = 60


@pytest.fixture(scope="module")
def lab_args() -> list[str]:
    return [f"--DSAgent.max_upload_mb={LIMIT_MB}"]


def drop(panel, name: str, megabytes: float) -> None:
    panel.page.evaluate(
        """([name, size]) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(size).fill(44)], name, {type: 'text/csv'}));
            const chat = document.querySelector('#dsagent-sidebar .jp-dsagent-chat');
            chat.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        [name, int(megabytes * 1024 * 1024)],
    )


def test_dropping_a_file_over_the_limit_shows_why(panel, lab):
    panel.new_session("Too big")
    sid = next(s["id"] for s in lab.api("GET", "api/sessions")["sessions"] if s["name"] == "Too big")
    drop(panel, "huge.csv", DROPPED_MB)
    banner = panel.root.locator(".jp-dsagent-banner")
    expect(banner).to_contain_text(f"File huge.csv exceeds max size ({LIMIT_MB} MB)")
    panel.screenshot("12-upload-over-limit")
    assert lab.api("GET", f"api/sessions/{sid}/files?category=data")["files"] == []
    # the panel goes on working: a file under the limit is uploaded
    panel.root.get_by_label("Dismiss error", exact=True).click()
    drop(panel, "small.csv", 0.1)
    eventually(lambda: [f["name"] for f in lab.api("GET", f"api/sessions/{sid}/files?category=data")["files"]] == ["small.csv"])
    expect(banner).to_have_count(0)
