"""Figures 7 and 8: server start with and without the extension, and reading long histories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from api import Api
from context import Bench
from model import task_message
from procs import dsagent_server, plain_server
from report import Row, pct

ROUNDS_PER_TASK = 2  # the template task: print(1), then the answer
READ_TARGET = 30.0  # ms p50 at the longest history


async def run(b: Bench) -> None:
    await _history(b)
    _starts(b)


def _template(sessions: Path, sid: str) -> list[dict]:
    """The events of the last task of ``sid``, from its user_message to its done."""
    lines = (sessions / sid / "logs" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    start = max(i for i, e in enumerate(events) if e["event"] == "user_message")
    return events[start:]


def _write_history(sessions: Path, template_sid: str, task: list[dict], rounds: int) -> str:
    """A copy of the template session whose log holds ``rounds`` rounds (the task, repeated)."""
    sid = f"history_{rounds}"
    folder = sessions / sid
    shutil.copytree(sessions / template_sid, folder)
    record = json.loads((folder / "session.json").read_text())
    record["id"] = sid
    (folder / "session.json").write_text(json.dumps(record))
    with (folder / "logs" / "events.jsonl").open("w") as f:
        seq = 0
        for _ in range(max(1, rounds // ROUNDS_PER_TASK)):
            for event in task:
                seq += 1
                f.write(json.dumps({**event, "seq": seq}, separators=(",", ":")) + "\n")
    return sid


async def _history(b: Bench) -> None:
    """Figure 8: restart on sessions with 10/100/1000 rounds, then time /turns and /messages (default page)."""
    if not b.sessions:  # run alone (``--only restart``): one session with one task to copy
        sid = await b.api.create()
        await b.api.ready(sid)
        await b.api.chat(sid, task_message(1))
        b.sessions.append(sid)
    b.server.stop()
    sessions = b.root / "dsagent" / "sessions"
    task = _template(sessions, b.sessions[0])
    made = {rounds: _write_history(sessions, b.sessions[0], task, rounds) for rounds in b.config.history}
    await b.api.close()
    b.server = dsagent_server(b.root, b.model.url, b.workdir, *b.config.server_args)
    b.api = Api(b.server.url)
    b.rows.append(Row("7", f"dsagent serve start with {len(list(sessions.iterdir()))} sessions on disk",
                      b.server.started_in * 1000))
    longest = max(made)
    for rounds, sid in made.items():
        for view in ("turns", "messages"):
            path = f"/api/sessions/{sid}/{view}"
            await b.api.timed_get(path)  # the first read loads the log
            samples = [await b.api.timed_get(path) for _ in range(b.config.samples)]
            row = Row.of("8", f"GET /{view} at {rounds} rounds (default page)", samples)
            if rounds == longest:
                row.target, row.ok = f"<= {READ_TARGET:g} ms p50", pct(samples, 50) <= READ_TARGET
            b.rows.append(row)


def _starts(b: Bench) -> None:
    """Figure 7: a Jupyter server started with the extension and without, alternately, on an empty root."""
    root = b.workdir / "empty"
    root.mkdir(exist_ok=True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(b.config.starts):
        for extension in (False, True):
            server = plain_server(root, b.workdir, extension)
            times[extension].append(server.started_in * 1000)
            server.stop()
    without = pct(times[False], 50)
    b.rows.append(Row.of("7", "Jupyter server start, extension disabled", times[False]))
    added = pct(times[True], 50) - without
    row = Row.of("7", "Jupyter server start, extension enabled", times[True], floor=without,
                 floor_name="disabled", target=f"<= +100 ms (+{added:.0f})", ok=added <= 100,
                 note=f"litellm imported on load: {_litellm_on_load()}")
    b.rows.append(row)


def _litellm_on_load() -> bool:
    """Whether loading the extension and its routes imports litellm (it must wait for the first chat)."""
    code = ("import sys, dsagent_ext, dsagent_ext.app; from dsagent_ext.handlers import route_table; "
            "route_table(); print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return out.stdout.strip() == "True"
