"""Browser tests: Debian's chromium driven by Playwright against a real ``jupyter lab``.

One server (and one browser page) per module keeps the suite fast; every test makes its own session.
Screenshots go to ``$DSAGENT_SCREENSHOTS`` (default: a temp folder), printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("DSAGENT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
PANEL_BUILD = Path(__file__).parents[2] / "dsagent_ext" / "labextension" / "package.json"


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """No asyncio loop here: Playwright's sync API runs its own, and pytest-jupyter's would clash."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """These tests run their own ``jupyter lab`` process, not pytest-jupyter's in-process server."""
    yield


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("DSAGENT_SCREENSHOTS") or tempfile.mkdtemp(prefix="dsagent-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("FAILED-*.png"):
        stale.unlink()
    return folder


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    folder = getattr(config, "_dsagent_screenshots", None)
    if folder:
        terminalreporter.write_line(f"DSAgent panel screenshots: {folder}")


@pytest.fixture(scope="module")
def browser(screenshots, pytestconfig):
    """Chromium for one module: Playwright's sync API keeps an asyncio loop running in this thread
    while it is open, which would break the async tests that run after the browser modules."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}: apt-get install chromium (scripts/test does)")
    if not PANEL_BUILD.exists():
        pytest.skip("the panel is not built: jlpm --cwd labextension install && jlpm --cwd labextension build")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    # generous waits: CI machines are small, and the first task of a server imports litellm (seconds)
    sync_api.expect.set_options(timeout=20_000)
    pytestconfig._dsagent_screenshots = screenshots
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def fake():
    from fake_llm import FakeLLM

    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def base_url() -> str:
    return "/"


@pytest.fixture(scope="module")
def lab_args() -> list[str]:
    """More ``jupyter lab`` options for one module's server; a module overrides it."""
    return []


@pytest.fixture(scope="module")
def lab(fake, base_url, lab_args, tmp_path_factory):
    from lab import JupyterLab

    server = JupyterLab(tmp_path_factory.mktemp("lab"), fake.api_base, base_url, lab_args).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def panel(browser, lab, screenshots):
    """The JupyterLab page with the sidebar open; shared by the tests of a module."""
    from panel import Panel

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    panel = Panel(page, lab.url, lab.token, screenshots)
    panel.requests = requests
    page.on("pageerror", lambda error: panel.page_errors.append(str(error)))
    panel.load(reset=True)
    panel.open()
    yield panel
    context.close()


@pytest.fixture(autouse=True)
def _fresh_script(request):
    """Each test scripts its own model replies."""
    if "fake" in request.fixturenames:
        fake = request.getfixturevalue("fake")
        fake._replies.clear()
        fake.default = "<answer>done</answer>"
    yield


@pytest.fixture(autouse=True)
def _no_page_errors(request):
    """An uncaught error in the page fails the test that caused it: it may have taken the panel down."""
    if "panel" not in request.fixturenames:
        yield
        return
    panel = request.getfixturevalue("panel")
    seen = len(panel.page_errors)
    yield
    assert panel.page_errors[seen:] == [], "the page threw an uncaught error"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "panel" in item.fixturenames:
        panel = item.funcargs["panel"]
        path = panel.shots / f"FAILED-{item.name}.png"
        try:
            panel.page.screenshot(path=path)
            report.sections.append(("screenshot", str(path)))
        except Exception:  # the page may be gone; the failure itself matters more
            pass
    return report
