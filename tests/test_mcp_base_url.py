"""The MCP endpoint under a single-user server's base URL, as JupyterHub serves it."""

from __future__ import annotations

import pytest
from mcp_client import connect, structured


@pytest.fixture
def jp_base_url():
    return "/user/alice/"


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


async def test_mcp_under_the_users_base_url(jp_http_port, jp_base_url, jp_auth_header, http_server_client, fake_llm):
    fake_llm.script("<code>print(6 * 7)", "<answer>42")
    url = f"http://127.0.0.1:{jp_http_port}/user/alice/dsagent/mcp/"  # with or without the trailing slash
    async with connect(url, jp_auth_header) as session:
        sid = structured(await session.call_tool("create_session", {}))["id"]
        task = structured(await session.call_tool("run_task", {"session_id": sid, "message": "compute"}))
        resources = {str(r.uri) for r in (await session.list_resources()).resources}
    assert task["status"] == "completed" and task["answer"] == "42" and task["rounds"][0]["output"] == "42\n"
    assert f"dsagent://sessions/{sid}/notebook" in resources
