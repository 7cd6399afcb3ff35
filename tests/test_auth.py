"""The API key layered on Jupyter's own auth, inside a Jupyter server (extension mode)."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import AsyncHTTPClient

KEY = "s3cret-key"


@pytest.fixture
def dsagent_config() -> dict:
    return {"api_key": KEY}


@pytest.fixture
def fetch_raw(jp_http_port, jp_base_url, http_server_client):
    """Fetch a DSAgent URL with exactly the headers given (no Jupyter token added)."""

    async def fetch(path: str, method: str = "GET", headers: dict | None = None, body: str | None = None):
        url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dsagent/{path}"
        return await AsyncHTTPClient().fetch(
            url, method=method, headers=headers or {}, body=body, raise_error=False, allow_nonstandard_methods=True
        )

    return fetch


async def test_health_needs_nothing(fetch_raw):
    for path in ("health", "health/ready", "openapi.json", "docs"):
        assert (await fetch_raw(path)).code == 200, path


async def test_api_key_header_authenticates_and_skips_xsrf(fetch_raw):
    r = await fetch_raw("api/sessions", "POST", {"X-API-Key": KEY}, "{}")
    assert r.code == 201, r.body
    sid = json.loads(r.body)["id"]
    r = await fetch_raw(f"api/sessions/{sid}", headers={"X-API-Key": KEY})
    assert r.code == 200
    r = await fetch_raw(f"api/sessions/{sid}", "DELETE", {"X-API-Key": KEY})
    assert r.code == 204


async def test_wrong_key_is_401(fetch_raw):
    r = await fetch_raw("api/sessions", headers={"X-API-Key": "nope"})
    assert r.code == 401 and json.loads(r.body) == {"detail": "Invalid API key"}
    assert r.headers["WWW-Authenticate"] == "ApiKey"


async def test_no_credentials_refused(fetch_raw):
    # without the key, the Jupyter server's own auth decides: no token, no entry
    r = await fetch_raw("api/sessions")
    assert r.code == 403 and "detail" in json.loads(r.body)
    r = await fetch_raw("api/sessions", "POST", {}, "{}")
    assert r.code == 403


async def test_key_in_query_only_counts_for_websocket(fetch_raw):
    r = await fetch_raw("api/sessions?api_key=" + KEY)
    assert r.code == 403


async def test_jupyter_token_still_works(jp_fetch):
    r = await jp_fetch("dsagent", "api", "sessions")
    assert r.code == 200


async def test_authorizer_is_consulted(jp_fetch, jp_serverapp):
    """Deployments narrow access with an Authorizer on the ``dsagent`` resource."""
    from jupyter_server.auth import Authorizer

    class ReadOnly(Authorizer):
        def is_authorized(self, handler, user, action, resource):
            return not (resource == "dsagent" and action == "write")

    jp_serverapp.web_app.settings["authorizer"] = ReadOnly(parent=jp_serverapp)
    assert (await jp_fetch("dsagent", "api", "sessions")).code == 200
    r = await jp_fetch("dsagent", "api", "sessions", method="POST", body="{}", raise_error=False)
    assert r.code == 403


async def test_websocket_api_key(fetch_raw, jp_http_port, jp_base_url):
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    sid = json.loads((await fetch_raw("api/sessions", "POST", {"X-API-Key": KEY}, "{}")).body)["id"]
    url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}dsagent/ws/chat/{sid}"
    ws = await websocket_connect(f"{url}?api_key={KEY}")
    assert json.loads(await ws.read_message())["type"] == "connected"
    ws.close()
    for bad in (f"{url}?api_key=wrong", url):
        with pytest.raises(HTTPClientError) as e:
            await websocket_connect(HTTPRequest(bad))
        assert e.value.code in (401, 403)
    # a page on another origin cannot open the socket, even with the key
    with pytest.raises(HTTPClientError) as e:
        await websocket_connect(HTTPRequest(f"{url}?api_key={KEY}", headers={"Origin": "http://evil.example"}))
    assert e.value.code == 403
