"""Load and soak: many sessions at once, many tasks in one session, and no kernel left behind.

Counts are bounded for a 2-core CI (``SESSIONS`` x 3 rounds, ``TASKS`` in a row);
``DSAGENT_HARDENING_LONG=1`` runs 50 sessions and 200 tasks.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from served import KEY, MB, TASK, ThreeRounds, chat, scaled, session

SESSIONS = scaled(10, 50)
TASKS = scaled(30, 200)
WARM_UP = 3
ROUND_EVENTS = ["thinking", "llm_response", "code_executing", "code_result", "round_complete"]


@pytest.fixture(scope="module")
def llm():
    with ThreeRounds() as fake:
        yield fake


def kernel_ids(server) -> set[str]:
    """The kernels the server's own kernel manager lists (the key is also the Jupyter token)."""
    return {k["id"] for k in httpx.get(f"{server.url}/api/kernels", headers={"Authorization": f"token {KEY}"}).json()}


def assert_three_rounds(events: list[dict]) -> None:
    names = [e["event"] for e in events if e["event"] not in ("llm_delta", "code_output")]
    assert names == ROUND_EVENTS * 2 + ["thinking", "llm_response", "round_complete", "done"], names
    outputs = [e["data"]["stdout"] for e in events if e["event"] == "code_result"]
    assert outputs == ["1\n", "2\n"]
    assert events[-2]["data"]["stop_reason"] == "answer"


@pytest.mark.timeout(scaled(120, 1200))
def test_tasks_in_a_row_keep_memory_and_descriptors_flat(server, http):
    sid = session(http, name="soak")
    for n in range(WARM_UP):  # imports, caches and the kernel settle first
        assert_three_rounds(chat(http, sid, f"{TASK}warm-up {n}"))
    rss, fds, children = server.rss(), server.fds(), len(server.process.children(recursive=True))
    started = time.monotonic()
    for n in range(TASKS):
        assert_three_rounds(chat(http, sid, f"{TASK}{n}"))
    elapsed = time.monotonic() - started
    grown, opened = (server.rss() - rss) / MB, server.fds() - fds
    print(f"\n{TASKS} tasks in a row: {elapsed:.0f}s, RSS {rss / MB:.0f} MB {grown:+.1f} MB, fds {fds} {opened:+d}")
    assert opened <= 5, f"{opened} descriptors more after {TASKS} tasks"
    assert grown < 40, f"RSS grew by {grown:.1f} MB over {TASKS} tasks"
    assert len(server.process.children(recursive=True)) == children  # one kernel, one model worker
    turns = http.get(f"/api/sessions/{sid}/turns", params={"limit": 200}).json()
    assert turns["total"] == 3 * (TASKS + WARM_UP)
    assert http.delete(f"/api/sessions/{sid}").status_code == 204


@pytest.mark.timeout(scaled(120, 600))
async def test_concurrent_sessions_then_no_kernel_left(server):
    kernels = kernel_ids(server)
    processes = {p.pid for p in server.kernels()}
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=300) as client:

        async def one(n: int) -> list[dict]:
            r = await client.post("/api/sessions", json={"name": f"load {n}"})
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            out, frame = [], {}
            async with client.stream("POST", f"/api/sessions/{sid}/chat/stream", json={"message": f"{TASK}{n}"}) as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        frame["event"] = line[7:]
                    elif line.startswith("data: "):
                        frame["data"] = json.loads(line[6:])
                        out.append(frame)
                        frame = {}
            return sid, out

        started = time.monotonic()
        results = await asyncio.gather(*(one(n) for n in range(SESSIONS)), return_exceptions=True)
        elapsed = time.monotonic() - started
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, failures[:3]
        for _, events in results:
            assert_three_rounds(events)
        print(f"\n{SESSIONS} concurrent sessions x 3 rounds: {elapsed:.0f}s, 0 failures, {len(server.kernels())} kernels")
        assert len(server.kernels()) == len(processes) + SESSIONS
        deleted = await asyncio.gather(*(client.delete(f"/api/sessions/{sid}") for sid, _ in results))
        assert {r.status_code for r in deleted} == {204}
    for _ in range(100):  # kernel processes exit shortly after their shutdown request
        if {p.pid for p in server.kernels()} == processes:
            break
        await asyncio.sleep(0.1)
    assert {p.pid for p in server.kernels()} == processes
    assert kernel_ids(server) == kernels
