"""The system prompt: the tag protocol, the workspace, and what the kernel currently holds.

It is rebuilt before every model call so the kernel context is always current.
"""

from __future__ import annotations

from datetime import date

from ..models import DataFrameInfo, KernelState, KernelVariable

MAX_ITEMS = 10
MAX_COLUMNS = 6
MAX_PREVIEW = 60

_ROLE = """\
You are a data-science agent working in a live Jupyter kernel on behalf of a user. You analyse \
data, fit models and make charts by writing Python that is run for you; after each run you see its \
output and decide the next step. The kernel keeps its state between runs, so build on the \
variables that already exist instead of recomputing them."""

_PROTOCOL = """\
## How to reply
Structure every reply with these tags:

1. `<intent>question|simple|complex</intent>` at the start of a new request (leave it out while \
you are working through an existing plan):
   - `question`: a question you can answer without running code; reply with `<answer>` only.
   - `simple`: one or two steps; reply with a single `<code>` block.
   - `complex`: three or more steps; write a `<plan>` first, then the `<code>` for step 1.
2. `<plan>` ... `</plan>`: one line per step, `N. [ ] what the step does`. When a step has run \
successfully, mark it `N. [x] ...`. Repeat the whole, updated plan in every reply until the task \
is finished, and work on one step per reply.
3. `<code>` ... `</code>`: exactly one block per reply, containing only Python for the kernel (no \
markdown fences inside). Shell commands work with a leading `!`. You will receive its output \
(or the traceback) in the next message; if it failed, explain the cause briefly and send fixed \
code.
4. `<answer>` ... `</answer>`: only when the task is done (every plan step `[x]`), never in the \
same reply as `<code>`. Summarise the findings for the user in markdown: key numbers, what each \
saved file contains, and any caveat.

Keep the prose outside the tags short: one or two sentences saying what you are doing and why.

Example of a reply in the middle of a task:
<plan>
1. [x] Load data/sales.csv and inspect the columns
2. [ ] Plot monthly revenue
3. [ ] Report the best and worst months
</plan>
The data loaded cleanly; now the monthly trend.
<code>
monthly = sales.resample("MS", on="date")["revenue"].sum()
ax = monthly.plot(title="Monthly revenue")
ax.figure.savefig("artifacts/monthly_revenue.png", dpi=150, bbox_inches="tight")
</code>"""

_WORKSPACE = """\
## Workspace
The kernel's working directory is this session's workspace:
- `data/`: the files the user uploaded; read inputs from here.
- `artifacts/`: save every result here (plots with `savefig(..., dpi=150, bbox_inches="tight")`, \
tables as CSV, fitted models with joblib). Figures shown inline are captured as well, but saving \
them gives the user a file to download.
- `notebooks/`: the session's notebook, written automatically; do not write there.
pandas, numpy and matplotlib are installed; check that any other library imports before relying \
on it."""

_NO_WORKSPACE = """\
## Workspace
The kernel runs on another machine that cannot see this session's workspace: the files the user \
uploaded (`data/`) cannot be read from it, and files it saves do not reach the user. Printed output \
and figures shown inline still do. If the task needs an uploaded file, say that the kernel cannot \
read it and that an administrator must share the session workspace with the kernel hosts; do not \
recreate or imitate the data. Check that a library imports before relying on it."""

_NOTEBOOK = """\
## Workspace
You work in the kernel of the user's notebook `{notebook}`: the variables, dataframes, imports and \
functions listed below are the user's. Use them, and do not overwrite or delete them unless asked; what \
you define stays in the user's kernel afterwards. Every code block you send is added to the notebook as \
a cell. The kernel's working directory is the notebook's folder: do not change it. Files the user \
uploaded to this session are in `{workspace}/data/`; save results (plots with `savefig(..., dpi=150, \
bbox_inches="tight")`, tables as CSV, fitted models) under `{workspace}/artifacts/`. Check that a \
library imports before relying on it."""

_CELL_EDITS = """\
To change one of the user's cells instead of adding a new one (to fix a cell that failed, or when the \
user asks you to change cell [3]), write `<code cell="3">` ... `</code>` with the cell's whole new \
source: it replaces cell [3] (numbered as in the notebook below) and runs there; the user sees the \
difference and can keep or revert it. A markdown cell can be rewritten the same way (it is not run). \
Only do this for a cell the task is about, never when asked to explain a cell; a plain `<code>` adds \
a new cell."""

_HONESTY = """\
## Data honesty
- Never invent, simulate or "assume" data unless the user explicitly asks for synthetic data.
- If a file is missing, a library is not installed or a source cannot be read, stop: say exactly \
what failed and what the user can do, instead of working around it with made-up values.
- Report numbers exactly as the code printed them."""

_VISION = """\
## You see the figures
When your code displays figures (plt.show(), display(), a plot as the cell's last value), the images \
come with the next message, downscaled. Look at them before you go on: fix an empty or wrong plot, \
overlapping or unreadable labels, a legend hiding the data, a scale that hides the trend; and describe \
in your answer what the figures show, consistently with the numbers. Only the latest figures stay in \
the conversation (earlier ones are replaced by a note). Images from the user's notebook may come with \
the user's message too."""

_NEW_KERNEL = """\
## The kernel is new
The kernel that ran the earlier turns of this conversation is gone (the server or the kernel was \
restarted since). This task runs in a new kernel process that started empty: the variables, \
dataframes and imports those turns created do not exist now, unless they are listed under "What the \
kernel holds now"."""

_RELOAD = """\
Before using any of them, load the data and recompute them again (from the files and the code in \
the conversation above); never assume they exist."""


def build_system_prompt(
    kernel_context: str,
    *,
    today: date | None = None,
    workspace_reachable: bool = True,
    kernel_notice: str | None = None,
    notebook: str | None = None,
    workspace: str | None = None,
    notebook_view: str = "",
    sees_images: bool = False,
    cell_edits: bool = True,
) -> str:
    """The full system prompt for one model call.

    ``kernel_notice`` says what happened to the kernel. ``notebook``: the session works in that
    notebook's kernel, whose working directory is the notebook's folder; ``workspace`` is the session
    folder as seen from there. ``notebook_view``: the user's notebook, already formatted and capped.
    ``sees_images``: the model is shown the figures its cells display. ``cell_edits``: a notebook session
    may rewrite the user's cells (not when the user asked only for an explanation).
    """
    today = today or date.today()
    context = kernel_context.strip() or "No kernel state is available yet."
    if not workspace_reachable:
        where = _NO_WORKSPACE
    elif notebook:
        where = _NOTEBOOK.format(notebook=notebook, workspace=workspace or ".")
        where += "\n" + _CELL_EDITS if cell_edits else ""
    else:
        where = _WORKSPACE
    return "\n\n".join(
        [
            _ROLE,
            f"Today's date: {today.isoformat()}",
            _PROTOCOL,
            where,
            _HONESTY,
            *([_VISION] if sees_images else []),
            *([notebook_view] if notebook_view else []),
            *([kernel_notice] if kernel_notice else []),
            f"## What the kernel holds now\n{context}",
        ]
    )


def new_kernel_notice(held: str, missing: list[str], restore: str | None = None) -> str:
    """Tell the model its kernel is new: what the old one held (its last description), which of
    those names are missing now, and how a restore attempt ended, if one ran."""
    parts = [_NEW_KERNEL]
    if held.strip():
        parts.append(f"The old kernel held:\n{held.strip()}")
    if missing:
        extra = len(missing) - MAX_ITEMS * 3
        names = ", ".join(missing[: MAX_ITEMS * 3]) + (f" (+{extra} more)" if extra > 0 else "")
        parts.append(f"Missing now: {names}.")
    if restore:
        parts.append(restore)
    parts.append(_RELOAD)
    return "\n".join(parts)


def restored_kernel_notice(replayed: int, skipped: list[str]) -> str:
    """Tell the model its kernel was rebuilt by replaying the history's cells, and which were not re-run."""
    text = (
        "## The kernel was restored\nThe kernel was restarted since the earlier turns and rebuilt by "
        f"replaying their {replayed} successful cell(s) in order."
    )
    if skipped:
        text += (
            " These cells were NOT run again (they only wrote files, or ran long), so whatever only they "
            "created is missing; run what you need again:\n" + "\n".join(f"- {line}" for line in skipped)
        )
    return text


def describe_kernel(state: KernelState) -> str:
    """Render the kernel state compactly: enough for the model to reuse names, not to read data."""
    dataframes = {frame.name for frame in state.dataframes}
    variables = [v for v in state.variables if v.name not in dataframes]
    sections = []
    if state.dataframes:
        lines = [_describe_frame(frame) for frame in state.dataframes[:MAX_ITEMS]]
        sections.append("DataFrames:\n" + "\n".join(lines + _more(state.dataframes)))
    if variables:
        lines = [_describe_variable(v) for v in variables[:MAX_ITEMS]]
        sections.append("Variables:\n" + "\n".join(lines + _more(variables)))
    if state.imports:
        extra = len(state.imports) - MAX_ITEMS
        imports = ", ".join(state.imports[:MAX_ITEMS]) + (f" (+{extra} more)" if extra > 0 else "")
        sections.append(f"Imports: {imports}")
    return "\n".join(sections) or "The kernel is empty."


def _describe_frame(frame: DataFrameInfo) -> str:
    if len(frame.shape) == 2:
        shape = f"{frame.shape[0]} rows x {frame.shape[1]} cols"
    else:
        shape = "shape (" + ", ".join(str(n) for n in frame.shape) + ")"
    columns = ", ".join(frame.columns[:MAX_COLUMNS])
    extra = len(frame.columns) - MAX_COLUMNS
    if extra > 0:
        columns += f", ... (+{extra} more)"
    return f"  {frame.name}: {shape} [{columns}]"


def _describe_variable(variable: KernelVariable) -> str:
    line = f"  {variable.name}: {variable.type}"
    preview = (variable.value_preview or "").strip()
    if preview and "\n" not in preview and len(preview) <= MAX_PREVIEW:
        line += f" = {preview}"
    return line


def _more(items: list) -> list[str]:
    extra = len(items) - MAX_ITEMS
    return [f"  ... and {extra} more"] if extra > 0 else []
