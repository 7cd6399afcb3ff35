"""Traversal and hostile names: file names on upload, download and delete of files and artifacts, and
hostile session ids on every route of the OpenAPI document and on the WebSocket.

The upload and URL corpora are test_files.py's (data files, in-process server); here they run against
``dsagent serve`` on the artifacts routes, with more URL payloads. Requests are sent byte for byte
(``http.client``), so no client normalises ``..`` or decodes ``%2F`` before the server sees it.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

import pytest
from served import KEY, session
from test_files import HOSTILE_UPLOADS, HOSTILE_URLS, form, leaks_root, tree
from tornado.httpclient import HTTPClientError
from tornado.websocket import websocket_connect

from dsagent_ext.handlers.openapi import OPERATIONS

# more raw URL segments: overlong UTF-8, IIS-style %u, fullwidth and one-dot-leader dots, mixed separators
MORE_URLS = [
    "..%c0%af..%c0%afsession.json",
    "%u002e%u002e%u2215session.json",
    "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsession.json",
    "%E2%80%A4%E2%80%A4",
    "..%5c..%2fsession.json",
    "%2e%2e%5csession.json",
    "...",
    "%2e",
    "%2e%2e%2f",
    "%252e%252e",
    "..%255c..%255csession.json",
    "%2fetc%2fpasswd",
    "%5c%5cserver%5cshare",
    "C:%5cWindows%5cwin.ini",
    "keep.csv%00.png",
    "%7e%2f.ssh%2fid_rsa",
]
HOSTILE_SESSION_IDS = [
    "..", "%2e%2e", "..%2f..%2f..%2fetc", "%2e%2e%2f%2e%2e%2fdsagent", "..%5c..%5c", "%2fetc%2fpasswd",
    "%00", "abc%00def", "x" * 257, "%E2%80%A5", "%EF%BC%8E%EF%BC%8E", "a%20b", "a;b", "%24(id)", "*",
    "'%20OR%201=1", "%3Cscript%3E", "CON", "20990101_000000_abcdef", "-",
]


def raw(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    """One request with the path exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={**server.headers, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def sid(server):
    with server.client() as http:
        return session(http, name="names")


@pytest.fixture
def folder(server, sid):
    """The session folder, its files and artifacts emptied for each test."""
    folder = server.root / "dsagent" / "sessions" / sid
    for category in ("data", "artifacts"):
        for path in (folder / category).iterdir():
            path.unlink()
    return folder


def test_artifact_names_round_trip(server, sid, folder):
    """Every upload payload, in the artifacts category: stored names are downloadable and deletable by
    their artifact URL, refused names leave nothing, and nothing lands outside ``artifacts/``."""
    artifacts = folder / "artifacts"
    before = tree(server.root, exclude=artifacts)
    stored = []
    for wire, expected in HOSTILE_UPLOADS:
        body, headers = form(("files", wire, b"payload"))
        code, out = raw(server, "POST", f"/api/sessions/{sid}/files?category=artifacts", body, headers)
        assert code < 500 and not leaks_root(out, server.root), (wire, code, out)
        if isinstance(expected, str):
            assert code == 201 and json.loads(out)[0]["path"] == f"artifacts/{expected}", (wire, code, out)
        elif expected is not None:
            assert code == expected, (wire, code, out)
        if code == 201:
            stored.append(json.loads(out)[0]["filename"])
    listed = raw(server, "GET", f"/api/sessions/{sid}/artifacts")[1]
    assert {a["name"] for a in json.loads(listed)["artifacts"]} == set(stored)
    for name in dict.fromkeys(stored):  # several payloads reduce to one name (passwd)
        url = f"/api/sessions/{sid}/artifacts/{quote(name, safe='')}"
        assert raw(server, "GET", url) == (200, b"payload"), name
        assert raw(server, "DELETE", url)[0] == 204, name
        assert raw(server, "GET", url)[0] == 404, name
    assert tree(server.root, exclude=artifacts) == before
    assert list(artifacts.iterdir()) == []


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("route", ["artifacts/{}", "files/{}?category=artifacts", "files/{}"])
def test_url_names(server, sid, folder, route, method):
    """Raw URL names on both download and delete routes: 4xx, nothing outside read or removed."""
    for category in ("data", "artifacts"):
        (folder / category / "keep.csv").write_bytes(b"keep")
        (folder / category / ".hidden").write_bytes(b"secret")
    before = {p: p.read_bytes() for p in server.root.rglob("*") if p.is_file()}
    payloads = MORE_URLS if route == "files/{}" else [raw_name for raw_name, _ in HOSTILE_URLS] + MORE_URLS
    for name in payloads:
        code, body = raw(server, method, f"/api/sessions/{sid}/" + route.format(name))
        assert 400 <= code < 500, (name, code, body)
        assert not leaks_root(body, server.root) and b"secret" not in body and b'"hitl_mode"' not in body, name
    after = {p: p.read_bytes() for p in server.root.rglob("*") if p.is_file()}
    assert after.keys() >= before.keys() and all(after[p] == before[p] for p in before)


def _routes() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in OPERATIONS.items() for method in ops if "{session_id}" in path]


@pytest.mark.parametrize(("method", "path"), _routes(), ids=[f"{m} {p}" for m, p in _routes()])
def test_hostile_session_ids(server, method, path):
    """Every session route, every hostile id: a 4xx with a JSON detail, nothing written, no path echoed."""
    before = tree(server.root)
    body = b"{}" if method in ("POST", "PUT") else None
    if path.endswith("/files") and method == "POST":
        body, _ = form(("files", "x.csv", b"x"))
    headers = {"Content-Type": "application/json"} if body == b"{}" else form(("files", "x", b""))[1]
    for bad in HOSTILE_SESSION_IDS:
        url = path.replace("{session_id}", bad).replace("{filename}", "x.csv")
        code, out = raw(server, method, url, body, headers)
        assert 400 <= code < 500, (bad, code, out)
        assert not leaks_root(out, server.root), (bad, out)
        if code != 405:
            assert isinstance(json.loads(out)["detail"], (str, list)), (bad, out)
    assert tree(server.root) == before


async def test_hostile_session_ids_on_the_websocket(server):
    for bad in HOSTILE_SESSION_IDS:
        url = f"ws://127.0.0.1:{server.port}/ws/chat/{bad}?api_key={KEY}"
        try:
            ws = await websocket_connect(url)
        except HTTPClientError as e:  # refused at the handshake
            assert 400 <= e.code < 500, (bad, e.code)
            continue
        assert await ws.read_message() is None, bad  # closed at once, no ``connected``
        assert ws.close_code in (1008, 4004), (bad, ws.close_code)
        assert not leaks_root((ws.close_reason or "").encode(), server.root), bad
