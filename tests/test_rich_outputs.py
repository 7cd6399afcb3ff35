"""Execution results carry notebook outputs everywhere: live events, sync chat, /turns, kernel/execute, notebooks."""

from __future__ import annotations

import nbformat
import pytest

TABLE_TASK = (
    "<code>\nimport sys\nprint('rows: 2')\nprint('careful', file=sys.stderr)\n"
    "sales = pd.DataFrame({'month': [1, 2], 'revenue': [10, 30]})\nsales\n</code>",
    "<code>\nsales.missing_column\n</code>",
    "<answer>Done.</answer>",
)


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


async def test_outputs_stream_live_and_stay_in_the_history(client, fake_llm):
    fake_llm.script(*TABLE_TASK)
    sid = await client.session()
    events = await client.chat_stream(sid, "show the sales table")
    executing = [e["data"] for e in events if e["event"] == "code_executing"]
    assert [e["round"] for e in executing] == [1, 2]
    # each output arrives as it is produced, before the round's result, without an id (not logged)
    live = [e for e in events if e["event"] == "code_output"]
    assert all(e["id"] is None for e in live)
    first = [e["data"]["output"] for e in live if e["data"]["round"] == 1]
    assert [(o["output_type"], o.get("name")) for o in first] == [
        ("stream", "stdout"), ("stream", "stderr"), ("execute_result", None),
    ]
    names = [e["event"] for e in events if e["event"] not in ("llm_delta",)]
    assert names.index("code_output") < names.index("code_result")
    results = [e["data"] for e in events if e["event"] == "code_result"]
    table, failed = results
    assert table["round"] == 1 and failed["round"] == 2
    assert table["outputs"][:2] == [
        {"output_type": "stream", "name": "stdout", "text": "rows: 2\n"},
        {"output_type": "stream", "name": "stderr", "text": "careful\n"},
    ]
    value = table["outputs"][2]
    assert value["output_type"] == "execute_result" and "<table" in value["data"]["text/html"]
    assert value["execution_count"] == table["execution_count"]
    assert table["output"] == table["stdout"] + "careful\n"
    assert table["stdout"].startswith("rows: 2\n") and "revenue" in table["stdout"]  # unchanged fields
    assert not failed["success"] and failed["outputs"][-1]["ename"] == "AttributeError"
    assert failed["output"] == failed["error"] and failed["error"].startswith("AttributeError")
    assert failed["execution_count"] == table["execution_count"] + 1
    # round_complete and /turns carry the same result
    rounds = [e["data"] for e in events if e["event"] == "round_complete"]
    assert rounds[0]["execution_result"]["outputs"] == table["outputs"]
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert turns[0]["execution_result"]["outputs"] == table["outputs"]
    assert turns[1]["execution_result"]["output"] == failed["output"]
    # the session notebook shows the table as a table and the error as an error
    nb = nbformat.reads((await client.call("GET", f"/api/sessions/{sid}/notebook")).text, as_version=4)
    nbformat.validate(nb)
    agent_cells = [c for c in nb.cells if c.cell_type == "code"][1:]
    assert "text/html" in agent_cells[0].outputs[-1]["data"]
    assert agent_cells[1].outputs[-1]["output_type"] == "error"


async def test_sync_chat_and_direct_execution(client, fake_llm):
    fake_llm.script(TABLE_TASK[0], TABLE_TASK[2])
    sid = await client.session()
    reply = (await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "table"})).json()
    result = reply["rounds"][0]["execution_result"]
    assert "text/html" in result["outputs"][-1]["data"] and result["output"].startswith("rows: 2\n")
    r = await client.call(
        "POST", f"/api/sessions/{sid}/kernel/execute",
        json={"code": "print('by hand')\nfrom IPython.display import HTML\ndisplay(HTML('<p>hi</p>'))\n1 / 0"},
    )
    result = r.json()
    assert [o["output_type"] for o in result["outputs"]] == ["stream", "display_data", "error"]
    assert result["outputs"][1]["data"]["text/html"] == "<p>hi</p>"
    assert result["output"].startswith("by hand\n") and "ZeroDivisionError" in result["output"]
    assert isinstance(result["execution_count"], int)
