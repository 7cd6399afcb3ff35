"""Parse one model reply of the tag protocol.

The model is called with ``stop=["</code>", "</answer>"]``, so closing tags are usually missing, and
models drift from the protocol in many small ways. Parsing is therefore tolerant and never raises:
whatever cannot be understood stays in the prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..models import PlanResponse, PlanStep

INTENTS = ("question", "simple", "complex")

# Opening or closing protocol tag, with ``name="value"`` attributes (``<code cell="3">``); ``thinking``
# before ``think`` so the longer name wins.
_TAG = re.compile(
    r"<\s*(/?)\s*(intent|plan|code|answer|thinking|think)((?:\s+[\w-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s<>\"']+))*)\s*>",
    re.IGNORECASE,
)
_CELL = re.compile(r"\bcell\s*=\s*[\"']?\s*\[?\s*(\d+)", re.IGNORECASE)
_CLOSE = {
    name: re.compile(rf"<\s*/\s*(?:{alt})\s*>", re.IGNORECASE)
    for name, alt in {
        "intent": "intent",
        "plan": "plan",
        "code": "code",
        "answer": "answer",
        "think": "thinking|think",
    }.items()
}
# Tags whose content is structured: an unexpected next tag ends them even before their closing tag.
_STRUCTURED = frozenset({"intent", "plan"})
# The stop sequences' tags: unclosed, they end the reply, so tags inside them are their content
# (markdown in an answer may use ``<code>``, Python may print ``"<answer>"``).
_TO_THE_END = frozenset({"code", "answer"})

_INTENT = re.compile(r"^\s*(question|simple|complex)\b", re.IGNORECASE)
_PLAN_LINE = re.compile(
    r"^(?:(\d+)\s*[.)]|[-*+\u2022])?\s*\[\s*([xX\u2713\u2714]?)\s*\]\s*(.*\S)\s*$"
)
_PYTHON_FENCE = re.compile(
    r"```[ \t]*(?:python3?|py|ipython)[ \t]*\r?\n(.*?)(?:```|\Z)", re.IGNORECASE | re.DOTALL
)
_FENCE_OPEN = re.compile(r"^```[\w+-]*[ \t]*\r?\n")
_FENCE_CLOSE = re.compile(r"\r?\n?```\s*$")
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")


@dataclass
class ParsedReply:
    """What one model reply asks for; ``text`` is its prose with every tag block removed."""

    intent: str | None = None
    plan: PlanResponse | None = None
    code: str | None = None
    cell: int | None = None  # ``<code cell="N">``: the code is the new source of the notebook's cell [N]
    has_answer: bool = False
    answer: str | None = None
    thinking: str | None = None
    text: str = ""


def parse_reply(text: str) -> ParsedReply:
    """Parse a reply; any input, even garbled or not a string, gives a result."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    blocks, prose = _split(text)
    first: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for name, attrs, content in blocks:
        first.setdefault(name, content)
        attributes.setdefault(name, attrs)

    code = _clean_code(first["code"]) if "code" in first else None
    if "code" not in first:
        code, prose = _fenced_python(prose)
    intent = _INTENT.match(first.get("intent", ""))
    thinking = first.get("think", "").strip()
    cell = _CELL.search(attributes.get("code", ""))
    return ParsedReply(
        intent=intent.group(1).lower() if intent else None,
        plan=parse_plan(first["plan"]) if "plan" in first else None,
        code=code,
        cell=int(cell.group(1)) if cell and "code" in first and code else None,
        has_answer="answer" in first,
        answer=first["answer"].strip() if "answer" in first else None,
        thinking=thinking or None,
        text=_prose(prose),
    )


def parse_plan(raw: str) -> PlanResponse | None:
    """Parse checklist lines (``1. [ ] step``, ``2) [x] step``, ``- [ ] step``); None when there are none.

    Also used for a plan a human edited, so the accepted forms are deliberately loose.
    """
    if not isinstance(raw, str):
        return None
    steps: list[PlanStep] = []
    for line in raw.splitlines():
        match = _PLAN_LINE.match(line.strip())
        if not match:
            continue
        number, mark, description = match.groups()
        steps.append(
            PlanStep(
                number=int(number) if number else len(steps) + 1,
                description=description,
                completed=bool(mark),
            )
        )
    if not steps:
        return None
    done = sum(step.completed for step in steps)
    return PlanResponse(
        steps=steps,
        raw_text=raw.strip(),
        total_steps=len(steps),
        completed_steps=done,
        is_complete=done == len(steps),
    )


def _split(text: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Cut the reply into tag blocks ``(name, attributes, content)`` and the prose pieces between them."""
    blocks: list[tuple[str, str, str]] = []
    prose: list[str] = []
    pos = 0
    while (tag := _next_open(text, pos)) is not None:
        prose.append(text[pos : tag.start()])
        name = _name(tag)
        end, pos = _block_end(text, tag, name)
        blocks.append((name, tag.group(3) or "", text[tag.end() : end]))
    prose.append(text[pos:])
    return blocks, prose


def _next_open(text: str, pos: int) -> re.Match[str] | None:
    for tag in _TAG.finditer(text, pos):
        if not tag.group(1):
            return tag
    return None


def _name(tag: re.Match[str]) -> str:
    name = tag.group(2).lower()
    return "think" if name == "thinking" else name


def _block_end(text: str, tag: re.Match[str], name: str) -> tuple[int, int]:
    """Where a block's content ends and where scanning resumes.

    A closed block runs to its closing tag; an unclosed ``<code>`` or ``<answer>`` to the end, any
    other unclosed block to the next opening tag (or, for a plan or intent, a markdown fence).
    """
    close = _CLOSE[name].search(text, tag.end())
    following = _next_open(text, tag.end())
    if close and (following is None or name not in _STRUCTURED or close.start() <= following.start()):
        return close.start(), close.end()
    if name in _TO_THE_END:
        return len(text), len(text)
    end = following.start() if following is not None else len(text)
    if name in _STRUCTURED:
        fence = text.find("```", tag.end(), end)
        end = fence if fence >= 0 else end
    return end, end


def _clean_code(code: str) -> str | None:
    """Strip whitespace and a markdown fence the model may have put inside ``<code>``."""
    code = code.strip()
    if code.startswith("```"):
        code = _FENCE_CLOSE.sub("", _FENCE_OPEN.sub("", code + "\n", count=1)).strip()
    return code or None


def _fenced_python(prose: list[str]) -> tuple[str | None, list[str]]:
    """Fallback for a reply without ``<code>``: the first ```python block of the prose, taken out of it.

    Only labelled fences count: a bare fence is usually illustrative output or a file tree.
    """
    for i, piece in enumerate(prose):
        match = _PYTHON_FENCE.search(piece)
        if match and (code := match.group(1).strip()):
            rest = piece[: match.start()] + piece[match.end() :]
            return code, [*prose[:i], rest, *prose[i + 1 :]]
    return None, prose


def _prose(pieces: list[str]) -> str:
    """Join prose pieces, dropping stray tags and runs of blank lines."""
    parts = (_TAG.sub("", piece).strip() for piece in pieces)
    return _BLANK_LINES.sub("\n\n", "\n\n".join(part for part in parts if part))
