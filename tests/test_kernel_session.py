"""KernelSession against the real server's kernel manager (one ipykernel per test)."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from jupyter_client.asynchronous import AsyncKernelClient

from dsagent_ext.engine.introspect import MESSAGE_CHARS
from dsagent_ext.engine.kernel import DIED_ERROR, KernelSession
from dsagent_ext.engine.outputs import strip_ansi

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def workspace(jp_root_dir):
    """A session workspace under the server root: (API path, absolute path)."""
    folder = jp_root_dir / "dsagent" / "sessions" / "s1"
    folder.mkdir(parents=True)
    return "dsagent/sessions/s1", str(folder)


@pytest.fixture
def kernel(jp_serverapp, jp_asyncio_loop, workspace):
    """A KernelSession on the server's kernel manager, shut down whatever the test does."""
    path, cwd = workspace
    session = KernelSession(
        jp_serverapp.kernel_manager, kernel_name="python3", path=path, cwd=cwd, watches_activity=True
    )
    try:
        yield session
    finally:
        jp_asyncio_loop.run_until_complete(session.shutdown())


@contextmanager
def another_client(jp_serverapp, kernel: KernelSession) -> Iterator[AsyncKernelClient]:
    """A client of its own on the session's kernel, like a console another program opens on it."""
    client = AsyncKernelClient(connection_file=jp_serverapp.kernel_manager.get_kernel(kernel.kernel_id).connection_file)
    client.load_connection_file()
    client.start_channels()
    try:
        yield client
    finally:
        client.stop_channels()


async def test_start_lists_kernel_with_workspace_cwd(jp_serverapp, kernel, workspace):
    km = jp_serverapp.kernel_manager
    await asyncio.gather(kernel.ensure_started(), kernel.ensure_started())
    assert kernel.is_alive and kernel.kernel_id in km.list_kernel_ids()
    assert len(km.list_kernel_ids()) == 1
    result = await kernel.execute("print(os.getcwd())", timeout=10)
    assert os.path.realpath(result.stdout.strip()) == os.path.realpath(workspace[1])
    assert kernel.snapshot.is_running
    assert sorted(kernel.snapshot.imports) == ["np", "os", "pd", "plt"]
    assert kernel.snapshot.variables == []


async def test_streams_result_and_error(kernel):
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6*7"
    result = await kernel.execute(code, timeout=10)
    assert result.success and result.error is None
    assert result.stdout == "out\n42\n"
    assert result.stderr == "err\n"
    assert result.execution_time_ms > 0

    result = await kernel.execute("def f():\n    raise ValueError('bad value')\nf()", timeout=10)
    assert not result.success
    assert result.error.startswith("ValueError: bad value\n")
    assert "\x1b" not in result.error and "f()" in result.error


async def test_matplotlib_figure_and_svg_come_back_as_images(kernel):
    result = await kernel.execute("plt.plot([1, 2, 3])\nplt.show()", timeout=30)
    assert result.success, result.error
    assert [(i.format, i.mime) for i in result.images] == [("png", "image/png")]
    assert base64.b64decode(result.images[0].data).startswith(b"\x89PNG")
    assert "<Figure" not in result.stdout

    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    code = f"from IPython.display import SVG, display\ndisplay(SVG({svg!r}))"
    result = await kernel.execute(code, timeout=10)
    assert [(i.format, i.mime) for i in result.images] == [("svg", "image/svg+xml")]
    assert "<rect" in result.images[0].data


async def test_introspection(kernel):
    await kernel.execute(
        "df = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})\n"
        "arr = np.zeros((2, 3))\nitems = [1, 2]\nn = 5\nname = 'abc' * 100\n"
        "def helper(): pass\nclass Model: pass\nimport json as js\n_hidden = 1",
        timeout=10,
    )
    started = time.monotonic()
    state = await kernel.state()
    assert time.monotonic() - started < 1
    types = {v.name: v.type for v in state.variables}
    assert types == {
        "df": "DataFrame",
        "arr": "ndarray(2, 3)",
        "items": "list[2]",
        "n": "int",
        "name": "str",
        "helper": "function",
        "Model": "class",
    }
    assert all(len(v.value_preview) <= 80 for v in state.variables)
    assert {v.name: v.value_preview for v in state.variables}["n"] == "5"
    assert sorted(state.imports) == ["js", "np", "os", "pd", "plt"]
    (frame,) = state.dataframes
    assert (frame.name, frame.shape, frame.columns) == ("df", [3, 2], ["a", "b"])
    assert frame.dtypes["a"] == "int64" and frame.memory_mb >= 0
    assert state.is_running and kernel.snapshot == state
    # only the hidden helper and the namespace's id stay behind
    result = await kernel.execute("print(sorted(k for k in globals() if 'dsagent' in k))", timeout=10)
    assert result.stdout == "['__dsagent_incarnation', '__dsagent_state']\n"


async def test_a_described_cell_saves_the_next_introspection(kernel):
    result = await kernel.execute("rows = [1, 2, 3]", timeout=10, describe=True)
    assert result.success
    described = kernel.snapshot
    assert {v.name: v.type for v in described.variables} == {"rows": "list[3]"}
    assert await kernel.state(reuse=True) is described  # no new request to the kernel
    assert await kernel.state() is described  # nor when the kernel has been silent since
    # a cell without the description, or a failing one, makes the kernel describe itself again
    await kernel.execute("more = 1", timeout=10)
    assert {v.name for v in (await kernel.state(reuse=True)).variables} == {"rows", "more"}
    failed = await kernel.execute("late = 2\n1 / 0", timeout=10, describe=True)
    assert not failed.success
    assert {v.name for v in (await kernel.state(reuse=True)).variables} == {"rows", "more", "late"}
    # a reset namespace loses the helper: the full introspection brings it back
    await kernel.execute("%reset -f\nq = 1", timeout=10, describe=True)
    assert [v.name for v in (await kernel.state(reuse=True)).variables] == ["q"]
    await kernel.execute("r = 2", timeout=10, describe=True)
    assert [v.name for v in kernel.snapshot.variables] == ["q", "r"]


async def test_code_another_client_runs_is_noticed(jp_serverapp, kernel):
    """A description is reused only while the kernel stays silent: another client's code makes us ask again."""
    await kernel.execute("mine = 1", timeout=10, describe=True)
    with another_client(jp_serverapp, kernel) as other:
        reply = await other.execute_interactive("theirs = 2", timeout=10)
        assert reply["content"]["status"] == "ok"
    await asyncio.sleep(0.1)  # the server has noted the kernel's messages (as by the time anyone asks)
    assert {v.name for v in (await kernel.state()).variables} == {"mine", "theirs"}


async def test_state_during_a_cell_answers_the_snapshot(kernel):
    await kernel.ensure_started()
    before = await kernel.state()
    cell = asyncio.create_task(
        kernel.execute("import time\nprint('before')\ntime.sleep(2)\nprint('after')", timeout=10)
    )
    while not kernel.busy:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    state = await kernel.state()
    assert time.monotonic() - started < 0.1
    assert state == before
    result = await cell
    assert result.success and result.stdout == "before\nafter\n"


async def test_concurrent_executes_do_not_interleave(kernel):
    code = "import time\nfor i in range(5):\n    print('{0}', i)\n    time.sleep(0.05)"
    a, b = await asyncio.gather(
        kernel.execute(code.format("a"), timeout=10), kernel.execute(code.format("b"), timeout=10)
    )
    assert a.stdout == "".join(f"a {i}\n" for i in range(5))
    assert b.stdout == "".join(f"b {i}\n" for i in range(5))


async def test_timeout_interrupts_and_kernel_stays_usable(kernel):
    await kernel.execute("x = 1", timeout=10)
    started = time.monotonic()
    result = await kernel.execute("import time\nprint('start')\ntime.sleep(30)", timeout=1)
    assert time.monotonic() - started < 5
    assert not result.success
    assert result.error == "Timeout: execution exceeded 1s and was interrupted"
    assert result.stdout == "start\n"
    result = await kernel.execute("print(x + 1)", timeout=10)
    assert result.success and result.stdout == "2\n"


async def test_large_output_is_capped(kernel):
    code = "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000)\n"
    code += "print('e' * 1_500_000, file=sys.stderr)"
    result = await kernel.execute(code, timeout=60)
    assert result.success and result.truncated
    assert result.stdout[:1_000_000] == "x" * 1_000_000
    assert result.stdout[1_000_000:] == "\n[... output truncated: 49000000 characters omitted ...]"
    assert result.stderr == "e" * 1_000_000 + "\n[... output truncated: 500001 characters omitted ...]"


async def test_a_huge_write_leaves_the_kernel_in_pieces(jp_serverapp, kernel):
    """One print of 2.5 pieces' worth reaches every client of the kernel as three messages, nothing lost."""
    size = MESSAGE_CHARS * 5 // 2
    await kernel.ensure_started()
    with another_client(jp_serverapp, kernel) as other:
        await other.wait_for_ready(timeout=10)
        result = await kernel.execute(f"print(''.join(str(i % 10) for i in range({size})))", timeout=30)
        pieces = []
        while True:
            msg = await other.get_iopub_msg(timeout=10)
            if msg["msg_type"] == "stream":
                pieces.append(msg["content"]["text"])
            elif msg["msg_type"] == "status" and pieces and msg["content"]["execution_state"] == "idle":
                break
    assert [len(p) for p in pieces] == [MESSAGE_CHARS, MESSAGE_CHARS, size - 2 * MESSAGE_CHARS + 1]
    assert "".join(pieces) == "".join(str(i % 10) for i in range(size)) + "\n"
    kept = kernel.output_cap
    assert result.stdout[:kept] == pieces[0][:kept]
    assert result.stdout[kept:] == f"\n[... output truncated: {size + 1 - kept} characters omitted ...]"


async def test_killed_kernel_reports_and_recovers(kernel):
    await kernel.execute("x = 41", timeout=10)
    before = kernel.incarnation
    started = time.monotonic()
    code = "import os, signal, time\nprint('bye')\ntime.sleep(0.3)\nos.kill(os.getpid(), signal.SIGKILL)"
    result = await kernel.execute(code, timeout=30)
    assert time.monotonic() - started < 5
    assert not result.success and result.error == DIED_ERROR and result.stdout == "bye\n"
    assert not kernel.is_alive and not kernel.snapshot.is_running and kernel.incarnation is None
    code = f"print('x' in globals(), np.__name__, os.getcwd() == {kernel.cwd!r})"
    result = await kernel.execute(code, timeout=30)
    assert result.success, result.error
    assert result.stdout == "False numpy True\n"
    assert kernel.is_alive and kernel.snapshot.is_running
    assert kernel.incarnation not in (None, before)  # another process, whatever its kernel id


async def test_restart_keeps_cwd_and_imports(kernel):
    await kernel.execute("y = 1\nos.chdir('/')", timeout=10)
    before, kernel_id = kernel.incarnation, kernel.kernel_id
    assert before is not None and before.startswith(kernel_id) and not kernel.pristine
    state = await kernel.restart()
    # the same kernel id, but another process: another incarnation, that has run nothing yet
    assert kernel.kernel_id == kernel_id and kernel.incarnation != before and kernel.pristine
    assert state.is_running and state.variables == []
    assert sorted(state.imports) == ["np", "os", "pd", "plt"]
    result = await kernel.execute(f"print(os.getcwd() == {kernel.cwd!r}, 'y' in globals())", timeout=10)
    assert result.stdout == "True False\n"


async def test_restart_during_a_cell_interrupts_it(kernel):
    await kernel.ensure_started()
    cell = asyncio.create_task(kernel.execute("import time\ntime.sleep(30)", timeout=60))
    while not kernel.busy:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    state = await kernel.restart()
    assert time.monotonic() - started < 10
    result = await cell
    assert not result.success and "KeyboardInterrupt" in result.error
    assert state.is_running and "np" in state.imports


async def test_culled_kernel_is_replaced_and_shutdown_removes_it(jp_serverapp, kernel):
    km = jp_serverapp.kernel_manager
    await kernel.ensure_started()
    old_id = kernel.kernel_id
    await km.shutdown_kernel(old_id)  # what the server's culler does
    assert not kernel.is_alive
    result = await kernel.execute("print(pd.__name__)", timeout=30)
    assert result.stdout == "pandas\n"
    assert kernel.kernel_id != old_id and km.list_kernel_ids() == [kernel.kernel_id]

    kernel_id = kernel.kernel_id
    await kernel.shutdown()
    assert kernel_id not in km.list_kernel_ids()
    assert not kernel.is_alive and not kernel.snapshot.is_running
    await kernel.shutdown()
    assert (await kernel.state()).is_running is False


async def test_outputs_in_notebook_form(kernel):
    """Each output as a notebook holds it, in order: streams, a DataFrame's HTML, a figure, the error."""
    arrived = []
    code = (
        "import sys\nprint('one')\nprint('two')\nprint('warn', file=sys.stderr)\n"
        "display(pd.DataFrame({'a': [1, 2]}))\nplt.plot([1, 2]); plt.show()\nprint('three')\n"
        "def f():\n    raise KeyError('missing')\nf()"
    )
    result = await kernel.execute(code, timeout=30, on_output=arrived.append)
    assert not result.success
    kinds = [(o["output_type"], o.get("name")) for o in result.outputs]
    assert kinds == [
        ("stream", "stdout"), ("stream", "stderr"), ("display_data", None), ("display_data", None),
        ("stream", "stdout"), ("error", None),
    ]
    assert result.outputs[0]["text"] == "one\ntwo\n"
    table = result.outputs[2]["data"]
    assert "<table" in table["text/html"] and "a" in table["text/plain"]
    assert base64.b64decode(result.outputs[3]["data"]["image/png"]).startswith(b"\x89PNG")
    error = result.outputs[-1]
    assert error["ename"] == "KeyError" and error["evalue"] == "'missing'"
    assert any("raise KeyError('missing')" in strip_ansi(line) for line in error["traceback"])
    assert result.execution_count is not None and result.execution_count >= 1
    # what a notebook shows as text: stdout, stderr, then the error
    assert result.output.startswith("one\ntwo\n") and result.output.endswith(result.error)
    assert result.output == result.stdout + result.stderr + result.error
    # the same outputs arrived live, stream text in pieces that add up
    live_streams = "".join(o["text"] for o in arrived if o["output_type"] == "stream" and o["name"] == "stdout")
    assert live_streams == "one\ntwo\nthree\n"
    assert [o for o in arrived if o["output_type"] != "stream"] == [o for o in result.outputs if o["output_type"] != "stream"]

    counted = await kernel.execute("6 * 7", timeout=10)
    (value,) = counted.outputs
    assert value == {
        "output_type": "execute_result", "data": {"text/plain": "42"}, "metadata": {},
        "execution_count": counted.execution_count,
    }
    assert counted.execution_count == result.execution_count + 1


async def test_each_output_is_capped_with_a_marker(jp_serverapp, workspace, jp_asyncio_loop):
    path, cwd = workspace
    kernel = KernelSession(jp_serverapp.kernel_manager, kernel_name="python3", path=path, cwd=cwd, output_cap=1000)
    try:
        code = (
            "from IPython.display import HTML\nprint('x' * 3000)\n"
            "display(HTML('<b>' + 'y' * 3000 + '</b>'))\n"
            "for i in range(20):\n    display(HTML('<i>' + 'z' * 500 + '</i>'))"
        )
        result = await kernel.execute(code, timeout=30)
        stream, html, *rest = result.outputs
        assert stream["text"] == "x" * 1000 + "\n[... output truncated: 2001 characters omitted ...]"
        assert html["metadata"] == {"dsagent_truncated": True} and list(html["data"]) == ["text/plain"]
        assert html["data"]["text/plain"].endswith("[... output truncated: text/html omitted ...]")
        # all outputs together stay within four times the cap; the rest is counted, not kept
        assert sum(len(o.get("text", "")) + len(str(o.get("data", ""))) for o in result.outputs) < 6000
        assert rest[-1]["output_type"] == "stream" and "more outputs omitted" in rest[-1]["text"]
    finally:
        await kernel.shutdown()
