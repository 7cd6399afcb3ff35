"""Session files through a real server: streamed multipart upload, listing, download, delete, name guards."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime

import pytest
from jupyter_server.utils import url_path_join
from tornado.httpserver import HTTPServer

BOUNDARY = "dsagentTestBoundary7MA4YWxkTrZu0gW"
UNKNOWN = "20990101_000000_abcdef"


@pytest.fixture
def dsagent_config(request: pytest.FixtureRequest) -> dict:
    """Extension settings, from ``indirect`` parametrization when a test gives them."""
    return getattr(request, "param", {})


@pytest.fixture
def jp_server_config(jp_server_config: dict, request: pytest.FixtureRequest) -> dict:
    """The shared server config, plus ``ServerApp`` settings from ``indirect`` parametrization."""
    extra = getattr(request, "param", {})
    return {**jp_server_config, "ServerApp": {**jp_server_config["ServerApp"], **extra}}


@pytest.fixture
def http_server(jp_asyncio_loop, jp_serverapp, http_server_port):
    """The test server, with the body limits a real ServerApp gives its HTTPServer (pytest-jupyter's has none)."""

    async def start() -> HTTPServer:
        server = HTTPServer(
            jp_serverapp.web_app, max_body_size=jp_serverapp.max_body_size, max_buffer_size=jp_serverapp.max_buffer_size
        )
        server.add_socket(http_server_port[0])
        return server

    server = jp_asyncio_loop.run_until_complete(start())
    yield server
    server.stop()
    jp_asyncio_loop.run_until_complete(server.close_all_connections())
    http_server_port[0].close()


def form(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY) -> tuple[bytes, dict]:
    """A multipart/form-data body of ``(field, filename or None, content)`` parts, filenames sent verbatim."""
    chunks = []
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"'
        head = ""
        if filename is not None:
            disposition += f'; filename="{filename}"'
            head = "Content-Type: application/octet-stream\r\n"
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{head}\r\n".encode() + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def call(jp_fetch, *path, method="GET", body=None, headers=None, params=None):
    """Request a DSAgent route; return (status, parsed JSON or raw bytes, headers) without raising."""
    kwargs = {"method": method, "raise_error": False, "params": params, "headers": headers}
    if body is not None:
        kwargs["body"] = body
    r = await jp_fetch("dsagent", *path, **kwargs)
    try:
        payload = json.loads(r.body) if r.body else None
    except ValueError:
        payload = r.body
    return r.code, payload, r.headers


async def upload(jp_fetch, sid, *parts, params=None, boundary=BOUNDARY):
    body, headers = form(*parts, boundary=boundary)
    code, payload, _ = await call(jp_fetch, "api", "sessions", sid, "files", method="POST", body=body, headers=headers, params=params)
    return code, payload


@pytest.fixture
def sid(jp_fetch, jp_asyncio_loop) -> str:
    r = jp_asyncio_loop.run_until_complete(jp_fetch("dsagent", "api", "sessions", method="POST", body="{}"))
    return json.loads(r.body)["id"]


@pytest.fixture
def folder(jp_root_dir, sid):
    return jp_root_dir / "dsagent" / "sessions" / sid


def tree(root, exclude=None) -> set[str]:
    """Every path under ``root`` (relative), except those inside ``exclude``."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if exclude is None or exclude not in (p, *p.parents)}


def leaks_root(payload, root) -> bool:
    text = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return any(str(r).encode() in text for r in {root, root.resolve()})


async def test_upload_one_then_list(jp_fetch, sid, folder):
    code, files = await upload(jp_fetch, sid, ("files", "sales.csv", b"a,b\n1,2\n"))
    assert code == 201
    assert files == [{"filename": "sales.csv", "size": 8, "path": "data/sales.csv"}]
    assert (folder / "data" / "sales.csv").read_bytes() == b"a,b\n1,2\n"
    code, listing, _ = await call(jp_fetch, "api", "sessions", sid, "files")
    assert code == 200 and listing["category"] == "data" and listing["total"] == 1
    [info] = listing["files"]
    assert (info["name"], info["size"], info["category"]) == ("sales.csv", 8, "data")
    assert datetime.fromisoformat(info["modified"].replace("Z", "+00:00")).tzinfo is not None
    assert sorted(os.listdir(folder / "data")) == ["sales.csv"]


async def test_upload_several_keeps_order_and_lists_newest_first(jp_fetch, sid, folder):
    parts = [("files", "one.csv", b"1"), ("files", "two.json", b"{}2"), ("files", "three.txt", b"three")]
    code, files = await upload(jp_fetch, sid, *parts)
    assert code == 201
    assert [(f["filename"], f["size"], f["path"]) for f in files] == [
        ("one.csv", 1, "data/one.csv"), ("two.json", 3, "data/two.json"), ("three.txt", 5, "data/three.txt"),
    ]
    for age, name in enumerate(["two.json", "three.txt", "one.csv"]):
        os.utime(folder / "data" / name, (1_700_000_000 - age * 60, 1_700_000_000 - age * 60))
    _, listing, _ = await call(jp_fetch, "api", "sessions", sid, "files", params={"category": "data"})
    assert [f["name"] for f in listing["files"]] == ["two.json", "three.txt", "one.csv"]
    assert listing["total"] == 3
    # a second upload of the same name replaces the file
    code, files = await upload(jp_fetch, sid, ("files", "one.csv", b"new"))
    assert code == 201 and (folder / "data" / "one.csv").read_bytes() == b"new"


async def test_category_from_query_or_form_field(jp_fetch, sid, folder):
    code, files = await upload(jp_fetch, sid, ("files", "q.png", b"png"), params={"category": "artifacts"})
    assert code == 201 and files[0]["path"] == "artifacts/q.png" and (folder / "artifacts" / "q.png").is_file()
    # the form field, before or after the files
    code, files = await upload(jp_fetch, sid, ("category", None, b"notebooks"), ("files", "before.ipynb", b"{}"))
    assert code == 201 and files[0]["path"] == "notebooks/before.ipynb"
    code, files = await upload(jp_fetch, sid, ("files", "after.ipynb", b"{}"), ("category", None, b"notebooks"))
    assert code == 201 and files[0]["path"] == "notebooks/after.ipynb"
    assert sorted(os.listdir(folder / "notebooks")) == ["after.ipynb", "before.ipynb"]
    # the query parameter wins over the form field
    code, files = await upload(jp_fetch, sid, ("category", None, b"notebooks"), ("files", "w.csv", b"x"), params={"category": "artifacts"})
    assert code == 201 and files[0]["path"] == "artifacts/w.csv"
    _, listing, _ = await call(jp_fetch, "api", "sessions", sid, "files", params={"category": "artifacts"})
    assert {f["name"] for f in listing["files"]} == {"q.png", "w.csv"} and listing["category"] == "artifacts"
    assert os.listdir(folder / "data") == []


async def test_unknown_category(jp_fetch, sid, folder):
    detail = "Invalid category: secrets. Must be data, artifacts, or notebooks"
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "files", params={"category": "secrets"})
    assert (code, err) == (400, {"detail": detail})
    code, err = await upload(jp_fetch, sid, ("files", "a.csv", b"x"), params={"category": "secrets"})
    assert (code, err) == (400, {"detail": detail})
    code, err = await upload(jp_fetch, sid, ("files", "a.csv", b"x"), ("category", None, b"secrets"))
    assert (code, err) == (400, {"detail": detail})
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "files", "a.csv", params={"category": "../x"})
    assert code == 400 and err["detail"].startswith("Invalid category: ../x.")
    assert [p for p in tree(folder) if p.startswith(("data/", "artifacts/", "notebooks/"))] == []


async def test_download_bytes_types_and_disposition(jp_fetch, sid):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    cases = [
        ("sales.csv", "sales.csv", "data", b"a,b\n", "text/csv", 'attachment; filename="sales.csv"'),
        ("chart.png", "chart.png", "artifacts", png, "image/png", 'attachment; filename="chart.png"'),
        ("table.parquet", "table.parquet", "data", b"PAR1", "application/octet-stream", 'attachment; filename="table.parquet"'),
        ("notes.weird", "notes.weird", "data", b"?", "application/octet-stream", 'attachment; filename="notes.weird"'),
        ("Book.XLSX", "Book.XLSX", "data", b"PK", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         'attachment; filename="Book.XLSX"'),
        ("données été.csv", "données été.csv", "data", "é".encode(), "text/csv",
         "attachment; filename=\"donn_es _t_.csv\"; filename*=UTF-8''donn%C3%A9es%20%C3%A9t%C3%A9.csv"),
        ("say %22hi%22.txt", 'say "hi".txt', "data", b"hi", "text/plain",
         "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt"),
    ]
    for wire, name, category, content, mime, disposition in cases:
        code, files = await upload(jp_fetch, sid, ("files", wire, content), params={"category": category})
        assert code == 201 and files[0]["filename"] == name, (wire, files)
        r = await jp_fetch("dsagent", "api", "sessions", sid, "files", name, params={"category": category})
        assert r.code == 200 and r.body == content, name
        assert r.headers["Content-Type"] == mime, name
        assert r.headers["Content-Disposition"] == disposition, name
        assert r.headers["Content-Length"] == str(len(content))
        assert "sandbox" in r.headers["Content-Security-Policy"]
    # the category decides the folder: chart.png is not in data
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "files", "chart.png")
    assert (code, err) == (404, {"detail": "File chart.png not found in data"})


async def test_download_streams_a_large_file(jp_fetch, sid, folder):
    content = os.urandom(3 * 1024 * 1024 + 17)
    (folder / "data" / "big.bin").write_bytes(content)
    r = await jp_fetch("dsagent", "api", "sessions", sid, "files", "big.bin")
    assert r.code == 200 and r.body == content and r.headers["Content-Length"] == str(len(content))


async def test_delete_then_404(jp_fetch, sid, folder):
    await upload(jp_fetch, sid, ("files", "gone.csv", b"x"), ("files", "kept.csv", b"y"))
    code, body, _ = await call(jp_fetch, "api", "sessions", sid, "files", "gone.csv", method="DELETE")
    assert code == 204 and body is None
    assert sorted(os.listdir(folder / "data")) == ["kept.csv"]
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "files", "gone.csv", method="DELETE")
    assert (code, err) == (404, {"detail": "File gone.csv not found in data"})
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "files", "gone.csv")
    assert (code, err) == (404, {"detail": "File gone.csv not found in data"})
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "files", "kept.csv", method="DELETE", params={"category": "notebooks"})
    assert (code, err) == (404, {"detail": "File kept.csv not found in notebooks"})
    # a folder is not a file
    (folder / "data" / "sub").mkdir()
    code, _, _ = await call(jp_fetch, "api", "sessions", sid, "files", "sub", method="DELETE")
    assert code == 404 and (folder / "data" / "sub").is_dir()


async def test_malformed_uploads(jp_fetch, sid, folder):
    files = ("api", "sessions", sid, "files")
    code, err, _ = await call(jp_fetch, *files, method="POST", body=json.dumps({"files": ["a"]}), headers={"Content-Type": "application/json"})
    assert code == 415 and "multipart/form-data" in err["detail"]
    code, err = await upload(jp_fetch, sid, ("category", None, b"data"))
    assert code == 422 and err["detail"][0]["loc"] == ["body", "files"]
    code, err = await upload(jp_fetch, sid)
    assert code == 422 and err["detail"][0]["loc"] == ["body", "files"]
    # a 'files' part that is a plain field, not a file
    code, err = await upload(jp_fetch, sid, ("files", None, b"not a file"))
    assert code == 422 and "filename" in err["detail"]
    body, headers = form(("files", "cut.csv", b"x" * 1000))
    code, err, _ = await call(jp_fetch, *files, method="POST", body=body[:-30], headers=headers)
    assert code == 422 and "closing boundary" in err["detail"]
    code, err, _ = await call(jp_fetch, *files, method="POST", body=body, headers={"Content-Type": "multipart/form-data"})
    assert code == 422 and "boundary" in err["detail"]
    code, err, _ = await call(jp_fetch, *files, method="POST", body=b"garbage with no boundary at all", headers=headers)
    assert code == 422
    # other fields are ignored
    code, out = await upload(jp_fetch, sid, ("note", None, b"hello"), ("files", "ok.csv", b"1"))
    assert code == 201 and [f["filename"] for f in out] == ["ok.csv"]
    assert sorted(os.listdir(folder / "data")) == ["ok.csv"]


async def test_a_bad_name_later_in_the_request_writes_nothing(jp_fetch, sid, folder):
    code, err = await upload(jp_fetch, sid, ("files", "first.csv", b"1" * 200_000), ("files", "..", b"2"))
    assert code == 400 and err["detail"].startswith("Invalid filename")
    assert tree(folder / "data") == set()


async def test_a_file_never_replaces_a_folder(jp_fetch, sid, folder):
    (folder / "data" / "sub").mkdir()
    code, err = await upload(jp_fetch, sid, ("files", "ok.csv", b"1"), ("files", "sub", b"2"))
    assert (code, err) == (409, {"detail": "Cannot replace the folder sub in data with a file"})
    assert tree(folder / "data") == {"sub"}


async def test_concurrent_uploads_of_one_name_never_interleave(jp_fetch, sid, folder):
    size = 2 * 1024 * 1024
    results = await asyncio.gather(*(upload(jp_fetch, sid, ("files", "same.bin", bytes([b]) * size)) for b in b"ab"))
    assert [code for code, _ in results] == [201, 201]
    content = (folder / "data" / "same.bin").read_bytes()
    assert content in (b"a" * size, b"b" * size)
    assert os.listdir(folder / "data") == ["same.bin"]


async def test_unknown_and_invalid_sessions(jp_fetch):
    for path, method in [((), "GET"), (("x.csv",), "GET"), (("x.csv",), "DELETE")]:
        code, err, _ = await call(jp_fetch, "api", "sessions", UNKNOWN, "files", *path, method=method)
        assert (code, err) == (404, {"detail": f"Session {UNKNOWN} not found"})
    code, err = await upload(jp_fetch, UNKNOWN, ("files", "x.csv", b"x"))
    assert (code, err) == (404, {"detail": f"Session {UNKNOWN} not found"})
    for bad in ["bad.id", "x" * 300, "..", "a b"]:
        code, err = await upload(jp_fetch, bad, ("files", "x.csv", b"x"))
        assert 400 <= code < 500, (bad, code)
        code, err, _ = await call(jp_fetch, "api", "sessions", bad, "files", "x.csv")
        assert 400 <= code < 500 and isinstance(err["detail"], (str, list)), (bad, code)


# (name as sent in the multipart header, stored name or the expected error status; None: any 4xx)
HOSTILE_UPLOADS = [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/etc/passwd", "passwd"),
    ("C:\\evil.csv", "evil.csv"),
    ("\\\\server\\share\\unc.csv", "unc.csv"),
    ("..%2F..%2Fetc%2Fpasswd", 400),
    ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    ("%252e%252e%252fpasswd", "%252e%252e%252fpasswd"),
    ("%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"),
    ("..", 400),
    (".", 400),
    ("", 400),
    ("/", 400),
    ("x/..", 400),
    (".hidden", 400),
    ("dir/.env", 400),
    ("....", 400),
    ("/tmp/../../../root/.bashrc", 400),
    ("..\u2215etc", 400),
    ("   ", 400),
    (" padded.csv ", "padded.csv"),
    ("a b.csv", "a b.csv"),
    ("~/.ssh/id_rsa", "id_rsa"),
    ("./././dots.csv", "dots.csv"),
    ("..;/semi.csv", "semi.csv"),
    ("\u2025", "\u2025"),
    ("\u2025/\u2025", "\u2025"),
    ("\uff0e\uff0e", "\uff0e\uff0e"),
    ("x" * 300, 400),
    ("\u00e9" * 128, 400),
    ("y" * 255, "y" * 255),
    ("a\x00b.csv", 400),
    ("a%00b.csv", "a%00b.csv"),
    ("a%0Ab.csv", 400),
    ("a%0D%0Ab.csv", 400),
    ("a\tb.csv", 400),
    ("del\x7f.csv", 400),
    ("say %22hi%22.txt", 'say "hi".txt'),
    ("inject.csv\r\nX-Evil: 1", None),
    ("cafe\u0301.csv", "caf\u00e9.csv"),
    ("CON", "CON"),
]


async def test_hostile_upload_names(jp_fetch, jp_root_dir, sid, folder):
    data = folder / "data"
    before = tree(jp_root_dir, exclude=data)
    for wire, expected in HOSTILE_UPLOADS:
        code, out = await upload(jp_fetch, sid, ("files", wire, b"payload"))
        assert code < 500, (wire, code, out)
        assert not leaks_root(out, jp_root_dir), (wire, out)
        if isinstance(expected, str):
            assert code == 201, (wire, code, out)
            assert out == [{"filename": expected, "size": 7, "path": f"data/{expected}"}], wire
            assert (data / expected).read_bytes() == b"payload", wire
        elif expected is None:
            assert code in (201, 400, 422), (wire, code, out)
        else:
            assert code == expected, (wire, code, out)
            assert isinstance(out["detail"], str) and out["detail"].startswith("Invalid filename"), (wire, out)
    assert tree(jp_root_dir, exclude=data) == before
    assert all(p.is_file() and p.parent == data and not p.name.startswith(".") for p in data.iterdir())


# raw URL path segments: tornado decodes them before the handler sees them
HOSTILE_URLS = [
    ("..%2F..%2Fsession.json", 400),
    ("%2e%2e%2f%2e%2e%2fsession.json", 400),
    ("..%5C..%5Csession.json", 400),
    ("%2e%2e", 400),
    ("..", 400),
    (".", 400),
    ("%00", 400),
    ("a%00b.csv", 400),
    (".hidden", 400),
    ("%2Fetc%2Fpasswd", 400),
    ("%20keep.csv", 400),
    ("keep.csv%0d%0aSet-Cookie:%20a=b", 400),
    ("x" * 300, 400),
    ("%C0%AE%C0%AE", 400),
    ("%252e%252e%252fsession.json", 404),
    ("%E2%80%A5", 404),
]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_hostile_url_names(method, http_server_client, jp_auth_header, jp_base_url, jp_root_dir, sid, folder):
    (folder / "data" / "keep.csv").write_bytes(b"keep")
    (folder / "data" / ".hidden").write_bytes(b"secret")
    before = tree(jp_root_dir)
    for raw, expected in HOSTILE_URLS:
        url = url_path_join(jp_base_url, "dsagent/api/sessions", sid, "files", raw)
        r = await http_server_client.fetch(url, method=method, headers=jp_auth_header, raise_error=False)
        assert r.code == expected, (raw, r.code, r.body)
        assert not leaks_root(r.body, jp_root_dir), raw
        assert b"secret" not in r.body and b'"id"' not in r.body, raw
    assert tree(jp_root_dir) == before
    assert (folder / "session.json").is_file() and (folder / "data" / "keep.csv").read_bytes() == b"keep"


@pytest.mark.parametrize("dsagent_config", [{"max_upload_mb": 0.001}], indirect=True)
async def test_per_file_limit(jp_fetch, sid, folder):
    limit = int(0.001 * 1024 * 1024)
    code, err = await upload(jp_fetch, sid, ("files", "small.csv", b"s" * 100), ("files", "big.csv", b"b" * (limit + 1)))
    assert (code, err) == (413, {"detail": "File big.csv exceeds max size (0.001 MB)"})
    big = b"b" * (200 * 1024)
    code, err = await upload(jp_fetch, sid, ("files", "huge.csv", big), ("files", "after.csv", b"a"))
    assert (code, err) == (413, {"detail": "File huge.csv exceeds max size (0.001 MB)"})
    assert tree(folder / "data") == set()
    assert not [p for p in folder.rglob(".upload-*")]
    # the limit is per file: two files at the limit pass
    code, out = await upload(jp_fetch, sid, ("files", "one.csv", b"1" * limit), ("files", "two.csv", b"2" * limit))
    assert code == 201 and [f["size"] for f in out] == [limit, limit]


@pytest.mark.parametrize("dsagent_config", [{"max_upload_mb": 0}], indirect=True)
async def test_unlimited_accepts_a_large_file(jp_fetch, sid, folder):
    content = os.urandom(12 * 1024 * 1024)
    code, out = await upload(jp_fetch, sid, ("files", "large.bin", content))
    assert code == 201 and out == [{"filename": "large.bin", "size": len(content), "path": "data/large.bin"}]
    assert (folder / "data" / "large.bin").read_bytes() == content
    assert not [p for p in folder.rglob(".upload-*")]


TINY_SERVER = {"max_body_size": 1024 * 1024, "max_buffer_size": 1024 * 1024}


@pytest.mark.parametrize("jp_server_config", [TINY_SERVER], indirect=True)
@pytest.mark.parametrize("dsagent_config", [{"max_upload_mb": 0}], indirect=True)
async def test_unlimited_lifts_the_server_body_cap(jp_fetch, sid, folder):
    # bodies are streamed, so a body far above the server's buffer and body caps still arrives whole
    content = os.urandom(3 * 1024 * 1024)
    code, out = await upload(jp_fetch, sid, ("files", "above-cap.bin", content))
    assert code == 201 and out[0]["size"] == len(content)
    assert (folder / "data" / "above-cap.bin").read_bytes() == content


@pytest.mark.parametrize("jp_server_config", [TINY_SERVER], indirect=True)
@pytest.mark.parametrize("dsagent_config", [{"max_upload_mb": 1}], indirect=True)
async def test_body_above_the_request_cap_is_refused_before_reading(jp_fetch, sid, folder):
    part = b"p" * (900 * 1024)
    code, err = await upload(jp_fetch, sid, ("files", "a.bin", part), ("files", "b.bin", part), ("files", "c.bin", part))
    assert (code, err) == (413, {"detail": "Request body exceeds the server's limit of 2 MB"})
    code, out = await upload(jp_fetch, sid, ("files", "a.bin", part))
    assert code == 201 and tree(folder / "data") == {"a.bin"}


async def test_client_gone_mid_upload_leaves_nothing(jp_http_port, jp_base_url, jp_auth_header, sid, folder):
    body, headers = form(("files", "partial.bin", b"z" * (4 * 1024 * 1024)))
    path = url_path_join(jp_base_url, "dsagent/api/sessions", sid, "files")
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{jp_http_port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in {**headers, **jp_auth_header}.items()]
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2])
    await writer.drain()
    for _ in range(200):  # the part is on disk, in a hidden temp file, while the body is still arriving
        if list((folder / "data").glob(".upload-*")):
            break
        await asyncio.sleep(0.02)
    assert [p.name.startswith(".upload-") for p in (folder / "data").iterdir()] == [True]
    writer.close()
    await writer.wait_closed()
    for _ in range(200):
        if not list((folder / "data").iterdir()):
            break
        await asyncio.sleep(0.02)
    assert list((folder / "data").iterdir()) == []
