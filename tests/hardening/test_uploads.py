"""Uploads through ``dsagent serve`` with no size limit: streamed to disk, and never torn.

test_files.py covers the parser, limits and two same-name uploads in process; here the figures are the
server process's own: its memory while a large body arrives, and what readers see while many slow
writers race on one name.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import httpx
import pytest
from served import MB, peak_rss, scaled, session
from test_files import BOUNDARY

LARGE_MB = scaled(256, 1024)
WRITERS = scaled(8, 32)


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    return ["--DSAgent.max_upload_mb=0"]


def multipart(name: str, chunks, digest=None):
    """A ``files`` part streamed from ``chunks`` (hashed into ``digest`` as they go)."""
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
    for chunk in chunks:
        if digest is not None:
            digest.update(chunk)
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_large_upload_streams_to_disk(server, http):
    sid = session(http, name="large")
    block = os.urandom(MB)
    digest = hashlib.sha256()
    http.get("/health")
    before = server.rss()
    with peak_rss(server) as peak:
        r = http.post(f"/api/sessions/{sid}/files", content=multipart("large.bin", (block for _ in range(LARGE_MB)), digest),
                      headers=HEADERS, timeout=600)
    assert r.status_code == 201, r.text
    assert r.json() == [{"filename": "large.bin", "size": LARGE_MB * MB, "path": "data/large.bin"}]
    stored = server.root / "dsagent" / "sessions" / sid / "data" / "large.bin"
    with stored.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest.hexdigest()
    grown = (peak[0] - before) / MB
    print(f"\n{LARGE_MB} MB upload: server RSS peak {grown:+.1f} MB")
    assert grown < 64, f"the server's memory grew by {grown:.0f} MB for a {LARGE_MB} MB upload"
    assert not list(stored.parent.glob(".upload-*"))


async def test_racing_writers_and_readers_of_one_name(server, http):
    """Slow writers interleave on the wire; every read in the meantime sees one writer's whole file."""
    sid = session(http, name="race")
    size, piece = 2 * MB, 64 * 1024
    contents = {bytes([65 + n]) * size for n in range(WRITERS)}
    seen = set()

    async def write(n: int, client: httpx.AsyncClient) -> int:
        async def slow():
            for chunk in multipart("same.bin", (bytes([65 + n]) * piece for _ in range(size // piece))):
                await asyncio.sleep(0.001)
                yield chunk

        r = await client.post(f"/api/sessions/{sid}/files", content=slow(), headers=HEADERS)
        return r.status_code

    async def read(client: httpx.AsyncClient, writing: asyncio.Future) -> None:
        while not writing.done():
            r = await client.get(f"/api/sessions/{sid}/files/same.bin")
            if r.status_code == 200:
                seen.add(r.content)
            await asyncio.sleep(0.01)

    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120) as client:
        writing = asyncio.gather(*(write(n, client) for n in range(WRITERS)))
        await asyncio.gather(writing, read(client, writing))
        assert writing.result() == [201] * WRITERS
    folder = server.root / "dsagent" / "sessions" / sid / "data"
    assert (folder / "same.bin").read_bytes() in contents
    assert seen and seen <= contents, "a reader saw a mix of two uploads"
    assert os.listdir(folder) == ["same.bin"]
