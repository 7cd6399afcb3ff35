"""Code run inside the agent's kernel: start-up setup, and a namespace description for the model.

Both run silently (``store_history=False``). The description is a helper the setup defines under a
hidden name (``__dsagent_state``, skipped like every ``_`` name) and requests ask for it as a
``user_expressions`` entry, even the agent's own cells (no second round trip); when the helper is
gone (``%reset``) the full code defines it again.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from ..models import KernelState

_WORKSPACE_MARK = "dsagent-workspace-found:"
_INCARNATION_MARK = "dsagent-kernel-incarnation:"
MESSAGE_CHARS = 4_000_000

# A kernel behind a gateway may run on a host without the server's files: it says whether it found
# the workspace (first, so a later failure cannot hide it). A single huge write (``print`` of a 50 MB
# string) would leave the kernel as one iopub message that every client of the kernel (ours, the
# server's activity watcher) receives and decodes whole; the kernel's output streams send what they
# buffered in messages of at most ``MESSAGE_CHARS`` characters instead, so the server's memory and
# event loop only ever see small messages. (IPython swaps the streams' ``write`` around every cell, so
# the split is made where ipykernel turns its buffer into messages.)
_SETUP = """\
def __dsagent_setup(cwd, own):
    import os, sys, warnings
    found = os.path.isdir(cwd)
    print("%s", found)
    if own:
        if found:
            os.chdir(cwd)
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
    if own or "matplotlib.pyplot" not in sys.modules:  # a user's own backend choice stays
        get_ipython().run_line_magic("matplotlib", "inline")
    __dsagent_split_writes()
def __dsagent_split_writes(limit=%d):
    import sys
    for stream in (sys.stdout, sys.stderr):
        flush_buffers = getattr(stream, "_flush_buffers", None)  # ipykernel's OutStream
        if flush_buffers is None or getattr(flush_buffers, "splits", False):
            continue
        def pieces(flush_buffers=flush_buffers):
            for parent, text in flush_buffers():
                for start in range(0, max(len(text), 1), limit):
                    yield parent, text[start:start + limit]
        pieces.splits = True
        stream._flush_buffers = pieces
try:
    __dsagent_setup(%r, %r)
finally:
    del __dsagent_split_writes
    del __dsagent_setup
try:  # which namespace this is: a new process (or a %%reset one) draws a new id, a reconnect keeps it
    __dsagent_incarnation
except NameError:
    __dsagent_incarnation = __import__("uuid").uuid4().hex
print("%s", __dsagent_incarnation)
"""
# the agent's own kernel starts with the imports its prompt promises; a user's kernel is left as it is
_IMPORTS = """\
import os
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
"""

# Returns one JSON line. Cheap by design: no full repr of DataFrames or huge containers
# (reprlib bounds them), every value guarded so one odd object cannot fail the whole call.
_HELPER = """\
def __dsagent_state():
    import functools, inspect, json, reprlib, sys, types
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    skip = {"In", "Out", "get_ipython", "exit", "quit", "open"}

    def kind(v):
        if pd is not None and isinstance(v, pd.DataFrame):
            return "DataFrame"
        if pd is not None and isinstance(v, pd.Series):
            return f"Series[{len(v)}]"
        if np is not None and isinstance(v, np.ndarray):
            return f"ndarray{v.shape}"
        if isinstance(v, (list, tuple, set, frozenset, dict)):
            return f"{type(v).__name__}[{len(v)}]"
        if isinstance(v, type):
            return "class"
        if inspect.isroutine(v) or isinstance(v, functools.partial):
            return "function"
        return type(v).__name__

    def preview(v):
        if pd is not None and isinstance(v, pd.DataFrame):
            return f"DataFrame with {v.shape[0]} rows x {v.shape[1]} columns"
        if pd is not None and isinstance(v, pd.Series):
            return f"Series {v.name!r}: {len(v)} values, dtype {v.dtype}"
        return short.repr(v)

    def frame(name, v):
        cols = v.columns[:50]
        return {
            "name": name,
            "shape": [int(n) for n in v.shape],
            "columns": [str(c) for c in cols],
            "dtypes": {str(c): str(t) for c, t in v.dtypes.iloc[:50].items()},
            "memory_mb": round(float(v.memory_usage(deep=True).sum()) / 2**20, 2),
        }

    variables, dataframes, imports = [], [], []
    for name, v in list(globals().items()):
        if name.startswith("_") or name in skip:
            continue
        if isinstance(v, types.ModuleType):
            imports.append(name)
            continue
        try:
            entry = {"name": name, "type": kind(v)}
        except Exception:
            entry = {"name": name, "type": type(v).__name__}
        try:
            entry["value_preview"] = preview(v)[:80]
        except Exception:
            entry["value_preview"] = f"<{type(v).__name__}>"
        variables.append(entry)
        if entry["type"] == "DataFrame":
            try:
                dataframes.append(frame(name, v))
            except Exception:
                dataframes.append({"name": name, "shape": [0, 0], "columns": [], "dtypes": {}, "memory_mb": 0.0})
    return json.dumps({"variables": variables, "dataframes": dataframes, "imports": imports})
"""
STATE_EXPRESSION = "__dsagent_state()"
# for a kernel that lost the helper: compiling this cell costs far more than calling the helper
INTROSPECT_CODE = _HELPER + "print(__dsagent_state())\n"


def setup_code(cwd: str, *, own: bool = True) -> str:
    """The setup cell for a kernel whose workspace is ``cwd`` (it also defines the state helper).

    ``own=False``: the kernel of a user's notebook. Its namespace gains only ``__dsagent_state`` and
    ``__dsagent_incarnation``; its working directory, warning filters and imports stay the user's
    (matplotlib is made inline only when the user has not imported it yet).
    """
    setup = _SETUP % (_WORKSPACE_MARK, MESSAGE_CHARS, cwd, own, _INCARNATION_MARK)
    return setup + (_IMPORTS if own else "") + _HELPER


def workspace_found(setup_stdout: str) -> bool:
    """False only when the setup cell reported that the kernel cannot see its workspace."""
    return f"{_WORKSPACE_MARK} False" not in setup_stdout


def incarnation_of(setup_stdout: str) -> str | None:
    """The namespace id the setup cell printed (None if it did not get that far)."""
    for line in setup_stdout.splitlines():
        if line.startswith(_INCARNATION_MARK):
            return line[len(_INCARNATION_MARK) :].strip() or None
    return None


def parse_expression(reply: dict[str, Any]) -> KernelState | None:
    """The state a ``user_expressions`` entry evaluated after a cell, or None when it failed."""
    if reply.get("status") != "ok":
        return None
    text = reply.get("data", {}).get("text/plain", "")
    try:
        return KernelState(**json.loads(ast.literal_eval(text)), is_running=True)
    except (ValueError, SyntaxError, TypeError):
        return None


def parse_state(stdout: str) -> KernelState:
    """Read the helper's JSON line (the last one, in case some ``__repr__`` printed)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the introspection helper printed nothing")
    return KernelState(**json.loads(lines[-1]), is_running=True)
