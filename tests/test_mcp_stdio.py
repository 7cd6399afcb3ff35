"""``dsagent mcp``: the stdio bridge, driven by the official MCP SDK's stdio client, forwarding to a real
Jupyter server's MCP endpoint (tools, progress, elicitation and resources pass through)."""

from __future__ import annotations

import sys

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import ElicitResult
from mcp_client import Progress, structured

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


async def test_stdio_bridge_forwards_tools_progress_and_approvals(
    jp_http_port, jp_base_url, jp_auth_header, http_server_client, fake_llm
):
    fake_llm.script("<code>x = 21 * 2\nprint(x)", "<answer>x is 42")
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "dsagent_ext.serve", "mcp", "--url", url], env={"DSAGENT_TOKEN": token}
    )
    asked = []

    async def elicit(context, request):
        asked.append(request.message)
        return ElicitResult(action="accept", content={})

    progress = Progress()
    async with stdio_client(params) as (read, write), ClientSession(read, write, elicitation_callback=elicit) as session:
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        sid = structured(await session.call_tool("create_session", {"hitl_mode": "full"}))["id"]
        result = await session.call_tool("run_task", {"session_id": sid, "message": "compute"}, progress_callback=progress)
        resources = {str(r.uri) for r in (await session.list_resources()).resources}
        notebook = await session.read_resource(f"dsagent://sessions/{sid}/notebook")
    assert {"run_task", "get_task", "execute_code", "read_notebook"} <= tools
    task = structured(result)
    assert task["status"] == "completed" and task["answer"] == "x is 42" and task["rounds"][0]["output"] == "42\n"
    assert "Run this code?" in asked[0] and "Accept this answer?" in asked[1]
    assert "task finished" in progress.messages and progress.seen == sorted(progress.seen, key=lambda p: p[0])
    assert f"dsagent://sessions/{sid}/notebook" in resources
    assert notebook.contents[0].mimeType == "application/x-ipynb+json" and '"cells"' in notebook.contents[0].text
