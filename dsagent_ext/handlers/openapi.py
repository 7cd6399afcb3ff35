"""The OpenAPI document of the DSAgent API, generated from the pydantic models.

The operation table below is checked against the route table by the tests, so the document cannot
silently drift from what the server answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .. import models as m
from ..store.workspace import SESSION_ID_PATTERN

JSON = "application/json"


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    where: str = "query"
    description: str = ""


@dataclass(frozen=True)
class Operation:
    summary: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    many: bool = False  # the response is a list of ``response``
    media: str = JSON
    errors: tuple[int, ...] = (404,)
    extra_body: dict[str, Any] = field(default_factory=dict)
    public: bool = False


def _enum(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values}


def _int(low: int, high: int | None, default: int) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": low, "default": default}
    return schema | ({"maximum": high} if high is not None else {})


CATEGORY = Param("category", _enum([c.value for c in m.FileCategory]) | {"default": "data"})
PAGE = (Param("limit", _int(1, 200, 50)), Param("offset", _int(0, None, 0)))
WORDS = tuple(
    Param(name, {"type": "string"}, description=f"Optional words for the model ({what}); a JSON body may carry them instead")
    for name, what in (("message", "any decision"), ("feedback", "as DSAgent's VS Code client sends an approve"),
                       ("reason", "as DSAgent's VS Code client sends a reject"))
)
FILENAME = Param("filename", {"type": "string", "minLength": 1}, "path")
UPLOAD = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                "category": CATEGORY.schema,
            },
        }
    }
}

S = "/api/sessions/{session_id}"
OPERATIONS: dict[str, dict[str, Operation]] = {
    "/health": {"get": Operation("Liveness", m.HealthResponse, errors=(), public=True)},
    "/health/ready": {"get": Operation("Readiness: workspace writable, kernel spec available", m.ReadinessResponse, errors=(503,), public=True)},
    "/api/sessions": {
        "get": Operation(
            "List sessions, most recently updated first",
            m.SessionListResponse,
            params=(
                Param("status", _enum([s.value for s in m.SessionStatus])),
                Param("limit", _int(1, 100, 50)),
                Param("notebook_path", {"type": "string"}, description="Only the session attached to this notebook"),
            ),
            errors=(400, 422),
        ),
        "post": Operation(
            "Create a session (attached to a notebook with notebook_path: it works in that notebook's kernel; "
            "400: also a model or HITL mode outside the admin's policy, or a model name litellm routes to no provider)",
            m.SessionResponse, 201, m.CreateSessionRequest, errors=(400, 404, 409, 422),
        ),
    },
    "/api/models": {
        "get": Operation(
            "Models the caller may pick now: the admin's list, providers whose keys are set, the api_base's models",
            m.ModelCatalogue,
            errors=(),
        )
    },
    "/api/policy": {
        "get": Operation(
            "The admin's policy and limits, and the caller's spending against them",
            m.PolicyResponse,
            params=(Param("session_id", {"type": "string"}, description="Also report this session's spending"),),
            errors=(400, 404),
        )
    },
    S: {
        "get": Operation("Get a session", m.SessionResponse),
        "put": Operation(
            "Change name, status, model, HITL mode or notebook (notebook_path null detaches; status archived: "
            "as POST .../archive; 400: also outside the admin's policy, or a model name litellm routes to no provider)",
            m.SessionResponse, body=m.UpdateSessionRequest, errors=(400, 404, 409, 422),
        ),
        "delete": Operation("Delete a session, its kernel and its folder (a notebook's kernel keeps running)", status=204),
    },
    f"{S}/archive": {
        "post": Operation("Archive a session (its kernel stops; an attached one detaches)", m.SessionResponse, errors=(404, 409))
    },
    f"{S}/export": {"get": Operation("Download the session and its history as JSON", media=JSON)},
    f"{S}/notebook": {"get": Operation("Download the session notebook", media="application/x-ipynb+json")},
    f"{S}/notebook/claim": {
        "post": Operation(
            "Claim the attached notebook: this window writes the agent's cells (renew before expires_in)",
            m.NotebookClaimResponse, body=m.NotebookClaimRequest, errors=(400, 404, 409, 422),
        ),
        "delete": Operation(
            "Release the claim: the server appends the agent's cells to the file from now on",
            status=204, params=(Param("client_id", {"type": "string"}),),
        ),
    },
    f"{S}/messages": {
        "get": Operation(
            "Conversation messages",
            m.MessagesResponse,
            params=(*PAGE, Param("role", _enum(["user", "assistant", "execution", "system"]))),
            errors=(400, 404, 422),
        )
    },
    f"{S}/turns": {"get": Operation("Rounds, shaped like round_complete events", m.TurnsResponse, params=PAGE, errors=(404, 422))},
    f"{S}/files": {
        "get": Operation("List files of a category", m.FileListResponse, params=(CATEGORY,), errors=(400, 404)),
        "post": Operation(
            "Upload one or more files",
            m.FileUploadResponse,
            201,
            params=(CATEGORY,),
            many=True,
            errors=(400, 404, 413, 422),
            extra_body=UPLOAD,
        ),
    },
    f"{S}/files/{{filename}}": {
        "get": Operation("Download a file", params=(FILENAME, CATEGORY), media="application/octet-stream", errors=(400, 404)),
        "delete": Operation("Delete a file", status=204, params=(FILENAME, CATEGORY), errors=(400, 404)),
    },
    f"{S}/artifacts": {
        "get": Operation(
            "List artifacts",
            m.ArtifactListResponse,
            params=(Param("type", _enum([t.value for t in m.ArtifactType])),),
            errors=(400, 404),
        )
    },
    f"{S}/artifacts/{{filename}}": {
        "get": Operation("Download an artifact", params=(FILENAME,), media="application/octet-stream", errors=(400, 404)),
        "delete": Operation("Delete an artifact", status=204, params=(FILENAME,), errors=(400, 404)),
    },
    f"{S}/kernel": {"get": Operation("Kernel state: variables, dataframes, imports", m.KernelState)},
    f"{S}/kernel/variables": {"get": Operation("Kernel variables", m.KernelVariable, many=True)},
    f"{S}/kernel/execute": {
        "post": Operation("Run code in the session kernel", m.ExecutionResult, body=m.ExecuteCodeRequest, errors=(404, 409, 422))
    },
    f"{S}/kernel/reset": {
        "post": Operation(
            "Restart the kernel (of an attached session: the user's notebook kernel, only with restart_user_kernel=true)",
            m.KernelState,
            params=(Param("restart_user_kernel", {"type": "boolean", "default": False}),),
            errors=(404, 409, 422),
        )
    },
    f"{S}/kernel/restore": {
        "post": Operation(
            "Replay the history's successful cells in a fresh kernel, streaming restore_progress events "
            "(Server-Sent Events, data: RestoreProgress) up to the one that ends it; the body may be empty "
            "(409 for a session attached to a notebook: its kernel is the user's)",
            body=m.RestoreRequest, media="text/event-stream", errors=(403, 404, 409, 422),
        ),
        "delete": Operation("Cancel the running kernel restore", m.ActionResponse, errors=(404,)),
    },
    f"{S}/chat": {
        "post": Operation(
            "Run a task to its end; the last round's fields plus every round (502: the model failed when called, "
            "e.g. its provider refused the request)", m.ChatResponse, body=m.ChatRequest,
            errors=(400, 404, 409, 422, 429, 502),
        )
    },
    f"{S}/chat/stream": {
        "post": Operation(
            "Run a task, streaming its events (Server-Sent Events)", body=m.ChatRequest, media="text/event-stream",
            errors=(400, 404, 409, 422, 429),
        ),
        "get": Operation(
            "Resume a stream after Last-Event-ID (header or last_event_id query), or follow the latest task",
            params=(Param("last_event_id", {"type": "integer", "minimum": 0}),),
            media="text/event-stream",
            errors=(400, 404),
        ),
    },
    f"{S}/chat/cancel": {"post": Operation("Cancel the running task", m.ActionResponse)},
    f"{S}/hitl/status": {"get": Operation("What the agent waits for a human decision on", m.HITLStatusResponse)},
    f"{S}/hitl/approve": {
        "post": Operation(
            "Approve the pending request; words given reach the model in the running task",
            m.ActionResponse, body=m.HITLWords, body_required=False, params=WORDS, errors=(404, 409, 422),
        )
    },
    f"{S}/hitl/reject": {
        "post": Operation(
            "Reject the pending request: the task ends; the reason given reaches the model in later tasks",
            m.ActionResponse, body=m.HITLWords, body_required=False, params=WORDS, errors=(404, 409, 422),
        )
    },
    f"{S}/hitl/respond": {
        "post": Operation(
            "Decide with any action: approve, reject, modify, retry, skip, feedback",
            m.ActionResponse,
            body=m.HITLActionRequest,
            errors=(400, 404, 409, 422),
        )
    },
}

SESSION_ID = Param("session_id", {"type": "string", "pattern": f"^{SESSION_ID_PATTERN}$"}, "path")


def _parameters(path: str, op: Operation) -> list[dict[str, Any]]:
    params = ([SESSION_ID] if "{session_id}" in path else []) + list(op.params)
    return [
        {"name": p.name, "in": p.where, "required": p.where == "path", "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in params
    ]


def _responses(op: Operation, ref: Any) -> dict[str, Any]:
    if op.status == 204:
        ok: dict[str, Any] = {"description": "Done"}
    elif op.response is None:
        ok = {"description": "File content", "content": {op.media: {"schema": {}}}}
    else:
        schema = ref(op.response)
        ok = {"description": "OK", "content": {JSON: {"schema": {"type": "array", "items": schema} if op.many else schema}}}
    responses = {str(op.status): ok}
    error = {"description": "Error", "content": {JSON: {"schema": ref(m.ErrorResponse)}}}
    for code in (*op.errors, *(() if op.public else (401, 403))):
        responses[str(code)] = error
    return responses


def build_spec(server_url: str) -> dict[str, Any]:
    """The whole document, for a server whose DSAgent routes start at ``server_url``."""
    used = {m.ErrorResponse}
    for ops in OPERATIONS.values():
        for op in ops.values():
            used.update(x for x in (op.response, op.body) if x is not None)
    keys, schema = models_json_schema(
        [(model, "validation" if model in _bodies() else "serialization") for model in sorted(used, key=lambda x: x.__name__)],
        ref_template="#/components/schemas/{model}",
    )

    def ref(model: type[BaseModel]) -> Any:
        mode = "validation" if model in _bodies() else "serialization"
        return keys[(model, mode)]

    paths: dict[str, Any] = {}
    for path, ops in OPERATIONS.items():
        paths[path] = {}
        for method, op in ops.items():
            spec: dict[str, Any] = {
                "summary": op.summary,
                "operationId": f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
                "parameters": _parameters(path, op),
                "responses": _responses(op, ref),
            }
            if op.body is not None:
                spec["requestBody"] = {"required": op.body_required, "content": {JSON: {"schema": ref(op.body)}}}
            elif op.extra_body:
                spec["requestBody"] = {"required": True, "content": op.extra_body}
            if not op.public:
                spec["security"] = [{"ApiKey": []}]
            paths[path][method] = spec
    return {
        "openapi": "3.1.0",
        "info": {"title": "DSAgent API", "version": __version__},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


def _bodies() -> set[type[BaseModel]]:
    return {op.body for ops in OPERATIONS.values() for op in ops.values() if op.body is not None}
