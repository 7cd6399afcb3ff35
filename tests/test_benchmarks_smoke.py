"""The benchmark (``python benchmarks/run.py``) still runs end to end: tiny counts, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
FIGURES = {str(n) for n in range(1, 14)}


@pytest.mark.timeout(240)
def test_quick_run_reports_every_figure(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=230
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    assert {r["figure"] for r in rows} == FIGURES
    assert all(r["p50"] is not None for r in rows), [r["name"] for r in rows if r["p50"] is None]
    assert all(r["ok"] in (True, False, None) and (r["target"] or r["ok"] is None) for r in rows)
    assert "p50" in proc.stdout and "target" in proc.stdout  # the table was printed
