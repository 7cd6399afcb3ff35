"""Auth coverage: every route of the OpenAPI document, and the WebSocket, refuse whoever lacks the key.

Both deployments: ``dsagent serve`` with a key (the key is the only credential: 401), and the extension
inside a Jupyter server with a key (no key falls through to Jupyter's auth: 403 without its token).
Only health, readiness and the API docs are open. Routes are called on a real session and file, so a
route that forgot its guard would answer 200 or 404 here, not 401/403.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import httpx
import pytest
from served import KEY, session
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from dsagent_ext.handlers.openapi import OPERATIONS

PUBLIC = ["health", "health/ready", "openapi.json", "docs"]
# credentials that must not open anything: none, a wrong key, the key where it does not count
WRONG = {
    "none": {},
    "wrong key": {"X-API-Key": "not-the-key"},
    "empty key": {"X-API-Key": ""},
    "key with a space": {"X-API-Key": f" {KEY}x"},
    "header name typo": {"X-API-Kee": KEY},
    "underscored header": {"X_API_KEY": KEY},
    "key as a bearer of another scheme": {"Authorization": f"Basic {KEY}"},
}


@pytest.fixture
def dsagent_config() -> dict:
    """The in-process (extension mode) server of this module has the key set too."""
    return {"api_key": KEY}


def guarded_routes(sid: str) -> list[tuple[str, str]]:
    return [
        (method.upper(), path.strip("/").replace("{session_id}", sid).replace("{filename}", "x.csv"))
        for path, ops in OPERATIONS.items()
        for method, op in ops.items()
        if not op.public
    ]


async def fetch(url: str, method: str, headers: dict, body: bytes | None = None):
    body = body if body is not None else (b"{}" if method in ("POST", "PUT") else None)
    return await AsyncHTTPClient().fetch(
        url, method=method, headers=headers, body=body, raise_error=False, allow_nonstandard_methods=True,
        follow_redirects=False,
    )


@pytest.fixture(scope="module")
def served_sid(server):
    with server.client() as http:
        sid = session(http, name="guarded")
        http.post(f"/api/sessions/{sid}/files", files={"files": ("x.csv", b"1", "text/csv")})
        return sid


@pytest.mark.parametrize("credentials", WRONG, ids=list(WRONG))
async def test_served_routes_refuse(server, served_sid, credentials):
    for method, path in guarded_routes(served_sid):
        for query in ("", "?" + urlencode({"api_key": KEY})):  # the key in the query only counts on the socket
            r = await fetch(f"{server.url}/{path}{query}", method, WRONG[credentials])
            # 401 from the key check; 403 when another Authorization scheme is left to Jupyter, which refuses it
            assert r.code in (401, 403), (credentials, method, path, query, r.code)
            assert "detail" in json.loads(r.body)
    for path in PUBLIC:
        assert (await fetch(f"{server.url}/{path}", "GET", WRONG[credentials])).code == 200, path


async def test_served_websocket(server, served_sid):
    url = f"ws://127.0.0.1:{server.port}/ws/chat/{served_sid}"
    refused = [(url, {}), (f"{url}?api_key=wrong", {}), (url, {"X-API-Kee": KEY}), (f"{url}?apikey={KEY}", {}),
               (f"{url}?api_key={KEY}", {"Origin": "http://evil.example"}),
               (url, {"X-API-Key": KEY, "Origin": f"http://127.0.0.1.evil.example:{server.port}"})]
    for target, headers in refused:
        with pytest.raises(HTTPClientError) as e:
            await websocket_connect(HTTPRequest(target, headers=headers))
        assert e.value.code in (401, 403), (target, headers)
    ws = await websocket_connect(f"{url}?api_key={KEY}")
    assert json.loads(await ws.read_message())["type"] == "connected"
    ws.close()


@pytest.fixture
def base(jp_http_port, jp_base_url, http_server_client) -> str:
    """The in-process Jupyter server's root URL (the extension lives under ``dsagent/``)."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def extension_sid(base, jp_asyncio_loop):
    r = jp_asyncio_loop.run_until_complete(fetch(f"{base}dsagent/api/sessions", "POST", {"X-API-Key": KEY}))
    assert r.code == 201, r.body
    return json.loads(r.body)["id"]


@pytest.mark.parametrize("credentials", WRONG, ids=list(WRONG))
async def test_extension_routes_refuse(base, extension_sid, credentials):
    for method, path in guarded_routes(extension_sid):
        for query in ("", "?" + urlencode({"api_key": KEY})):
            r = await fetch(f"{base}dsagent/{path}{query}", method, WRONG[credentials])
            # a wrong key is the key's 401; no key is Jupyter's 403 (no token, no cookie)
            assert r.code in (401, 403), (credentials, method, path, query, r.code)
            assert "detail" in json.loads(r.body)
    for path in PUBLIC:
        assert (await fetch(f"{base}dsagent/{path}", "GET", WRONG[credentials])).code == 200, path


def cookies(response) -> dict[str, str]:
    jar = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, value = header.split(";", 1)[0].split("=", 1)
        jar[name] = value
    return jar


@pytest.fixture
def browser(base, jp_serverapp, jp_asyncio_loop) -> tuple[str, str]:
    """A browser that logged in through the server's /login with the token: its cookie and XSRF token."""

    async def login() -> tuple[str, str]:
        jar = cookies(await fetch(f"{base}login", "GET", {}))
        form = urlencode({"_xsrf": jar["_xsrf"], "password": jp_serverapp.identity_provider.token})
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
                   "Content-Type": "application/x-www-form-urlencoded"}
        r = await fetch(f"{base}login", "POST", headers, form.encode())
        assert r.code == 302, r.body
        jar |= cookies(r)
        assert any(re.match(r"username-", name) for name in jar), jar
        return "; ".join(f"{k}={v}" for k, v in jar.items() if k != "_xsrf"), jar["_xsrf"]

    return jp_asyncio_loop.run_until_complete(login())


async def test_cookie_post_needs_xsrf(base, browser):
    """A login cookie alone reads, but cannot write: cross-site request forgery is refused."""
    login_cookie, xsrf = browser
    assert (await fetch(f"{base}dsagent/api/sessions", "GET", {"Cookie": login_cookie})).code == 200
    refused = [
        {"Cookie": login_cookie},
        {"Cookie": f"{login_cookie}; _xsrf={xsrf}"},  # the cookie without the matching header
        {"Cookie": f"{login_cookie}; _xsrf={xsrf}", "X-XSRFToken": "forged"},
    ]
    for headers in refused:
        r = await fetch(f"{base}dsagent/api/sessions", "POST", headers)
        assert r.code == 403 and "xsrf" in json.loads(r.body)["detail"].lower(), (headers, r.body)
    r = await fetch(f"{base}dsagent/api/sessions", "POST", {"Cookie": f"{login_cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
    assert r.code == 201, r.body


async def test_extension_websocket(base, extension_sid, browser):
    """No key, a wrong key, a misnamed header: refused; a logged-in browser on another origin: refused."""
    login_cookie, _ = browser
    url = base.replace("http://", "ws://") + f"dsagent/ws/chat/{extension_sid}"
    for target, headers in [(url, {}), (f"{url}?api_key=wrong", {}), (url, {"X-API-Kee": KEY}),
                            (f"{url}?api_key={KEY}", {"Origin": "http://evil.example"}),
                            (url, {"Cookie": login_cookie, "Origin": "http://evil.example"})]:
        with pytest.raises(HTTPClientError) as e:
            await websocket_connect(HTTPRequest(target, headers=headers))
        assert e.value.code in (401, 403), (target, headers)
    ws = await websocket_connect(HTTPRequest(url, headers={"Cookie": login_cookie, "Origin": base.rstrip("/").rsplit("/", 1)[0]}))
    assert json.loads(await ws.read_message())["type"] == "connected"
    ws.close()


def test_served_document_lists_every_route(server):
    """The enumeration above is complete: the served document has exactly the operation table's routes."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    served = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert served == {(m, p) for p, ops in OPERATIONS.items() for m in ops}
