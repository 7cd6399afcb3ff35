"""``/openapi.json`` and a ``/docs`` page rendering it, self-contained (no CDN: servers may be offline)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated

from .openapi import build_spec
from .base import DSAgentHandler

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}
.get{color:#1565c0}.post{color:#2e7d32}.put{color:#ef6c00}.delete{color:#c62828}
code{background:#f4f4f4;padding:0 .2rem}pre{background:#f4f4f4;padding:.6rem;overflow:auto;font-size:.8rem}
td{padding:0 .6rem 0 0;vertical-align:top}
"""


class OpenAPIHandler(DSAgentHandler):
    @allow_unauthenticated
    def get(self) -> None:
        """Return the OpenAPI document."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(build_spec(self.api_settings.prefix.rstrip("/") or "/")))


class DocsHandler(DSAgentHandler):
    @allow_unauthenticated
    def get(self) -> None:
        """Render the API reference as HTML."""
        spec = build_spec(self.api_settings.prefix.rstrip("/") or "/")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render(spec))


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list[{_schema_name(schema.get('items', {}))}]"
    return schema.get("type", "file")


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    params = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{p['in']}</td><td><code>{escape(json.dumps(p['schema']))}</code></td></tr>"
        for p in op["parameters"]
    )
    body = op.get("requestBody", {}).get("content", {})
    bodies = ", ".join(f"{escape(media)}: {escape(_schema_name(c['schema']))}" for media, c in body.items())
    responses = ", ".join(
        f"{code} {escape(_schema_name(next(iter(r.get('content', {}).values()), {}).get('schema', {})) if r.get('content') else '')}"
        for code, r in op["responses"].items()
    )
    return (
        f'<div class="op"><span class="m {method}">{method}</span><code>{escape(path)}</code> — {escape(op["summary"])}'
        + (f"<table>{params}</table>" if params else "")
        + (f"<div>Body: {bodies}</div>" if bodies else "")
        + f"<div>Responses: {responses}</div></div>"
    )


def render(spec: dict[str, Any]) -> str:
    ops = "".join(_operation(path, method, op) for path, item in spec["paths"].items() for method, op in item.items())
    schemas = "".join(
        f"<details><summary><code>{escape(name)}</code></summary><pre>{escape(json.dumps(s, indent=2))}</pre></details>"
        for name, s in spec["components"]["schemas"].items()
    )
    base = escape(spec["servers"][0]["url"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(spec['info']['title'])}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(spec['info']['title'])} {escape(spec['info']['version'])}</h1>"
        f"<p>Paths are relative to <code>{base}</code>. Machine-readable: <a href='openapi.json'>openapi.json</a>. "
        f"Authenticate with <code>X-API-Key</code> when the server has a key, or the Jupyter server's own credentials.</p>"
        f"{ops}<h2>Schemas</h2>{schemas}</body></html>"
    )
