"""Session artifacts through a real server: typed listing, filters, URLs, downloads, deletes, name guards."""

from __future__ import annotations

import json
import os

import pytest
from jupyter_server.utils import url_path_join

UNKNOWN = "20990101_000000_abcdef"

# name -> (artifact type, Content-Type, served inline)
ARTIFACTS = {
    "chart.png": ("image", "image/png", True),
    "photo.JPG": ("image", "image/jpeg", True),
    "anim.gif": ("image", "image/gif", True),
    "plot.svg": ("image", "image/svg+xml", True),
    "report.pdf": ("document", "application/pdf", False),
    "page.html": ("document", "text/html", False),
    "README.md": ("document", "text/markdown", False),
    "summary.csv": ("data", "text/csv", False),
    "book.xlsx": ("data", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
    "old.xls": ("data", "application/vnd.ms-excel", False),
    "table.parquet": ("data", "application/octet-stream", False),
    "stats.json": ("data", "application/json", False),
    "model.pkl": ("model", "application/octet-stream", False),
    "model.pickle": ("model", "application/octet-stream", False),
    "model.joblib": ("model", "application/octet-stream", False),
    "weights.pt": ("model", None, False),
    "script.py": ("code", "text/x-python", False),
    "analysis.ipynb": ("notebook", "application/x-ipynb+json", False),
    "notes.txt": ("other", "text/plain", False),
    "blob.xyz123": ("other", "application/octet-stream", False),
    "my chart é.png": ("image", "image/png", True),
}


async def call(jp_fetch, *path, method="GET", params=None):
    """Request a DSAgent route; return (status, parsed JSON or raw bytes, headers) without raising."""
    r = await jp_fetch("dsagent", *path, method=method, params=params, raise_error=False)
    try:
        payload = json.loads(r.body) if r.body else None
    except ValueError:
        payload = r.body
    return r.code, payload, r.headers


@pytest.fixture
def sid(jp_fetch, jp_asyncio_loop) -> str:
    r = jp_asyncio_loop.run_until_complete(jp_fetch("dsagent", "api", "sessions", method="POST", body="{}"))
    return json.loads(r.body)["id"]


@pytest.fixture
def artifacts(jp_root_dir, sid):
    """The artifacts folder filled as the agent would, the first name the oldest; plus a hidden file and a folder."""
    folder = jp_root_dir / "dsagent" / "sessions" / sid / "artifacts"
    for age, name in enumerate(reversed(list(ARTIFACTS))):
        (folder / name).write_bytes(name.encode() * 3)
        os.utime(folder / name, (1_700_000_000 - age * 10, 1_700_000_000 - age * 10))
    (folder / ".upload-1234").write_bytes(b"partial")
    (folder / "subdir").mkdir()
    return folder


async def test_list_types_order_and_urls(jp_fetch, http_server_client, jp_auth_header, jp_base_url, sid, artifacts):
    code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts")
    assert code == 200
    assert listing["session_id"] == sid and listing["total"] == len(ARTIFACTS)
    assert [a["name"] for a in listing["artifacts"]] == list(reversed(list(ARTIFACTS)))
    for item in listing["artifacts"]:
        name = item["name"]
        assert item["type"] == ARTIFACTS[name][0], name
        assert item["size"] == len(name.encode()) * 3, name
        assert item["modified"].endswith(("Z", "+00:00")), name
    urls = {a["name"]: a["url"] for a in listing["artifacts"]}
    assert urls["chart.png"] == f"{jp_base_url}dsagent/api/sessions/{sid}/artifacts/chart.png"
    assert urls["my chart é.png"] == f"{jp_base_url}dsagent/api/sessions/{sid}/artifacts/my%20chart%20%C3%A9.png"
    assert jp_base_url == "/a%40b/"
    # every listed URL, used as given, downloads its artifact
    for name, url in urls.items():
        r = await http_server_client.fetch(url, headers=jp_auth_header)
        assert r.code == 200 and r.body == name.encode() * 3, name


async def test_type_filter(jp_fetch, sid, artifacts):
    for kind in ["image", "document", "data", "model", "code", "notebook", "other"]:
        code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", params={"type": kind})
        expected = [n for n in reversed(list(ARTIFACTS)) if ARTIFACTS[n][0] == kind]
        assert code == 200 and [a["name"] for a in listing["artifacts"]] == expected, kind
        assert listing["total"] == len(expected) and listing["session_id"] == sid
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", params={"type": "video"})
    assert (code, err) == (400, {"detail": "Invalid type: video. Must be image, document, data, model, code, notebook, or other"})
    code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", params={"type": ""})
    assert code == 200 and listing["total"] == len(ARTIFACTS)


async def test_empty_and_missing_folder(jp_fetch, jp_root_dir, sid):
    code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts")
    assert (code, listing) == (200, {"artifacts": [], "total": 0, "session_id": sid})
    (jp_root_dir / "dsagent" / "sessions" / sid / "artifacts").rmdir()
    code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts")
    assert (code, listing["total"]) == (200, 0)
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", "chart.png")
    assert (code, err) == (404, {"detail": "Artifact chart.png not found"})


async def test_download_content_types_and_disposition(jp_fetch, sid, artifacts):
    for name, (_, mime, inline) in ARTIFACTS.items():
        r = await jp_fetch("dsagent", "api", "sessions", sid, "artifacts", name)
        assert r.code == 200 and r.body == name.encode() * 3, name
        if mime is not None:
            assert r.headers["Content-Type"] == mime, name
        disposition = r.headers["Content-Disposition"]
        assert disposition.startswith("inline;" if inline else "attachment;"), (name, disposition)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in r.headers["Content-Security-Policy"], name
    r = await jp_fetch("dsagent", "api", "sessions", sid, "artifacts", "my chart é.png")
    assert r.headers["Content-Disposition"] == "inline; filename=\"my chart _.png\"; filename*=UTF-8''my%20chart%20%C3%A9.png"
    r = await jp_fetch("dsagent", "api", "sessions", sid, "artifacts", "summary.csv")
    assert r.headers["Content-Disposition"] == 'attachment; filename="summary.csv"'


async def test_download_streams_a_large_artifact(jp_fetch, sid, artifacts):
    content = os.urandom(2 * 1024 * 1024 + 3)
    (artifacts / "big.png").write_bytes(content)
    r = await jp_fetch("dsagent", "api", "sessions", sid, "artifacts", "big.png")
    assert r.code == 200 and r.body == content and r.headers["Content-Length"] == str(len(content))


async def test_delete(jp_fetch, sid, artifacts):
    code, body, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", "chart.png", method="DELETE")
    assert (code, body) == (204, None)
    assert not (artifacts / "chart.png").exists() and (artifacts / "plot.svg").exists()
    for method in ("GET", "DELETE"):
        code, err, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", "chart.png", method=method)
        assert (code, err) == (404, {"detail": "Artifact chart.png not found"}), method
    code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts")
    assert "chart.png" not in [a["name"] for a in listing["artifacts"]] and listing["total"] == len(ARTIFACTS) - 1
    # neither hidden files nor folders can be fetched or removed
    code, _, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", ".upload-1234", method="DELETE")
    assert code == 400 and (artifacts / ".upload-1234").exists()
    code, _, _ = await call(jp_fetch, "api", "sessions", sid, "artifacts", "subdir", method="DELETE")
    assert code == 404 and (artifacts / "subdir").is_dir()


async def test_unknown_and_invalid_sessions(jp_fetch):
    for path, method in [((), "GET"), (("chart.png",), "GET"), (("chart.png",), "DELETE")]:
        code, err, _ = await call(jp_fetch, "api", "sessions", UNKNOWN, "artifacts", *path, method=method)
        assert (code, err) == (404, {"detail": f"Session {UNKNOWN} not found"}), (path, method)
    for bad in ["bad.id", "x" * 300, "a b", "..."]:
        for path, method in [((), "GET"), (("chart.png",), "GET"), (("chart.png",), "DELETE")]:
            code, err, _ = await call(jp_fetch, "api", "sessions", bad, "artifacts", *path, method=method)
            assert 400 <= code < 500 and "detail" in err, (bad, path, method, code)


HOSTILE_URLS = [
    ("..%2Fsession.json", 400),
    ("..%2F..%2Fsession.json", 400),
    ("%2e%2e%2fsession.json", 400),
    ("..%5Csession.json", 400),
    ("%2e%2e", 400),
    ("..", 400),
    ("%00", 400),
    ("chart.png%00.txt", 400),
    (".upload-1234", 400),
    ("%2Fetc%2Fpasswd", 400),
    ("chart.png%0d%0aX-Evil:%201", 400),
    ("x" * 300, 400),
    ("%FF%FE", 400),
    ("%252e%252e%252fsession.json", 404),
]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_hostile_url_names(method, http_server_client, jp_auth_header, jp_base_url, jp_root_dir, sid, artifacts):
    before = {str(p) for p in jp_root_dir.rglob("*")}
    for raw, expected in HOSTILE_URLS:
        url = url_path_join(jp_base_url, "dsagent/api/sessions", sid, "artifacts", raw)
        r = await http_server_client.fetch(url, method=method, headers=jp_auth_header, raise_error=False)
        assert r.code == expected, (raw, r.code, r.body)
        assert str(jp_root_dir).encode() not in r.body and b"partial" not in r.body, raw
        assert "X-Evil" not in r.headers
    assert {str(p) for p in jp_root_dir.rglob("*")} == before
