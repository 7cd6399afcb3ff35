"""A session's kernel after it is gone: the agent is told, and a restore replays the history.

Kernels are lost as they are in use: a real server restarted between two tasks, or the session's
kernel shut down through Jupyter's own API (as a cull or a user in JupyterLab would).
"""

from __future__ import annotations

import asyncio
import json
import signal

import httpx
import nbformat
import pytest
from client import SSEReader
from fake_llm import FakeReply
from launch import child_env
from test_serve import Served

from dsagent_ext.sessions.restore import only_writes_files


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, **getattr(request, "param", {})}


def system_prompt(request: dict) -> str:
    return request["messages"][0]["content"]


def variables(state: dict) -> dict[str, str]:
    return {v["name"]: v["value_preview"] for v in state["variables"]}


async def execute(client, sid: str, code: str) -> dict:
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": code})
    assert r.status_code == 200, r.text
    return r.json()


async def lose_kernel(client, jp_fetch, jp_serverapp, sid: str) -> None:
    """Shut the session's kernel down through Jupyter's kernels API, as a cull would."""
    kernel_id = jp_serverapp.web_app.settings["dsagent"].get(sid).kernel.kernel_id
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert state["is_new"] and not state["is_running"]


async def restore(client, sid: str, **body) -> list[dict]:
    """One restore, streamed: its ``restore_progress`` events."""
    frames = client.events("POST", f"/api/sessions/{sid}/kernel/restore", json=body or None)
    return [f for f in [f async for f in frames] if f["event"] != "comment"]


def test_cells_that_only_write_files():
    assert only_writes_files("df.to_csv('artifacts/a.csv', index=False)")
    assert only_writes_files("fig.savefig('artifacts/p.png')\nplt.close(fig)\nprint('saved')")
    assert only_writes_files("with open('artifacts/r.txt', 'w') as f:\n    f.write(report)")
    assert only_writes_files("import joblib\njoblib.dump(model, 'artifacts/m.joblib')") is False  # an import defines a name
    assert not only_writes_files("df = load()\ndf.to_csv('a.csv')")
    assert not only_writes_files("print(df.head())")
    assert not only_writes_files("with open('data/in.txt') as f:\n    f.read()")
    assert not only_writes_files("!ls data")
    assert only_writes_files("open('artifacts/r.txt', 'w').write(text)")
    assert not only_writes_files("open('data/r.txt').read()")


async def test_restore_replays_the_history(client, fake_llm, jp_fetch, jp_serverapp):
    """Agent cells and the user's own, in order; file-only cells listed, not re-run; nothing in the notebook."""
    fake_llm.script(
        "<code>\nsales = pd.DataFrame({'m': [1, 2, 3], 't': [10, 20, 30]})\ntotal = int(sales.t.sum())",
        "<code>\nsales.to_csv('artifacts/sales.csv', index=False)",
        "<answer>60",
    )
    sid = await client.session()
    await client.chat_stream(sid, "load the sales")
    await execute(client, sid, "double = total * 2")
    assert (await execute(client, sid, "missing_name + 1"))["success"] is False  # failed: not replayed
    before = nbformat.reads((await client.call("GET", f"/api/sessions/{sid}/notebook")).text, as_version=4)
    turns_before = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["total"]
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)

    events = await restore(client, sid)
    assert {e["event"] for e in events} == {"restore_progress"}
    steps = [e["data"] for e in events]
    assert [(s["status"], s["cell"]) for s in steps] == [("started", None), ("running", 1), ("running", 2), ("completed", None)]
    assert steps[0]["total"] == 2 and steps[1]["code"].startswith("sales = pd.DataFrame")
    assert steps[2]["code"] == "double = total * 2"
    assert [(c["reason"], c["code"]) for c in steps[0]["skipped"]] == [("writes_files", "sales.to_csv('artifacts/sales.csv', index=False)")]
    final = steps[-1]
    assert final["replayed"] == 2 and final["kernel"]["is_new"] is False
    assert variables(final["kernel"]) == {"sales": "DataFrame with 3 rows x 2 columns", "total": "60", "double": "120"}
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert state["is_running"] and not state["is_new"] and variables(state)["double"] == "120"
    # recorded: the log and /turns have it; the notebook and the messages do not grow
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()
    assert turns["total"] == turns_before + 1
    last = turns["turns"][-1]
    assert last["round"] == 0 and last["restore"]["status"] == "completed" and last["content"].startswith("Kernel restored: 2 of 2")
    after = nbformat.reads((await client.call("GET", f"/api/sessions/{sid}/notebook")).text, as_version=4)
    assert [c.source for c in after.cells] == [c.source for c in before.cells]
    # the next task's model is not told of a new kernel, and sees the restored names
    fake_llm.script("<answer>still 60")
    await client.chat_stream(sid, "and now?")
    prompt = system_prompt(fake_llm.requests[-1])
    assert "The kernel is new" not in prompt and "sales: 3 rows x 2 cols" in prompt


async def test_new_kernel_is_told_to_the_model(client, fake_llm, jp_fetch, jp_serverapp):
    fake_llm.script("<code>\nprices = [3, 4, 5]", "<answer>loaded")
    sid = await client.session()
    await client.chat_stream(sid, "load prices")
    assert "The kernel is new" not in system_prompt(fake_llm.requests[-1])
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    fake_llm.script("<code>\nprices = [3, 4, 5]\nprint(sum(prices))", "<answer>12")
    await client.chat_stream(sid, "sum the prices")
    first = system_prompt(fake_llm.requests[-2])
    assert "## The kernel is new" in first and "Missing now: prices." in first and "prices: list[3]" in first
    # the model reloaded: its cells now build the history, so the kernel is no longer new
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert not state["is_new"] and "prices" in variables(state)


async def test_failing_cell_stops_the_restore(client, jp_fetch, jp_serverapp, jp_root_dir):
    sid = await client.session()
    await execute(client, sid, "a = 1")
    await execute(client, sid, "with open('data/notes.txt', 'w') as f:\n    f.write('kept')")
    await execute(client, sid, "notes = open('data/notes.txt').read()")
    await execute(client, sid, "c = 3")
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    (jp_root_dir / "dsagent" / "sessions" / sid / "data" / "notes.txt").unlink()

    steps = [e["data"] for e in await restore(client, sid)]
    assert [s["status"] for s in steps] == ["started", "running", "running", "failed"]
    assert len(steps[0]["skipped"]) == 1 and steps[0]["skipped"][0]["reason"] == "writes_files"
    failed = steps[-1]
    assert failed["cell"] == 2 and failed["total"] == 3 and failed["replayed"] == 1
    assert failed["code"] == "notes = open('data/notes.txt').read()" and failed["error"].startswith("FileNotFoundError")
    assert variables(failed["kernel"]) == {"a": "1"} and failed["kernel"]["is_new"]
    turn = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"][-1]
    assert turn["restore"]["status"] == "failed" and "at cell 2 of 3: FileNotFoundError" in turn["content"]
    # asked for all, the file-writing cell runs again and the rest follows (the kernel restarted first)
    steps = [e["data"] for e in await restore(client, sid, replay_all=True)]
    assert steps[-1]["status"] == "completed" and steps[-1]["replayed"] == 4 and not steps[0]["skipped"]
    assert {"a": "1", "notes": "'kept'", "c": "3"}.items() <= variables(steps[-1]["kernel"]).items()


SLOW_CELL = "import os, time\nwhile os.path.exists('data/hold'):\n    time.sleep(0.1)\nheld = True"


async def test_cancel_and_conflicts(client, fake_llm, jp_fetch, jp_serverapp, jp_root_dir):
    """One run at a time: no second restore, task or cell meanwhile (409), and cancel stops it."""
    sid = await client.session()
    fake_llm.script("<code>\nx = 1", "<answer>x is set")
    await client.chat_stream(sid, "set x")
    await execute(client, sid, SLOW_CELL)  # fast when it ran
    await execute(client, sid, "z = 3")
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    (jp_root_dir / "dsagent" / "sessions" / sid / "data" / "hold").touch()  # the replay will wait in cell 2

    seen: list[dict] = []
    async with client.http() as http, http.stream("POST", f"/api/sessions/{sid}/kernel/restore") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        reader = SSEReader()
        async for line in r.aiter_lines():
            frame = reader.feed(line)
            if frame is None or frame["event"] == "comment":
                continue
            seen.append(frame["data"])
            if frame["data"]["status"] == "running" and frame["data"]["cell"] == 2:
                again = await client.call("POST", f"/api/sessions/{sid}/kernel/restore")
                assert again.status_code == 409 and "restore" in again.json()["detail"]
                chat = await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "hi"})
                assert chat.status_code == 409 and "restore" in chat.json()["detail"]
                busy = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "1"})
                assert busy.status_code == 409
                # a restore is not a task: clients opening the session see none running
                assert (await client.call("GET", f"/api/sessions/{sid}")).json()["running_task"] is None
                cancel = (await client.call("DELETE", f"/api/sessions/{sid}/kernel/restore")).json()
                assert cancel == {"success": True, "message": "Restore cancelled"}
    final = seen[-1]
    assert final["status"] == "cancelled" and final["cell"] == 2 and final["replayed"] == 1
    assert variables(final["kernel"]) == {"x": "1"}
    # the cell was interrupted: the kernel answers at once, and a new restore can start
    assert (await execute(client, sid, "print(x)"))["stdout"] == "1\n"
    nothing = (await client.call("DELETE", f"/api/sessions/{sid}/kernel/restore")).json()
    assert nothing["success"] is False

    # never during a task
    fake_llm.script(FakeReply("<answer>slow", delay=2))
    task = asyncio.ensure_future(client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "wait"}))
    for _ in range(100):
        if (await client.call("GET", f"/api/sessions/{sid}")).json()["running_task"]:
            break
        await asyncio.sleep(0.05)
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/restore")
    assert r.status_code == 409 and "task" in r.json()["detail"]
    assert (await task).status_code == 200


@pytest.mark.parametrize("dsagent_config", [{"restore_kernel": "auto", "restore_slow_cell_seconds": 0.5}], indirect=True)
async def test_auto_restore_before_the_next_task(client, fake_llm, jp_fetch, jp_serverapp):
    sid = await client.session()
    await execute(client, sid, "v = 41")
    await execute(client, sid, "import time\ntime.sleep(1)\nslow = 'made slowly'")
    await execute(client, sid, "print('report')\nopen('artifacts/r.txt', 'w').write('r')")
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    fake_llm.script("<code>\nprint(v + 1)", "<answer>42")
    events = [e for e in await client.chat_stream(sid, "add one") if e["event"] != "llm_delta"]
    names = [e["event"] for e in events]
    assert names[:4] == ["restore_progress"] * 3 + ["thinking"] and names[-1] == "done"
    steps = [e["data"] for e in events[:3]]
    assert all(s["auto"] for s in steps) and [s["status"] for s in steps] == ["started", "running", "completed"]
    assert [c["reason"] for c in steps[0]["skipped"]] == ["slow", "writes_files"]
    result = next(e["data"] for e in events if e["event"] == "code_result")
    assert result["stdout"] == "42\n"
    prompt = system_prompt(fake_llm.requests[-2])
    assert "## The kernel was restored" in prompt and "- import time ..." in prompt
    assert "The kernel is new" not in prompt
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert [t["round"] for t in turns] == [0, 1, 2] and turns[0]["restore"]["auto"]


@pytest.mark.parametrize("dsagent_config", [{"restore_kernel": "auto"}], indirect=True)
async def test_auto_restore_that_fails_or_is_cancelled(client, fake_llm, jp_fetch, jp_serverapp, jp_root_dir):
    """A failed automatic restore is told to the model, which goes on; a cancelled one ends the task."""
    sid = await client.session()
    data = jp_root_dir / "dsagent" / "sessions" / sid / "data"
    (data / "in.txt").write_text("5")
    await execute(client, sid, "n = int(open('data/in.txt').read())")
    await execute(client, sid, SLOW_CELL)
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    (data / "in.txt").unlink()
    fake_llm.script("<answer>The input file is gone.")
    events = [e for e in await client.chat_stream(sid, "use n") if e["event"] != "llm_delta"]
    steps = [e["data"] for e in events if e["event"] == "restore_progress"]
    assert [s["status"] for s in steps] == ["started", "running", "failed"] and steps[-1]["cell"] == 1
    prompt = system_prompt(fake_llm.requests[-1])
    assert "## The kernel is new" in prompt and "Missing now: n, held." in prompt
    assert "An automatic restore of the old kernel (failed at cell 1 of 2) replayed 0 cell(s): FileNotFoundError" in prompt
    assert events[-2]["data"]["answer"] == "The input file is gone."

    (data / "in.txt").write_text("5")
    (data / "hold").touch()
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    requests = len(fake_llm.requests)
    seen = []
    async for frame in client.events("POST", f"/api/sessions/{sid}/chat/stream", json={"message": "again"}):
        seen.append(frame)
        if frame["event"] == "restore_progress" and frame["data"]["status"] == "running" and frame["data"]["cell"] == 2:
            r = await client.call("POST", f"/api/sessions/{sid}/chat/cancel")
            assert r.json() == {"success": True, "message": "Task cancelled"}
    names = [f["event"] for f in seen if f["event"] != "comment"]
    assert names[-2:] == ["round_complete", "done"] and "thinking" not in names
    assert seen[-2]["data"]["stop_reason"] == "cancelled"
    assert [f["data"]["status"] for f in seen if f["event"] == "restore_progress"][-1] == "cancelled"
    assert len(fake_llm.requests) == requests  # the model was never asked


@pytest.mark.parametrize("dsagent_config", [{"restore_kernel": "auto"}], indirect=True)
async def test_restore_after_a_failed_auto_restore(client, fake_llm, jp_fetch, jp_serverapp, jp_root_dir):
    """The automatic restore fails, the task goes on in the new kernel: a later restore rebuilds the old
    kernel's state and the task's, and a reset forgets what came before it."""
    sid = await client.session()
    data = jp_root_dir / "dsagent" / "sessions" / sid / "data"
    (data / "in.txt").write_text("5")
    await execute(client, sid, "n = int(open('data/in.txt').read())")
    await execute(client, sid, "m = n + 1")
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    (data / "in.txt").unlink()
    fake_llm.script("<code>\nw = 7", "<answer>Set w; n is gone with its file.")
    events = await client.chat_stream(sid, "use n")
    assert [e["data"]["status"] for e in events if e["event"] == "restore_progress"][-1] == "failed"
    state = (await client.call("GET", f"/api/sessions/{sid}/kernel")).json()
    assert not state["is_new"] and state["lacks_state"] and variables(state) == {"w": "7"}

    (data / "in.txt").write_text("5")  # the file is back: the user restores
    steps = [e["data"] for e in await restore(client, sid)]
    assert [s["code"] for s in steps if s["status"] == "running"] == [
        "n = int(open('data/in.txt').read())", "m = n + 1", "w = 7"
    ]
    assert steps[-1]["status"] == "completed" and steps[-1]["kernel"]["lacks_state"] is False
    assert variables(steps[-1]["kernel"]) == {"n": "5", "m": "6", "w": "7"}

    # a reset empties the kernel on purpose: later restores start after it
    assert (await client.call("POST", f"/api/sessions/{sid}/kernel/reset")).status_code == 200
    await execute(client, sid, "after = 1")
    await lose_kernel(client, jp_fetch, jp_serverapp, sid)
    await execute(client, sid, "later = 2")
    steps = [e["data"] for e in await restore(client, sid)]
    assert [s["code"] for s in steps if s["status"] == "running"] == ["after = 1", "later = 2"]


@pytest.mark.parametrize("dsagent_config", [{"restore_kernel": "off"}], indirect=True)
async def test_restore_turned_off(client):
    sid = await client.session()
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/restore")
    assert r.status_code == 403 and "restore_kernel = off" in r.json()["detail"]


def test_restart_between_dependent_tasks(tmp_path, fake_llm):
    """A real server stops between two tasks: the second is told its kernel is new and uses it; a restore
    then brings back the first task's variables and the second's."""
    root = tmp_path / "root"
    root.mkdir()
    env = child_env(LLM_API_BASE=fake_llm.api_base, DSAGENT_DEFAULT_MODEL="scripted")
    fake_llm.script("<code>\nrevenue = pd.Series([5, 7], name='revenue')\nprint(revenue.sum())", "<answer>12")
    served = Served(root, env).start()
    try:
        sid = httpx.post(f"{served.url}/api/sessions", json={"name": "yesterday"}).json()["id"]
        r = httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "load revenue"}, timeout=60)
        assert r.json()["answer"] == "12"
    finally:
        served.stop()
    served = Served(root, env).start()
    try:
        base = f"{served.url}/api/sessions/{sid}"
        assert httpx.get(f"{base}/kernel", timeout=60).json()["is_new"] is True
        fake_llm.script("<code>\nfactor = 2\nprint(1)", "<answer>Its kernel is new: revenue must be loaded again.")
        httpx.post(f"{base}/chat", json={"message": "double the revenue"}, timeout=60)
        prompt = system_prompt(fake_llm.requests[-2])
        assert "## The kernel is new" in prompt and "Missing now: revenue." in prompt
        assert "revenue: Series[2]" in prompt  # the old kernel's last description
        state = httpx.get(f"{base}/kernel", timeout=60).json()  # used since: no longer new, still lacking
        assert not state["is_new"] and state["lacks_state"] and variables(state) == {"factor": "2"}
        frames, reader = [], SSEReader()
        with httpx.stream("POST", f"{base}/kernel/restore", timeout=60) as r:
            for line in r.iter_lines():
                if (frame := reader.feed(line)) is not None and frame["event"] != "comment":
                    frames.append(frame["data"])
        assert [f["status"] for f in frames] == ["started", "running", "running", "completed"]
        assert [f["code"].split("\n")[0] for f in frames[1:3]] == ["revenue = pd.Series([5, 7], name='revenue')", "factor = 2"]
        state = httpx.get(f"{base}/kernel", timeout=60).json()
        assert not state["is_new"] and not state["lacks_state"] and set(variables(state)) == {"revenue", "factor"}
        r = httpx.post(f"{base}/kernel/execute", json={"code": "print(revenue.sum() * factor)"}, timeout=60)
        assert r.json()["stdout"] == "24\n"
        assert json.loads(httpx.get(f"{base}/turns").text)["turns"][-1]["restore"]["status"] == "completed"
    finally:
        served.stop(signal.SIGTERM)
