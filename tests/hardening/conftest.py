"""Shared fixtures of the hardening suite: one keyed ``dsagent serve`` and one scripted model per module."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM
from served import Server


@pytest.fixture(scope="module")
def llm():
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    """Extra ``dsagent serve`` options for a module's server; a module overrides it."""
    return []


@pytest.fixture(scope="module")
def server(tmp_path_factory, llm, server_args):
    """One keyed ``dsagent serve`` per module, on the scripted model."""
    root = tmp_path_factory.mktemp("served") / "root"
    root.mkdir()
    served = Server(root, llm, *server_args).start()
    yield served
    served.stop()


@pytest.fixture
def http(server):
    with server.client() as client:
        yield client
