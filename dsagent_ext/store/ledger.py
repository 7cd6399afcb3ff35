"""What each user has spent per UTC day: ``{workspace_dir}/spending.json``, so a restart resets nothing.

One small JSON file, rewritten atomically after each model round (a few users and days at most:
days older than ``KEEP_DAYS`` are dropped on write). It lies in the server's files like the sessions,
so it is as private, and as durable, as they are.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from ..models import Spent, Usage

LEDGER_FILE = "spending.json"
KEEP_DAYS = 31


def today() -> str:
    """The ledger's day: UTC, so it turns over at the same moment for every user of a server."""
    return datetime.now(timezone.utc).date().isoformat()


class Ledger:
    """``{day: {user: Spent}}`` in memory; ``dump`` gives the text to write to ``path``."""

    def __init__(self, folder: Path, log: logging.Logger) -> None:
        self.path = folder / LEDGER_FILE
        self.log = log
        self.days: dict[str, dict[str, Spent]] = {}
        try:
            raw = json.loads(self.path.read_text("utf-8"))
            self.days = {day: {user: Spent(**spent) for user, spent in users.items()} for day, users in raw.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as e:  # a damaged ledger must not stop the server
            log.warning("DSAgent: spending ledger unreadable, starting a new one: %s", e)

    def spent(self, user: str, day: str | None = None) -> Spent:
        return self.days.get(day or today(), {}).get(user) or Spent()

    def add(self, user: str, usage: Usage) -> None:
        """Count one model call's usage for ``user`` today (write it with ``save``)."""
        users = self.days.setdefault(today(), {})
        users[user] = users.get(user, Spent()).plus(usage)

    def dump(self) -> str:
        """The file's text (kept days only), built on the caller's thread while nothing changes it."""
        for day in sorted(self.days)[:-KEEP_DAYS]:
            del self.days[day]
        return json.dumps({day: {u: s.model_dump() for u, s in users.items()} for day, users in self.days.items()})
