"""The session notebook follows the event log in the background, and nothing reads or leaves it behind."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import nbformat
import pytest
from launch import child_env
from test_serve import Served

from dsagent_ext.notebook.writer import QUIET

TASK = ("<code>\nprint(6 * 7)\n</code>", "<answer>It is 42.</answer>")


@pytest.fixture
def dsagent_config(agent_config):
    return agent_config


def sources(text: str) -> list[str]:
    return [cell.source for cell in nbformat.reads(text, as_version=4).cells]


async def test_written_once_the_session_calms_down(client, fake_llm, jp_root_dir):
    fake_llm.script(*TASK)
    sid = await client.session()
    assert (await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "compute"})).status_code == 200
    path = jp_root_dir / "dsagent" / "sessions" / sid / "notebooks" / f"{sid}.ipynb"
    # a long first round (the kernel booting) may have had a version written mid-task already
    deadline = time.monotonic() + QUIET + 10  # generous: the machine may be loaded
    cells: list[str] = []
    while "### Answer\n\nIt is 42." not in cells and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        try:
            cells = sources(path.read_text())
        except (OSError, nbformat.reader.NotJSONError):  # not there yet, or caught mid-write
            cells = []
    assert "print(6 * 7)" in cells and "### Answer\n\nIt is 42." in cells


async def test_readers_see_every_logged_event(client, fake_llm):
    fake_llm.script(*TASK)
    sid = await client.session()
    await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "compute"})
    # listing and downloading the notebooks category answer with the notebook up to date
    listed = (await client.call("GET", f"/api/sessions/{sid}/files", params={"category": "notebooks"})).json()
    assert [f["name"] for f in listed["files"]] == [f"{sid}.ipynb"]
    r = await client.call("GET", f"/api/sessions/{sid}/files/{sid}.ipynb", params={"category": "notebooks"})
    assert "### Answer\n\nIt is 42." in sources(r.text)
    # code a client runs directly is in the notebook the next time it is read
    r = await client.call("POST", f"/api/sessions/{sid}/kernel/execute", json={"code": "print('by hand')"})
    assert r.json()["stdout"] == "by hand\n"
    notebook = nbformat.reads((await client.call("GET", f"/api/sessions/{sid}/notebook")).text, as_version=4)
    last = notebook.cells[-1]
    assert last.source == "print('by hand')" and last.outputs[0]["text"] == "by hand\n"


async def test_deleting_a_session_cancels_its_pending_write(client, fake_llm, jp_root_dir):
    fake_llm.script(*TASK)
    sid = await client.session()
    await client.call("POST", f"/api/sessions/{sid}/chat", json={"message": "compute"})
    assert (await client.call("DELETE", f"/api/sessions/{sid}")).status_code == 204
    await asyncio.sleep(QUIET + 2)  # past the moment the write was due (the task is over: no MAX_WAIT)
    assert not (jp_root_dir / "dsagent" / "sessions" / sid).exists()


def test_stop_writes_and_start_rebuilds(tmp_path, fake_llm):
    """A clean stop writes pending notebooks; a start rebuilds any notebook older than its log."""
    root = tmp_path / "root"
    root.mkdir()
    env = child_env(LLM_API_BASE=fake_llm.api_base, DSAGENT_DEFAULT_MODEL="scripted")
    fake_llm.script(*TASK, *TASK)
    served = Served(root, env).start()
    try:
        sid = httpx.post(f"{served.url}/api/sessions", json={}).json()["id"]
        assert httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "one"}, timeout=60).status_code == 200
    finally:
        served.stop()  # SIGTERM, right after the task: the write was still pending
    path = root / "dsagent" / "sessions" / sid / "notebooks" / f"{sid}.ipynb"
    assert sources(path.read_text()).count("print(6 * 7)") == 1
    path.unlink()  # lost (or never written: see the kill below), while the log is intact
    served = Served(root, env).start()
    try:
        assert sources(httpx.get(f"{served.url}/api/sessions/{sid}/notebook").text).count("print(6 * 7)") == 1
        assert path.is_file()  # rebuilt
        assert httpx.post(f"{served.url}/api/sessions/{sid}/chat", json={"message": "two"}, timeout=60).status_code == 200
    finally:
        served.stop(signal.SIGKILL)  # no chance to write the second task
    served = Served(root, env).start()
    try:
        cells = sources(httpx.get(f"{served.url}/api/sessions/{sid}/notebook").text)
        assert cells.count("print(6 * 7)") == 2 and "**User:** two" in cells
    finally:
        served.stop()
