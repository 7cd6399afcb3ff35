"""The DSAgent sidebar as the tests drive it: a thin page object over Playwright's sync API."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


class Panel:
    def __init__(self, page: Page, lab_url: str, token: str, shots: Path) -> None:
        self.page = page
        self.lab_url = lab_url
        self.token = token
        self.shots = shots
        self.root = page.locator("#dsagent-sidebar")
        self.requests: list[str] = []  # every URL the page asked for
        self.page_errors: list[str] = []  # uncaught errors of the page

    # --- JupyterLab -------------------------------------------------------------------------------

    def load(self, reset: bool = False) -> None:
        """Open JupyterLab (logging in with the token) and wait until it is usable."""
        query = f"reset&token={self.token}" if reset else f"token={self.token}"
        self.page.goto(f"{self.lab_url}lab?{query}")
        self.wait_for_lab()

    def reload(self) -> None:
        self.page.reload()
        self.wait_for_lab()

    def wait_for_lab(self) -> None:
        expect(self.page.locator("#jupyterlab-splash")).to_have_count(0, timeout=60_000)
        expect(self.tab).to_be_visible(timeout=30_000)

    @property
    def tab(self) -> Locator:
        return self.page.locator('.lm-TabBar-tab[data-id="dsagent-sidebar"]')

    def open(self) -> Panel:
        """Show the sidebar (through the shell: its tab toggles, and a restored layout may race a click)."""
        self.page.evaluate("id => window.jupyterapp.shell.activateById(id)", "dsagent-sidebar")
        expect(self.root).to_be_visible()
        self.widen()
        return self

    def widen(self, width: int = 440) -> None:
        """Drag the sidebar's split handle so the panel is as wide as a user would make it."""
        box = self.root.bounding_box()
        if box is None or box["width"] >= width - 5:
            return
        handle = self.page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
        grip = handle.bounding_box()
        assert grip is not None
        x, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x - (width - box["width"]), y, steps=5)
        self.page.mouse.up()

    def close_main_area(self) -> None:
        """Close the open documents without "save changes?" dialogs (the tests never edit them)."""
        self.page.evaluate("() => [...window.jupyterapp.shell.widgets('main')].forEach(w => w.dispose())")

    def screenshot(self, name: str) -> None:
        """Save the page in the light and the dark theme."""
        for theme, label in THEMES.items():
            self.set_theme(label)
            self.page.screenshot(path=self.shots / f"{name}-{theme}.png")
        self.set_theme(THEMES["light"])

    def set_theme(self, label: str) -> None:
        self.page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", label)
        expect(self.page.locator("body")).to_have_attribute("data-jp-theme-name", label, timeout=15_000)
        self.page.wait_for_timeout(300)  # let the new theme's CSS settle before the picture

    # --- sessions -----------------------------------------------------------------------------------

    def back_to_sessions(self) -> None:
        back = self.root.get_by_label("Back to sessions", exact=True)
        if back.is_visible():
            back.click()
        expect(self.root.get_by_label("New session", exact=True)).to_be_visible()

    def new_session(self, name: str, mode: str = "none", model: str = "") -> None:
        self.back_to_sessions()
        form = self.root.get_by_label("New session", exact=True)
        form.get_by_label("Session name", exact=True).fill(name)
        if model:
            form.get_by_label("Model", exact=True).fill(model)
        form.get_by_label("Human in the loop", exact=True).select_option(mode)
        form.get_by_label("Create session", exact=True).click()
        expect(self.root.locator(".jp-dsagent-title")).to_have_text(name)

    # --- chat ---------------------------------------------------------------------------------------

    @property
    def message_box(self) -> Locator:
        return self.root.get_by_label("Message to the agent", exact=True)

    def send(self, message: str) -> None:
        self.message_box.fill(message)
        self.message_box.press("Enter")
        expect(self.root.locator(".jp-dsagent-user").last).to_have_text(message)

    def wait_done(self, timeout: float = 90_000) -> None:
        """The task ended: the input is enabled again."""
        expect(self.message_box).to_be_enabled(timeout=timeout)

    @property
    def badges(self) -> Locator:
        return self.root.locator(".jp-dsagent-transcript .jp-dsagent-badge")

    @property
    def plan_summary(self) -> Locator:
        return self.root.locator(".jp-dsagent-chat > .jp-dsagent-plan summary")

    @property
    def hitl_card(self) -> Locator:
        return self.root.get_by_role("region", name="Approval needed")

    @property
    def answer(self) -> Locator:
        return self.root.locator(".jp-dsagent-transcript .jp-dsagent-answer")

    def console_text(self) -> str:
        return "\n".join(self.root.locator(".jp-dsagent-transcript .jp-dsagent-console").all_inner_texts())


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    """Wait until ``check()`` holds, for server state the page changes asynchronously; a lookup that
    fails (the cell or key is not there yet) is a check that does not hold yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except LookupError:
            if time.monotonic() >= deadline:
                raise
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)
