"""The base of every DSAgent handler: API-key auth, JSON errors, body and query parsing.

Everything else comes from jupyter_server's ``APIHandler`` (identity, XSRF, CORS, activity tracking).
"""

from __future__ import annotations

import getpass
import inspect
import json
from functools import cache
from typing import Any, TypeVar

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError
from tornado import web

from ..auth import ApiKeyAuth, KeyedIdentityProvider
from ..sessions.live import Session, SessionBusy, SessionNotFound
from ..sessions.service import SessionService
from ..settings import ApiSettings
from ..store.workspace import InvalidName

AUTH_RESOURCE = "dsagent"
ModelT = TypeVar("ModelT", bound=BaseModel)

# Jupyter's stock providers: one shared token or password, no user names
SHARED_SECRET_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


@cache
def server_owner() -> str:
    """The account the server runs as (``jovyan`` in the Jupyter images)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "owner"


# domain errors raised below the handlers, and the status each one means
ERROR_STATUS: dict[type[Exception], int] = {SessionNotFound: 404, InvalidName: 400, SessionBusy: 409}


class UnprocessableEntity(web.HTTPError):
    """422 whose ``detail`` is pydantic's list of errors, as FastAPI clients expect."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, "Validation error")
        self.detail = errors


def validation_errors(error: ValidationError, location: str) -> list[dict[str, Any]]:
    """pydantic errors in JSON-safe form, located like FastAPI (``["body", "field"]``)."""
    try:
        errors = json.loads(error.json(include_url=False, include_context=False))
    except ValueError:  # the input cannot be shown as JSON (a body that is not UTF-8): leave it out
        errors = error.errors(include_url=False, include_context=False, include_input=False)
    for item in errors:
        item["loc"] = [location, *item.get("loc", [])]
    return errors


def _format(message: str, args: tuple[Any, ...]) -> str:
    """An HTTPError's message as tornado logs it (``%%`` in our own messages is an escaped ``%``)."""
    try:
        return message % args
    except (TypeError, ValueError):
        return message


class ApiKeyMixin:
    """The DSAgent key checked before the server's own identity check; errors as ``{"detail"}``."""

    error_status = ERROR_STATUS
    websocket = False
    _api_key_user: Any = None

    @property
    def service(self) -> SessionService:
        return self.settings["dsagent"]  # type:ignore[attr-defined]

    @property
    def api_settings(self) -> ApiSettings:
        return self.settings["dsagent_api"]  # type:ignore[attr-defined]

    @property
    def identity_provider(self) -> Any:
        provider = super().identity_provider  # type:ignore[misc]
        if self._api_key_user is not None:
            return KeyedIdentityProvider(provider, self._api_key_user, check_origin=self.websocket)
        return provider

    @property
    def identity(self) -> str:
        """Who spends: the user the server's identity provider names (each JupyterHub user), the API-key
        user when the key authenticated the request, and the server's owner behind Jupyter's own token
        or password: those name no one (a new random user per token request), anyone holding them is
        the one person the server belongs to."""
        if self._api_key_user is None and type(super().identity_provider) in SHARED_SECRET_PROVIDERS:  # type:ignore[misc]
            return server_owner()
        user = self.current_user  # type:ignore[attr-defined]
        return getattr(user, "username", None) or str(user)

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        request = self.request  # type:ignore[attr-defined]
        method = getattr(self, (request.method or "").lower(), None)
        if not getattr(method, "__allow_unauthenticated", False):  # /health and the docs stay open
            auth: ApiKeyAuth = self.settings["dsagent_auth"]  # type:ignore[attr-defined]
            self._api_key_user = auth.authenticate(request, websocket=self.websocket)
        result = super().prepare(*args, **kwargs)  # type:ignore[misc]
        if inspect.isawaitable(result):
            await result

    def _domain_status(self, e: BaseException | None) -> int | None:
        """The status a domain error stands for (its own ``http_status``, or by its type)."""
        if isinstance(getattr(e, "http_status", None), int):
            return e.http_status  # type:ignore[union-attr]
        return next((status for kind, status in self.error_status.items() if isinstance(e, kind)), None)

    def _handle_request_exception(self, e: BaseException) -> None:
        status = self._domain_status(e)
        if status is None or self._finished:
            return super()._handle_request_exception(e)
        self.log.warning("%d %s: %s", status, self._request_summary(), e)
        self.send_error(status, exc_info=(type(e), e, e.__traceback__))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as ``{"detail": ...}``: the reference's shape, never a traceback or a server path."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        detail: Any = getattr(exc, "detail", None)
        if self._domain_status(exc) is not None:
            detail = str(exc)
        elif detail is None:
            if isinstance(exc, web.HTTPError) and exc.log_message:
                detail = _format(exc.log_message, exc.args)
            else:
                detail = self._reason
        if status_code == 401:
            self.set_header("WWW-Authenticate", "ApiKey")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"detail": detail, **(getattr(exc, "payload", None) or {})}))


class DSAgentHandler(ApiKeyMixin, APIHandler):
    """Base handler; subclasses decorate verbs with ``@web.authenticated`` and ``@authorized``."""

    auth_resource = AUTH_RESOURCE

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        """Keep a Content-Type the handler chose (files, SSE, HTML) instead of forcing JSON."""
        kwargs.setdefault("set_content_type", self._headers.get("Content-Type", "application/json"))
        return super().finish(*args, **kwargs)

    # --- helpers for subclasses -------------------------------------------------------------------

    def session(self, session_id: str) -> Session:
        return self.service.get(session_id)

    def parse_body(self, model: type[ModelT]) -> ModelT:
        """The JSON body validated into ``model``; 422 when malformed."""
        try:
            return model.model_validate_json(self.request.body or b"")
        except ValidationError as e:
            raise UnprocessableEntity(validation_errors(e, "body")) from None

    def query_int(self, name: str, default: int, *, low: int, high: int | None = None) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise UnprocessableEntity(
                [{"type": "value_error", "loc": ["query", name], "msg": f"{name} must be an integer {bound}", "input": raw}]
            )
        return value

    def reply(self, model: BaseModel | list[BaseModel], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if isinstance(model, list):
            self.finish("[" + ",".join(m.model_dump_json() for m in model) + "]")
        else:
            self.finish(model.model_dump_json())
