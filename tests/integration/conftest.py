"""Fixtures shared by the gateway and hub tests: one scripted model server per module."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM

pytest.register_assert_rewrite("agent_task")


@pytest.fixture(scope="module")
def llm():
    """The scripted model, reachable from the peer processes; replies are queued per test."""
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_script(llm):
    """Nothing a previous test queued leaks into the next one."""
    llm._replies.clear()
    llm.requests.clear()
