"""The tag protocol parser, and the prompt that teaches the protocol."""

from __future__ import annotations

import random
from datetime import date

import pytest

from dsagent_ext.engine.prompt import build_system_prompt, describe_kernel
from dsagent_ext.engine.protocol import ParsedReply, parse_plan, parse_reply
from dsagent_ext.models import DataFrameInfo, KernelState, KernelVariable

# --- code -------------------------------------------------------------------------------------


def test_closed_code() -> None:
    reply = parse_reply("Loading it.\n<code>\nimport pandas as pd\ndf = pd.read_csv('data/a.csv')\n</code>")
    assert reply.code == "import pandas as pd\ndf = pd.read_csv('data/a.csv')"
    assert reply.text == "Loading it."
    assert not reply.has_answer and reply.plan is None and reply.intent is None


def test_unclosed_code_runs_to_the_end() -> None:
    # The stop sequence ``</code>`` removes the closing tag.
    reply = parse_reply("<intent>simple</intent>\nCounting rows.\n<code>\nprint(len(df))\n\n")
    assert reply.code == "print(len(df))"
    assert reply.intent == "simple"
    assert reply.text == "Counting rows."


@pytest.mark.parametrize("tag", ["<CODE>", "<Code>", "< code >"])
def test_tags_are_case_insensitive(tag: str) -> None:
    assert parse_reply(f"{tag}x = 1</code>").code == "x = 1"


@pytest.mark.parametrize(
    "opening, cell",
    [
        ('<code cell="1">', 1), ("<code cell='12'>", 12), ("<code cell=3>", 3), ('<code cell="[2]">', 2),
        ('< code  cell = "4" >', 4), ('<CODE CELL="5">', 5), ("<code>", None), ('<code cell="x">', None),
        ('<code lang="python">', None),
    ],
)
def test_code_may_name_the_cell_it_rewrites(opening: str, cell: int | None) -> None:
    reply = parse_reply(f"Fixing the typo.\n{opening}\ntotal = sum(values)\n")
    assert reply.code == "total = sum(values)" and reply.cell == cell
    assert reply.text == "Fixing the typo."


def test_a_cell_without_code_is_no_edit() -> None:
    reply = parse_reply('<code cell="1"></code>Nothing to change.')
    assert reply.code is None and reply.cell is None and reply.text == "Nothing to change."


def test_tag_like_prose_is_not_a_code_tag() -> None:
    reply = parse_reply("Compare with a <code and b> here.\n<answer>done</answer>")
    assert reply.code is None and reply.answer == "done"


def test_only_the_first_code_block_runs() -> None:
    reply = parse_reply("<code>a = 1</code>\nthen\n<code>b = 2</code>")
    assert reply.code == "a = 1"
    assert "b = 2" not in reply.text and reply.text == "then"


def test_fence_inside_code_tag_is_removed() -> None:
    assert parse_reply("<code>\n```python\nx = 1\ny = 2\n```\n</code>").code == "x = 1\ny = 2"
    assert parse_reply("<code>```py\nx = 1\n").code == "x = 1"


def test_empty_code_is_none() -> None:
    reply = parse_reply("Nothing to run <code>  \n </code>")
    assert reply.code is None
    assert reply.text == "Nothing to run"


def test_code_keeps_inner_indentation_and_comparisons() -> None:
    code = "for i in range(3):\n    if i < 2 and i > 0:\n        print('<b>')"
    assert parse_reply(f"<code>\n{code}\n").code == code


@pytest.mark.parametrize("label", ["python", "py", "Python", "python3"])
def test_fenced_python_is_the_fallback(label: str) -> None:
    reply = parse_reply(f"I will check.\n```{label}\nprint(df.shape)\n```\nDone soon.")
    assert reply.code == "print(df.shape)"
    assert reply.text == "I will check.\n\nDone soon."


def test_generic_fence_is_not_code() -> None:
    reply = parse_reply("The layout:\n```\ndata/\n  sales.csv\n```\nand a call:\n```\nprint(1)\n```")
    assert reply.code is None
    assert "sales.csv" in reply.text


def test_fenced_python_inside_answer_is_not_code() -> None:
    reply = parse_reply("<answer>Reuse it with:\n```python\nmodel.predict(X)\n```\n")
    assert reply.code is None
    assert reply.has_answer and "model.predict(X)" in reply.answer


def test_code_tag_wins_over_fence() -> None:
    reply = parse_reply("```python\nfirst()\n```\n<code>second()")
    assert reply.code == "second()"


# --- answer, intent, think ----------------------------------------------------------------------


def test_closed_and_unclosed_answer() -> None:
    closed = parse_reply("<answer>\n- mean is **4.2**\n</answer>")
    unclosed = parse_reply("Finished.\n<answer>\n- mean is **4.2**\n")
    assert closed.has_answer and closed.answer == "- mean is **4.2**" and closed.text == ""
    assert unclosed.has_answer and unclosed.answer == "- mean is **4.2**" and unclosed.text == "Finished."


def test_unclosed_answer_keeps_inline_html_code() -> None:
    reply = parse_reply("<answer>Call <code>df.describe()</code> to see the summary.\n")
    assert reply.answer == "Call <code>df.describe()</code> to see the summary."
    assert reply.code is None


def test_unclosed_code_keeps_tag_like_strings() -> None:
    reply = parse_reply('<code>\nhtml = "<answer>" + "<plan>"\nprint(html)\n')
    assert reply.code == 'html = "<answer>" + "<plan>"\nprint(html)'
    assert not reply.has_answer and reply.plan is None


def test_empty_answer_still_counts() -> None:
    reply = parse_reply("<answer>")
    assert reply.has_answer and reply.answer == ""


@pytest.mark.parametrize(
    ("raw", "intent"),
    [
        ("<intent>question</intent>", "question"),
        ("<intent> COMPLEX </intent>", "complex"),
        ("<Intent>simple", "simple"),
        ("<intent>simple task</intent>", "simple"),
        ("<intent>hard</intent>", None),
        ("<intent></intent>", None),
    ],
)
def test_intent(raw: str, intent: str | None) -> None:
    assert parse_reply(raw + "\nText").intent == intent


def test_unclosed_intent_stops_at_the_next_tag() -> None:
    reply = parse_reply("<intent>complex\n<plan>\n1. [ ] a\n2. [ ] b\n3. [ ] c\n</plan>")
    assert reply.intent == "complex" and reply.plan is not None and reply.plan.total_steps == 3


@pytest.mark.parametrize("tag", ["think", "thinking", "THINK"])
def test_think(tag: str) -> None:
    reply = parse_reply(f"<{tag}>The column may be text.</{tag}>\nConverting.\n<code>df.x = df.x.astype(int)")
    assert reply.thinking == "The column may be text."
    assert reply.text == "Converting."
    assert reply.code == "df.x = df.x.astype(int)"


def test_tags_mentioned_inside_think_are_not_acted_on() -> None:
    reply = parse_reply("<think>I should use <code> then <answer>.</think>Answering directly.")
    assert reply.thinking == "I should use <code> then <answer>."
    assert reply.code is None and not reply.has_answer
    assert reply.text == "Answering directly."


def test_unclosed_think_ends_at_the_next_tag() -> None:
    reply = parse_reply("<think>hmm\n<code>x = 1")
    assert reply.thinking == "hmm" and reply.code == "x = 1"


# --- plan ---------------------------------------------------------------------------------------

FULL = """<intent>complex</intent>
Three steps.
<plan>
1. [x] Load data/sales.csv
2. [ ] Clean missing values
3. [ ] Plot revenue by month
</plan>
<code>
sales = sales.dropna()
"""


def test_full_reply() -> None:
    reply = parse_reply(FULL)
    assert reply.intent == "complex"
    assert reply.text == "Three steps."
    assert reply.code == "sales = sales.dropna()"
    plan = reply.plan
    assert plan is not None
    assert [(s.number, s.description, s.completed) for s in plan.steps] == [
        (1, "Load data/sales.csv", True),
        (2, "Clean missing values", False),
        (3, "Plot revenue by month", False),
    ]
    assert plan.raw_text.startswith("1. [x] Load") and plan.raw_text.endswith("by month")
    assert (plan.total_steps, plan.completed_steps, plan.is_complete) == (3, 1, False)


def test_unclosed_plan_runs_to_the_next_tag() -> None:
    reply = parse_reply("<plan>\n1. [ ] a\n2. [ ] b\nNow step 1.\n<code>x = 1")
    assert reply.plan is not None and reply.plan.total_steps == 2
    assert reply.plan.raw_text == "1. [ ] a\n2. [ ] b\nNow step 1."
    assert reply.code == "x = 1"


def test_unclosed_plan_runs_to_the_end() -> None:
    reply = parse_reply("<plan>\n1. [x] a\n2. [X] b")
    assert reply.plan is not None and reply.plan.is_complete and reply.plan.completed_steps == 2


@pytest.mark.parametrize(
    "lines",
    [
        "1. [ ] a\n2. [x] b",
        "1) [ ] a\n2) [x] b",
        "1.[ ] a\n2.[x] b",
        "   1. [ ] a\n   2. [X] b",
        "- [ ] a\n- [x] b",
        "* [ ] a\n* [x] b",
        "1. [] a\n2. [ x ] b",
        "Steps:\n1. [ ] a\nsome note\n2. [x] b\n",
    ],
)
def test_plan_line_variants(lines: str) -> None:
    plan = parse_plan(lines)
    assert plan is not None
    assert [(s.number, s.description, s.completed) for s in plan.steps] == [(1, "a", False), (2, "b", True)]


def test_plan_keeps_the_models_numbers() -> None:
    plan = parse_plan("3. [x] c\n4. [ ] d")
    assert plan is not None and [s.number for s in plan.steps] == [3, 4]


@pytest.mark.parametrize(
    "raw", ["", "   ", "just prose", "1. Load\n2. Plot", "- a\n- b", "1. [-] a", "[link](x)"]
)
def test_no_checklist_is_no_plan(raw: str) -> None:
    assert parse_plan(raw) is None
    assert parse_reply(f"<plan>{raw}</plan>").plan is None


def test_parse_plan_accepts_a_human_edit() -> None:
    plan = parse_plan("  1. [x] Load\n  2. [ ] Use a log scale for the plot  \n")
    assert plan is not None and plan.raw_text == "1. [x] Load\n  2. [ ] Use a log scale for the plot"
    assert plan.steps[1].description == "Use a log scale for the plot"


def test_parse_plan_never_raises_on_non_text() -> None:
    assert parse_plan(None) is None  # type: ignore[arg-type]


# --- plain and garbled text ---------------------------------------------------------------------


def test_plain_text() -> None:
    text = "The median is 3.\n\nAsk me anything else."
    assert parse_reply(text) == ParsedReply(text=text)


def test_stray_closing_tags_and_blank_runs_are_dropped() -> None:
    reply = parse_reply("Hello</code>\n\n\n\n</answer>world</plan>")
    assert reply == ParsedReply(text="Hello\n\nworld")


def test_non_tags_stay_in_the_text() -> None:
    text = "Use <b>bold</b>, a < b, <codes> and <planning>."
    assert parse_reply(text).text == text


@pytest.mark.parametrize("value", [None, "", 42, b"<code>x", "<", "<code", "</code>", "<plan><plan><plan>"])
def test_odd_inputs(value: object) -> None:
    assert isinstance(parse_reply(value), ParsedReply)  # type: ignore[arg-type]


def test_random_garble_never_raises() -> None:
    pieces = ["<code>", "</code>", "<plan>", "</plan>", "<answer>", "</answer>", "<think>", "</thinking>",
              "<intent>", "simple", "1. [x] a", "- [ ] b", "```python\n", "```", "\n", "x = 1", "<", ">", " "]
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        reply = parse_reply(text)
        assert isinstance(reply.text, str)
        assert reply.code is None or reply.code == reply.code.strip()


# --- the prompt teaches what the parser reads ---------------------------------------------------


def test_prompt_contents() -> None:
    prompt = build_system_prompt("DataFrames:\n  sales: 10 rows x 2 cols [a, b]", today=date(2025, 3, 4))
    for expected in ["<intent>", "<plan>", "N. [ ]", "[x]", "<code>", "<answer>", "data/", "artifacts/",
                     "notebooks/", "2025-03-04", "sales: 10 rows x 2 cols", "Never invent"]:
        assert expected in prompt
    assert "No kernel state" in build_system_prompt("  ")


def test_prompt_example_parses() -> None:
    prompt = build_system_prompt("")
    example = prompt.split("Example of a reply in the middle of a task:\n", 1)[1].split("\n\n", 1)[0]
    reply = parse_reply(example)
    assert reply.plan is not None and (reply.plan.total_steps, reply.plan.completed_steps) == (3, 1)
    assert reply.code is not None and "savefig" in reply.code


def test_describe_empty_kernel() -> None:
    assert describe_kernel(KernelState()) == "The kernel is empty."


def test_describe_kernel() -> None:
    frame = DataFrameInfo(
        name="df", shape=[150, 9], columns=[f"c{i}" for i in range(9)], dtypes={}, memory_mb=0.1
    )
    state = KernelState(
        dataframes=[frame],
        variables=[
            KernelVariable(name="df", type="DataFrame"),
            KernelVariable(name="n", type="int", value_preview="150"),
            KernelVariable(name="text", type="str", value_preview="line1\nline2"),
        ]
        + [KernelVariable(name=f"v{i}", type="float") for i in range(12)],
        imports=["pandas as pd", "numpy as np"],
    )
    described = describe_kernel(state)
    assert "  df: 150 rows x 9 cols [c0, c1, c2, c3, c4, c5, ... (+3 more)]" in described
    assert "  n: int = 150" in described
    assert "  text: str\n" in described
    assert "df: DataFrame" not in described
    assert "  ... and 4 more" in described  # 14 plain variables, 10 shown
    assert described.endswith("Imports: pandas as pd, numpy as np")


def test_only_a_notebook_session_is_taught_cell_edits() -> None:
    attached = build_system_prompt("", notebook="analysis.ipynb", workspace="dsagent/sessions/s")
    assert '<code cell="3">' in attached and "replaces cell [3]" in attached
    assert '<code cell="' not in build_system_prompt("")
    assert '<code cell="' not in build_system_prompt("", workspace_reachable=False, notebook="analysis.ipynb")
