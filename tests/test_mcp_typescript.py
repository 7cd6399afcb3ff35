"""A second, independent MCP client: the TypeScript SDK (npm ``@modelcontextprotocol/sdk``, installed by
scripts/test), driven by a short Node script: it lists the tools and runs one task."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

TOOLS_DIR = Path(os.environ.get("DSAGENT_TEST_TOOLS", Path.home() / ".cache" / "dsagent-tests"))
SDK = TOOLS_DIR / "mcp-ts" / "node_modules"
SCRIPT = Path(__file__).parent / "mcp_ts" / "run_task.mjs"

if not (SDK / "@modelcontextprotocol" / "sdk").is_dir() or shutil.which("node") is None:
    pytest.skip("scripts/test installs @modelcontextprotocol/sdk into $DSAGENT_TEST_TOOLS/mcp-ts", allow_module_level=True)
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


async def test_typescript_sdk_lists_tools_and_runs_a_task(jp_http_port, jp_base_url, jp_auth_header, http_server_client, fake_llm):
    fake_llm.script("<code>x = 21 * 2\nprint(x)", "<answer>x is 42")
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dsagent/mcp"
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    node = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), url, token, env={**os.environ, "NODE_PATH": str(SDK)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), 100)
    assert node.returncode == 0, err.decode()
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert {"run_task", "get_task", "execute_code", "respond_approval"} <= set(seen["tools"])
    assert seen["task"]["status"] == "completed" and seen["task"]["answer"] == "x is 42"
    assert seen["text"] == "Task completed: x is 42"
    values = [p for p, _ in seen["progress"]]
    assert values == sorted(set(values)) and "task finished" in [m for _, m in seen["progress"]]
