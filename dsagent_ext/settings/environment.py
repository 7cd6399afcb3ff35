"""Reading the DSAgent environment variables that settings fall back to."""

from __future__ import annotations

import os


def env(name: str, fallback: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or fallback


def env_bool(name: str) -> bool:
    return (env(name) or "").lower() in {"1", "true", "yes", "on"}


def env_list(name: str) -> list[str]:
    """A comma-separated variable as a list (``gpt-4o, ollama/*``)."""
    return [item.strip() for item in (env(name) or "").split(",") if item.strip()]


def env_float(name: str) -> float | None:
    value = env(name)
    return float(value) if value else None
