"""Where sessions live on disk, and the guards that keep every path inside them.

Layout: ``{root_dir}/{workspace_dir}/sessions/{session_id}/`` with ``data/``, ``artifacts/``,
``notebooks/``, ``logs/events.jsonl`` and ``session.json``. Everything under the server's root_dir,
so the file browser shows it and kernels can be started with a ``path=`` relative to it.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from datetime import datetime
from pathlib import Path, PurePosixPath

from ..models import FileCategory

SESSION_ID_PATTERN = r"[a-zA-Z0-9_-]{1,256}"
_SESSION_ID_RE = re.compile(rf"^{SESSION_ID_PATTERN}$")
_MAX_NAME_BYTES = 255


class InvalidName(ValueError):
    """A session id or file name that cannot be used; the message is safe to show to clients."""


def new_session_id() -> str:
    """``YYYYMMDD_HHMMSS_xxxxxx`` as DSAgent: sortable by creation, unique by the random tail."""
    return f"{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"


def check_session_id(session_id: str) -> str:
    if not _SESSION_ID_RE.match(session_id):
        raise InvalidName("Invalid session id: use 1-256 characters among letters, digits, '_' and '-'")
    return session_id


def safe_filename(filename: str) -> str:
    """Reduce a client-supplied name to a plain basename, or refuse it.

    Directory parts are dropped (``../../x.csv`` becomes ``x.csv``, backslashes count as separators);
    names that are empty, hidden, ``.``/``..``, contain control characters or are too long are refused.
    """
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/")
    name = PurePosixPath(name).name.strip()
    if not name or name in {".", ".."} or name.startswith("."):
        raise InvalidName("Invalid filename: empty, hidden, '.' and '..' names are not allowed")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidName("Invalid filename: control characters are not allowed")
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise InvalidName(f"Invalid filename: longer than {_MAX_NAME_BYTES} bytes")
    return name


class Workspace:
    """The sessions folder and path arithmetic relative to the server root."""

    def __init__(self, root: Path, sessions_dir: Path) -> None:
        self.root = root
        self.sessions_dir = sessions_dir

    @classmethod
    def under(cls, root: Path, workspace_dir: str) -> Workspace:
        """Resolve ``workspace_dir`` against ``root`` and refuse anything outside it."""
        base = (root / workspace_dir).resolve()
        if base != root and root not in base.parents:
            raise SystemExit(
                f"DSAgent: workspace_dir {workspace_dir!r} must be inside the server root_dir; "
                "set a relative DSAGENT_SESSIONS_DIR or c.DSAgent.workspace_dir."
            )
        sessions = base / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        return cls(root, sessions)

    def session_dir(self, session_id: str) -> Path:
        return self.sessions_dir / check_session_id(session_id)

    def category_dir(self, session_id: str, category: FileCategory) -> Path:
        return self.session_dir(session_id) / category.value

    def file_path(self, session_id: str, category: FileCategory, filename: str) -> Path:
        """The path of ``filename`` inside the category folder, never outside it."""
        folder = self.category_dir(session_id, category)
        path = folder / safe_filename(filename)
        if path.parent != folder:
            raise InvalidName("Invalid filename")
        return path

    def api_path(self, path: Path) -> str:
        """The server's API path (relative to root_dir, ``/``-separated) of a workspace path."""
        return path.relative_to(self.root).as_posix()

    def create_session_dirs(self, session_id: str) -> Path:
        folder = self.session_dir(session_id)
        for sub in [c.value for c in FileCategory] + ["logs"]:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return folder

    def session_ids(self) -> list[str]:
        """Ids of the session folders on disk (invalid names are ignored, never trusted)."""
        try:
            entries = list(os.scandir(self.sessions_dir))
        except FileNotFoundError:
            return []
        return [e.name for e in entries if e.is_dir() and _SESSION_ID_RE.match(e.name)]


def list_files(folder: Path) -> list[tuple[str, os.stat_result]]:
    """Plain, visible files of a folder with their stat, newest first (folders and temp files skipped)."""
    try:
        entries = [e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    stats = [(e.name, e.stat()) for e in entries]
    return sorted(stats, key=lambda item: item[1].st_mtime, reverse=True)
