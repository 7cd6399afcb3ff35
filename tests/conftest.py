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


@pytest.fixture
def fake_llm():
    """The scripted model server; the only stand-in in the suite, at the network boundary."""
    from fake_llm import FakeLLM

    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def agent_config(fake_llm) -> dict:
    """DSAgent settings that send every model call to the scripted server."""
    return {"api_base": fake_llm.api_base, "default_model": "scripted", "sse_keepalive": 0.5}


@pytest.fixture
def policy(jp_serverapp):
    """The running server's policy: a test hands it new settings (``dataclasses.replace``) as an admin
    would change them between two server starts, for sessions created under the earlier policy."""
    return jp_serverapp.web_app.settings["dsagent"].policy


@pytest.fixture
def spending(jp_serverapp):
    """The running server's spending limits and ledger; new limits are handed over like the policy's."""
    return jp_serverapp.web_app.settings["dsagent_spending"]


@pytest.fixture
def client(jp_http_port, jp_base_url, jp_auth_header, http_server_client):
    """An httpx client on the DSAgent prefix, authenticated with the server token."""
    from client import Client

    return Client(f"http://127.0.0.1:{jp_http_port}{jp_base_url}dsagent", jp_auth_header)
