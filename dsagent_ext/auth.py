"""The DSAgent API key, layered on the Jupyter server's own authentication.

A request that presents the key (``X-API-Key``, or ``?api_key=`` on the WebSocket) is authenticated
as the API-key user; one that presents a wrong key gets 401. A request without the key falls through
to the server's identity provider (token, cookie + XSRF, JupyterHub OAuth), except under
``dsagent serve``, where the key is the only credential and its absence is a 401 too.
"""

from __future__ import annotations

import hmac
from typing import Any

from jupyter_server.auth.identity import User
from tornado import httputil, web

API_KEY_HEADER = "X-API-Key"
API_KEY_QUERY = "api_key"
API_KEY_USER = User(username="dsagent-api-key", name="DSAgent API key")


class ApiKeyError(web.HTTPError):
    """401 with the reference's wording and ``WWW-Authenticate`` challenge."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail)


class ApiKeyAuth:
    """Checks the shared key; ``required`` makes it the only way in (``dsagent serve``)."""

    def __init__(self, api_key: str | None, *, required: bool) -> None:
        self.api_key = api_key or None
        self.required = required and self.api_key is not None

    def authenticate(self, request: httputil.HTTPServerRequest, *, websocket: bool = False) -> User | None:
        """Return the API-key user, None to defer to the server's auth, or raise 401."""
        if self.api_key is None:
            return None
        presented = request.headers.get(API_KEY_HEADER)
        if presented is None and websocket:
            presented = _query_arg(request, API_KEY_QUERY)
        if presented is None:
            if self.required and not _has_jupyter_credentials(request):
                raise ApiKeyError("API key required")
            return None
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            raise ApiKeyError("Invalid API key")
        return API_KEY_USER


def _query_arg(request: httputil.HTTPServerRequest, name: str) -> str | None:
    values = request.query_arguments.get(name)
    return values[0].decode("utf-8", "replace") if values else None


def _has_jupyter_credentials(request: httputil.HTTPServerRequest) -> bool:
    """Under ``dsagent serve`` the key is also the server token, sent the Jupyter way."""
    return "Authorization" in request.headers or "token" in request.query_arguments


class KeyedIdentityProvider:
    """The server's identity provider, answering for a request the API key already authenticated.

    Handing Jupyter's ``prepare`` this view (rather than replacing the server's provider) keeps
    tokens, cookies, XSRF and JupyterHub working unchanged for every other request.
    """

    def __init__(self, inner: Any, user: User, *, check_origin: bool) -> None:
        self._inner = inner
        self._user = user
        self._check_origin = check_origin

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_user(self, handler: web.RequestHandler) -> User:
        return self._user

    def is_token_authenticated(self, handler: web.RequestHandler) -> bool:
        # a custom header cannot be sent cross-site without CORS consent: no XSRF risk
        return not self._check_origin

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        # a browser page can put a key in a WebSocket URL, so sockets keep the Origin check
        return self._check_origin

