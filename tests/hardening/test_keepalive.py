"""Keep-alive clients and uploads refused before their body is read.

An upload to an unknown session (404), with an invalid category (400) or over the size limit (413) is
answered before its body has been read. The answer must reach the client whole, even with megabytes
still in flight, and must say ``Connection: close`` (RFC 9112 §9.6: the server will not read the rest
as a request stream); the server reads and drops the rest before closing, so the client is not reset
and reconnects cleanly for its next request. Uploads that succeed keep the connection alive.
"""

from __future__ import annotations

import http.client
import json

import httpx
import pytest
from served import KEY, session

BOUNDARY = "keepaliveBoundary7MA4YWxk"
HEADERS = {"X-API-Key": KEY, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
LIMIT_MB = 0.03  # below the smaller body, so both sizes are over it
SIZES = {"64kB": 64 * 1024, "8MB": 8 * 1024 * 1024}
UNKNOWN = "20990101_000000_abcdef"


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    return [f"--DSAgent.max_upload_mb={LIMIT_MB}"]


@pytest.fixture(scope="module")
def sid(server):
    with server.client() as http:
        return session(http, name="keepalive")


def form(size: int, name: str = "big.csv") -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
    return head + b"x" * size + f"\r\n--{BOUNDARY}--\r\n".encode()


def refusals(sid: str) -> dict[str, tuple[str, int, str]]:
    """Each refusal: URL, status, and the start of its detail."""
    return {
        "unknown session": (f"/api/sessions/{UNKNOWN}/files", 404, f"Session {UNKNOWN} not found"),
        "bad category": (f"/api/sessions/{sid}/files?category=bogus", 400, "Invalid category: bogus"),
        "over the limit": (f"/api/sessions/{sid}/files", 413, f"File big.csv exceeds max size ({LIMIT_MB:g} MB)"),
    }


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("refusal", ["unknown session", "bad category", "over the limit"])
def test_refused_upload_on_a_keepalive_connection(server, sid, refusal, size):
    url, status, detail = refusals(sid)[refusal]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/health", headers={"Connection": "keep-alive"})
        assert conn.getresponse().read()
        sock = conn.sock
        conn.request("POST", url, body=form(size), headers=HEADERS)
        r = conn.getresponse()
        body = json.loads(r.read())
        assert (r.status, body["detail"][: len(detail)]) == (status, detail), body
        assert r.getheader("Connection") == "close"  # said, so the client does not reuse it
        assert conn.sock is None and sock.fileno() == -1  # http.client obeyed and closed it
        # the next request goes out on a new connection, which works
        conn.request("GET", f"/api/sessions/{sid}", headers={"X-API-Key": KEY})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["id"] == sid
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [(b"", HEADERS, 404), (form(64 * 1024), {"Content-Type": HEADERS["Content-Type"]}, 401)],
    ids=["no body", "no key"],
)
def test_other_early_answers_say_they_close(server, body, headers, status):
    """An empty body, or a refusal before the session is even looked up (no key): Tornado closes these
    connections too, so the answer says it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", f"/api/sessions/{UNKNOWN}/files", body=body, headers=headers)
        r = conn.getresponse()
        assert r.status == status and "detail" in json.loads(r.read())
        assert r.getheader("Connection") == "close"
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_accepted_upload_keeps_the_connection(server, sid):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", f"/api/sessions/{sid}/files", body=form(1024, "small.csv"), headers=HEADERS)
        r = conn.getresponse()
        assert r.status == 201, r.read()
        r.read()
        assert r.getheader("Connection") is None
        sock = conn.sock
        conn.request("GET", f"/api/sessions/{sid}/files", headers={"X-API-Key": KEY})
        r = conn.getresponse()
        assert r.status == 200 and "small.csv" in r.read().decode()
        assert conn.sock is sock  # the same connection
    finally:
        conn.close()


def test_pooled_client_after_refused_uploads(server, sid):
    """httpx keeps a pool, as browsers do: refused uploads (with a length or chunked) never make a
    later request fail."""

    def chunked(data: bytes):
        for i in range(0, len(data), 256 * 1024):
            yield data[i : i + 256 * 1024]

    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=60) as http:
        for _ in range(2):
            for url, status, detail in refusals(sid).values():
                for size in SIZES.values():
                    for content in (form(size), chunked(form(size))):
                        r = http.post(url, content=content, headers={"Content-Type": HEADERS["Content-Type"]})
                        assert r.status_code == status and r.json()["detail"].startswith(detail), r.text
                        assert http.get(f"/api/sessions/{sid}").status_code == 200


def test_server_log_has_no_traceback(server):
    found = server.tracebacks()  # a kernel that lost a port race as it started is started again: not a fault
    assert not found, found[0]
