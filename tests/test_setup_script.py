"""``scripts/test`` links the built panel into the environment for the browser tests, with the
command the installed JupyterLab offers for it (not one it reports as deprecated)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PANEL = ROOT / "dsagent_ext" / "labextension"


def test_the_panel_is_linked_with_a_current_command(tmp_path):
    if not (PANEL / "package.json").exists():
        pytest.skip("the panel is not built: scripts/test builds it")
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    (line,) = [line for line in lines if " develop " in line and not line.lstrip().startswith("#")]
    command = shlex.split(line.split("#")[0].split(">")[0])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(
        [*command, "--DevelopLabExtensionApp.sys_prefix=False", f"--DevelopLabExtensionApp.labextensions_dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "deprecated" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    link = tmp_path / "dsagent-ext"
    assert link.is_symlink() and link.resolve() == PANEL.resolve()
