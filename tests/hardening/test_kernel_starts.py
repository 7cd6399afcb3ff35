"""Kernels that die as they start: many sessions created at once while another process takes ports
their kernels were given before the kernels could bind them (what a busy machine does by chance, here
on purpose). Each such kernel is started again, with one warning; every session works, and the log
reports no failure."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
from served import RESTARTED, Server, scaled

# Takes the shell port of the first ``limit`` kernels the server is about to start (a kernel's
# connection file is written before it runs, and it binds a second or so later); notes each port it
# got in ``grabbed``, and holds them all.
GRABBER = r"""
import json, socket, sys, time
from pathlib import Path
runtime, grabbed, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
seen, held = set(), []
while True:
    for path in runtime.glob("kernel-*.json"):
        if path.name in seen or len(seen) >= limit:
            continue
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):  # being written
            continue
        seen.add(path.name)
        s = socket.socket()
        try:
            s.bind((info["ip"], info["shell_port"]))
        except OSError:  # the kernel was faster
            s.close()
            continue
        held.append(s)
        with grabbed.open("a") as out:
            out.write(f"{path.name} {info['shell_port']}\n")
    time.sleep(0.005)
"""


def test_sessions_started_at_once_survive_kernels_that_die_starting(tmp_path, llm):
    runtime, root, grabbed = tmp_path / "runtime", tmp_path / "root", tmp_path / "grabbed"
    runtime.mkdir()
    root.mkdir()
    grabbed.touch()
    server = Server(root, llm)
    server.env["JUPYTER_RUNTIME_DIR"] = str(runtime)  # its connection files, and no one else's
    count = scaled(6, 20)
    grabber = subprocess.Popen([sys.executable, "-c", GRABBER, str(runtime), str(grabbed), str(count)])
    server.start()
    try:

        async def create_all() -> list[str]:
            async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120) as http:
                replies = await asyncio.gather(*(http.post("/api/sessions", json={}) for _ in range(count)))
            assert [r.status_code for r in replies] == [201] * count, [r.text for r in replies]
            return [r.json()["id"] for r in replies]

        sids = asyncio.run(create_all())
        with server.client(timeout=120) as http:
            for number, sid in enumerate(sids):
                state = http.get(f"/api/sessions/{sid}/kernel").json()  # waits for the boot
                assert state["is_running"], state
                r = http.post(f"/api/sessions/{sid}/kernel/execute", json={"code": f"n = {number}\nprint(n)"})
                assert r.status_code == 200 and r.json()["stdout"] == f"{number}\n", r.text
        taken = {line.split()[0].removeprefix("kernel-").removesuffix(".json") for line in grabbed.read_text().splitlines()}
        assert taken, "no kernel lost its port: the race was not provoked"
        text = server.log_text()
        assert "did not start" not in text
        # one warning a session, naming the kernel that died; a session's second kernel may die too
        warned = re.findall(rf"dsagent kernel (\S+) {RESTARTED}", text)
        assert len(warned) == len(set(warned)) and set(warned) & taken, (warned, taken)
        assert not server.tracebacks()
    finally:
        server.stop()
        grabber.kill()
        grabber.wait()


def test_the_log_reader_knows_raced_tracebacks_amid_other_processes_lines(tmp_path):
    """Six kernels dying at once wrote this (trimmed from a real run): one kernel's header, then another
    kernel's log record, then the frames. Each is a raced kernel's traceback, not a fault."""
    frames = '  File "ipykernel/kernelapp.py", line 256, in _try_bind_socket\n    s.bind(addr)\n'
    warning = "[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\n"
    race = "zmq.error.ZMQError: Address already in use (addr='tcp://127.0.0.1:{}')\n"
    log = tmp_path / "serve.log"
    log.write_text(
        f"{warning}Traceback (most recent call last):\n{warning}{frames}{race.format(36961)}"
        f"Traceback (most recent call last):\n{frames}{race.format(34777)}"
        f"[W 2026-12-07 07:11:39.120 DSAgent] dsagent kernel 754559d5 {RESTARTED}\n"
    )
    server = Server(tmp_path)
    server.log = log
    assert server.tracebacks() == []
    log.write_text(log.read_text() + f"Traceback (most recent call last):\n{warning}{frames}KeyError: 'x'\n")
    assert [t.rsplit("\n", 2)[-2] for t in server.tracebacks()] == ["KeyError: 'x'"]
