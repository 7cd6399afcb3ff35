"""Shared fixtures: a real Jupyter server with the extension enabled, and a scripted model server."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def dsagent_config() -> dict:
    """Extra ``c.DSAgent`` settings for one test; override in a test module or with indirect params."""
    return {}


@pytest.fixture
def jp_server_config(dsagent_config: dict) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"dsagent_ext": True}},
        "DSAgent": {"code_timeout": 60, **dsagent_config},
    }
