"""The scripted agent task every deployment must run: upload, load, plot, answer, over SSE."""

from __future__ import annotations

import base64

SALES = b"month,sales\n1,10\n2,30\n3,20\n"
PLOT_TASK = [
    "<intent>complex</intent>I'll load the data, plot it and summarise.\n"
    "<plan>\n1. [ ] Load data\n2. [ ] Plot the trend\n3. [ ] Summarise\n</plan>\n"
    "<code>\nimport pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(df.shape)\n</code>",
    "<plan>\n1. [x] Load data\n2. [ ] Plot the trend\n3. [ ] Summarise\n</plan>\n"
    "<code>\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot(df.month, df.sales)\n"
    "fig.savefig('artifacts/trend.png')\nplt.show()\n</code>",
    "<plan>\n1. [x] Load data\n2. [x] Plot the trend\n3. [ ] Summarise\n</plan>\n<code>\nprint(df.sales.sum())\n</code>",
    "<plan>\n1. [x] Load data\n2. [x] Plot the trend\n3. [x] Summarise\n</plan>\n<answer>Sales peaked in month 2; total 60.",
]
ROUND = ["thinking", "llm_response", "plan", "code_executing", "code_result", "round_complete"]


async def upload(client, sid: str, name: str, content: bytes) -> None:
    r = await client.call("POST", f"/api/sessions/{sid}/files", params={"category": "data"}, files={"files": (name, content)})
    assert r.status_code == 201, r.text


async def run_plot_task(client, llm) -> str:
    """Run the 3-round task with a plot in a new session, check what arrives, return the session id."""
    sid = await client.session(name="sales")
    await upload(client, sid, "sales.csv", SALES)
    llm.script(*PLOT_TASK)
    events = await client.chat_stream(sid, "analyse data/sales.csv and plot the trend")
    names = [e["event"] for e in events if e["event"] not in ("llm_delta", "code_output")]
    assert names == ROUND * 3 + ["thinking", "llm_response", "plan", "round_complete", "done"]
    results = [e["data"] for e in events if e["event"] == "code_result"]
    assert [r["success"] for r in results] == [True, True, True], results
    assert results[0]["stdout"] == "(3, 2)\n" and results[2]["stdout"] == "60\n"
    image = results[1]["images"][0]
    assert image["mime"] == "image/png" and base64.b64decode(image["data"]).startswith(b"\x89PNG")
    final = [e["data"] for e in events if e["event"] == "round_complete"][-1]
    assert final["answer"] == "Sales peaked in month 2; total 60." and final["stop_reason"] == "answer"
    # the kernel read the upload and saved into the session workspace
    r = await client.call("GET", f"/api/sessions/{sid}/artifacts", params={"type": "image"})
    assert [a["name"] for a in r.json()["artifacts"]] == ["trend.png"]
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()
    assert turns["total"] == 4 and turns["turns"][-1]["answer"] == final["answer"]
    return sid
