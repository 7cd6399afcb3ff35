"""DSAgent for Jupyter: an autonomous data-science agent served by the Jupyter server."""

from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict]:
    from .app import DSAgent

    return [{"module": "dsagent_ext", "app": DSAgent}]


def _jupyter_labextension_paths() -> list[dict]:
    return [{"src": "labextension", "dest": "dsagent-ext"}]
