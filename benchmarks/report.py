"""Figures as rows: p50/p95, the floor measured in the same run, the ratio, the target, pass or miss."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil


def pct(samples: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of non-empty ``samples``."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    figure: str
    name: str
    p50: float | None
    p95: float | None = None
    unit: str = "ms"
    floor: float | None = None
    floor_name: str = ""
    target: str = ""
    ok: bool | None = None  # None: no target for this line
    n: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.p50 is None or not self.floor:
            return None
        return self.p50 / self.floor

    @classmethod
    def of(cls, figure: str, name: str, samples: list[float], **kw: Any) -> Row:
        """A row from raw samples (seconds are the caller's business: pass ms)."""
        if not samples:
            return cls(figure, name, None, None, n=0, **kw)
        return cls(figure, name, pct(samples, 50), pct(samples, 95), n=len(samples), **kw)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    """A fixed-width table, one line per row."""
    head = ["#", "figure", "p50", "p95", "floor (same run)", "ratio", "target", "result"]
    lines = [
        [
            r.figure,
            r.name + (f" [{r.note}]" if r.note else ""),
            _num(r.p50, r.unit),
            _num(r.p95, r.unit),
            f"{_num(r.floor, r.unit)} {r.floor_name}".strip() if r.floor is not None else "-",
            f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            r.target or "-",
            {True: "pass", False: "MISS", None: ""}[r.ok],
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json(path: Path, rows: list[Row], config: dict[str, Any], seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "finished": datetime.now(timezone.utc).isoformat(),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "config": config,
        "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
    }
    path.write_text(json.dumps(doc, indent=2))
