"""The model picker and the spending footer in a real browser, on a server preset by its admin through
the environment: a model list, a blocked pattern, a minimum HITL mode and a daily limit. OpenAI's key
is set (its calls reach the scripted server through ``OPENAI_BASE_URL``, and litellm prices them),
Anthropic's is not."""

from __future__ import annotations

import re

import pytest
from panel import eventually
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lab(fake, base_url, tmp_path_factory):
    from lab import JupyterLab

    env = {
        "OPENAI_API_KEY": "sk-scripted",
        "OPENAI_BASE_URL": fake.api_base,
        "DSAGENT_DEFAULT_MODEL": "gpt-4o-mini",
        "DSAGENT_MODELS": "gpt-4o-mini, anthropic/claude-sonnet-4-5",
        "DSAGENT_BLOCKED_MODELS": "*nano*",
        "DSAGENT_MIN_HITL_MODE": "on_error",
        "DSAGENT_MAX_COST_PER_USER_PER_DAY": "5",
    }
    server = JupyterLab(tmp_path_factory.mktemp("lab"), None, base_url, env=env).start()
    yield server
    server.stop()


def test_model_picker_and_spending_footer(panel, fake, lab):
    root = panel.root
    footer = root.get_by_role("status", name="Spending today")
    expect(footer).to_have_text("$0.00 of $5.00 today")
    form = root.get_by_label("New session", exact=True)
    # the modes below the admin's minimum are not offered, and the default follows it
    hitl = form.get_by_label("Human in the loop", exact=True)
    expect(hitl).to_have_value("on_error")
    expect(hitl.locator("option")).to_have_text(
        ["Ask on errors", "Approve plans", "Approve plan and answer", "Approve every step"]
    )
    field = form.get_by_label("Model", exact=True)
    listbox = form.get_by_role("listbox", name="Models")
    groups = listbox.get_by_role("group")
    # the server's first catalogue imports litellm (seconds), and JupyterLab may still move the focus
    # while it settles (closing the list, as any blur does): open the list again until it is filled
    assert lab.api("GET", "api/models")["default_model"] == "gpt-4o-mini"

    def listed() -> bool:
        if not listbox.is_visible():
            field.click()
        return groups.count() == 2

    eventually(listed, timeout=60)
    # grouped by provider, the admin's models first; a model without its key shows the key it needs
    assert groups.evaluate_all("gs => gs.map(g => g.getAttribute('aria-label'))") == ["openai", "anthropic"]
    claude = listbox.get_by_role("option", name=re.compile("^claude-sonnet-4-5"))
    expect(claude).to_have_attribute("aria-disabled", "true")
    expect(claude).to_contain_text("needs ANTHROPIC_API_KEY")
    openai = groups.first.get_by_role("option")
    assert openai.count() > 3 and not any("nano" in t for t in openai.all_inner_texts())
    panel.screenshot("10-model-picker")
    claude.click(force=True)  # a user can click it, but it cannot be picked without its key
    expect(field).to_have_value("")
    # typing searches the catalogue
    field.fill("mini")
    shown = listbox.get_by_role("option")
    expect(shown.first).to_be_visible()
    assert shown.count() >= 2 and all("mini" in t for t in shown.all_inner_texts())
    listbox.get_by_role("option", name=re.compile("^gpt-4o-mini")).click()
    expect(field).to_have_value("gpt-4o-mini")
    expect(listbox).to_have_count(0)
    form.get_by_label("Session name", exact=True).fill("Priced")
    form.get_by_label("Create session", exact=True).click()
    expect(root.locator(".jp-dsagent-title")).to_have_text("Priced")
    expect(root.get_by_label("Model", exact=True)).to_have_value("gpt-4o-mini")
    # a task spends, priced by litellm: the footer follows
    fake.script("<answer>a priced answer")
    panel.send("hello")
    panel.wait_done()
    expect(panel.answer.last).to_contain_text("a priced answer")
    expect(footer).not_to_have_text("$0.00 of $5.00 today")
    expect(footer).to_have_text(re.compile(r"^\$0\.0\d+ of \$5\.00 today$"))
    assert fake.requests[-1]["model"] == "gpt-4o-mini"
    panel.screenshot("11-spending-footer")
    # the keyboard: arrows move through the pickable models, Enter picks, the session follows
    field = root.locator(".jp-dsagent-settings").get_by_label("Model", exact=True)
    field.focus()
    field.press("ArrowDown")
    field.press("ArrowDown")
    listbox = root.locator(".jp-dsagent-settings").get_by_role("listbox", name="Models")
    second = listbox.get_by_role("option").nth(1)
    expect(second).to_have_class(re.compile("jp-mod-active"))
    expect(field).to_have_attribute("aria-activedescendant", second.get_attribute("id"))
    picked = second.get_attribute("title").split(" · ")[0]
    field.press("Enter")
    expect(field).to_have_value(picked)
    sid = lab.api("GET", "api/sessions")["sessions"][0]["id"]
    eventually(lambda: lab.api("GET", f"api/sessions/{sid}")["model"] == picked)
    # a typed name the policy blocks: the server's refusal shows, the field returns to the session's model
    field.fill("gpt-4.1-nano")
    field.press("Enter")
    expect(root.locator(".jp-dsagent-banner")).to_contain_text(
        "Model gpt-4.1-nano is blocked by the server's policy (blocked_models)"
    )
    expect(field).to_have_value(picked)
    assert lab.api("GET", f"api/sessions/{sid}")["model"] == picked
    # a typed name litellm routes to no provider: the server's reason shows, and nothing changes
    field.fill("nonexistent/abc")
    field.press("Enter")
    expect(root.locator(".jp-dsagent-banner")).to_contain_text(
        "Model nonexistent/abc cannot be used on this server: LLM Provider NOT provided"
    )
    expect(field).to_have_value(picked)
    assert lab.api("GET", f"api/sessions/{sid}")["model"] == picked
