"""Sessions, health and history routes through a real Jupyter server with the extension."""

from __future__ import annotations

import asyncio
import json
import re

import pytest


async def call(jp_fetch, *path, method="GET", body=None, params=None):
    """Request a DSAgent route; return (status, parsed JSON or raw bytes, headers) without raising."""
    kwargs = {"method": method, "raise_error": False, "params": params}
    if body is not None:
        kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    elif method in ("POST", "PUT"):
        kwargs["body"] = b""
        kwargs["allow_nonstandard_methods"] = True
    r = await jp_fetch("dsagent", *path, **kwargs)
    try:
        payload = json.loads(r.body) if r.body else None
    except ValueError:
        payload = r.body
    return r.code, payload, r.headers


async def create(jp_fetch, **body):
    code, session, _ = await call(jp_fetch, "api", "sessions", method="POST", body=body)
    assert code == 201, session
    return session


async def test_health_and_ready(jp_fetch):
    code, health, _ = await call(jp_fetch, "health")
    assert code == 200 and health["status"] == "ok" and health["version"] == "0.1.0"
    assert health["timestamp"].endswith(("Z", "+00:00"))
    code, ready, _ = await call(jp_fetch, "health", "ready")
    assert code == 200 and ready == {"ready": True, "checks": {"workspace_writable": True, "kernel_available": True}, "detail": None}


async def test_create_defaults_and_fields(jp_fetch, jp_root_dir, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    session = await create(jp_fetch)
    assert re.fullmatch(r"\d{8}_\d{6}_[0-9a-f]{6}", session["id"])
    assert session["name"].startswith("Session ")
    assert session["status"] == "active" and session["hitl_mode"] == "none"
    assert session["message_count"] == 0 and session["kernel_variables"] == 0
    assert session["model"] == "gpt-4o"
    # no key for the default model: the session exists anyway and says what is missing
    assert session["missing_api_key"] == "OPENAI_API_KEY"
    workspace = session["workspace_path"]
    assert workspace == f"dsagent/sessions/{session['id']}" and not workspace.startswith("/")
    for sub in ("data", "artifacts", "notebooks", "logs"):
        assert (jp_root_dir / workspace / sub).is_dir()
    assert (jp_root_dir / workspace / "session.json").is_file()


async def test_create_validates(jp_fetch):
    code, err, _ = await call(jp_fetch, "api", "sessions", method="POST", body={"hitl_mode": "sometimes"})
    assert code == 422 and err["detail"][0]["loc"] == ["body", "hitl_mode"]
    code, err, _ = await call(jp_fetch, "api", "sessions", method="POST", body={"nmae": "typo"})
    assert code == 422 and err["detail"][0]["loc"] == ["body", "nmae"]
    code, err, _ = await call(jp_fetch, "api", "sessions", method="POST", body="{not json")
    assert code == 422 and isinstance(err["detail"], list)
    code, err, _ = await call(jp_fetch, "api", "sessions", method="POST", body="[]")
    assert code == 422


async def test_create_with_values_and_location(jp_fetch, jp_base_url):
    r = await jp_fetch(
        "dsagent", "api", "sessions", method="POST",
        body=json.dumps({"name": "Sales", "model": "anthropic/claude-sonnet-4-20250514", "hitl_mode": "plan_only"}),
    )
    session = json.loads(r.body)
    assert r.code == 201 and r.headers["Location"].endswith(f"/dsagent/api/sessions/{session['id']}")
    assert r.headers["Location"].startswith(jp_base_url)
    assert (session["name"], session["model"], session["hitl_mode"]) == (
        "Sales", "anthropic/claude-sonnet-4-20250514", "plan_only",
    )


async def test_list_filters_and_limits(jp_fetch):
    first = await create(jp_fetch, name="one")
    second = await create(jp_fetch, name="two")
    code, listing, _ = await call(jp_fetch, "api", "sessions")
    assert code == 200 and listing["total"] == 2
    assert [s["id"] for s in listing["sessions"]] == [second["id"], first["id"]]
    # list items carry the same fields as single gets
    assert listing["sessions"][0]["workspace_path"] == second["workspace_path"]
    code, listing, _ = await call(jp_fetch, "api", "sessions", params={"limit": "1"})
    assert len(listing["sessions"]) == 1 and listing["total"] == 2
    await call(jp_fetch, "api", "sessions", first["id"], "archive", method="POST")
    code, listing, _ = await call(jp_fetch, "api", "sessions", params={"status": "archived"})
    assert [s["id"] for s in listing["sessions"]] == [first["id"]]
    for bad in ({"status": "bogus"},):
        code, err, _ = await call(jp_fetch, "api", "sessions", params=bad)
        assert code == 400 and "Invalid status: bogus" in err["detail"]
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "ten"}):
        code, err, _ = await call(jp_fetch, "api", "sessions", params=bad)
        assert code == 422 and err["detail"][0]["loc"] == ["query", "limit"]


async def test_get_update_delete(jp_fetch, jp_root_dir, jp_serverapp):
    session = await create(jp_fetch, name="before")
    sid = session["id"]
    code, got, _ = await call(jp_fetch, "api", "sessions", sid)
    assert code == 200 and got["name"] == "before"
    code, updated, _ = await call(
        jp_fetch, "api", "sessions", sid, method="PUT", body={"name": "after", "model": "ollama/llama3", "hitl_mode": "full"}
    )
    assert code == 200 and (updated["name"], updated["model"], updated["hitl_mode"]) == ("after", "ollama/llama3", "full")
    assert updated["missing_api_key"] is None and updated["updated_at"] > session["updated_at"]
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, method="PUT", body={"hitl_mode": "plan_answer"})
    assert code == 422
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, method="PUT", body={"status": "bogus"})
    assert code == 422
    # the kernel was booted by create; delete removes kernel and folder
    service = jp_serverapp.web_app.settings["dsagent"]
    await service.get(sid).kernel_start
    kernel_id = service.get(sid).kernel.kernel_id
    assert kernel_id in jp_serverapp.kernel_manager.list_kernel_ids()
    code, body, _ = await call(jp_fetch, "api", "sessions", sid, method="DELETE")
    assert code == 204 and body is None
    assert kernel_id not in jp_serverapp.kernel_manager.list_kernel_ids()
    assert not (jp_root_dir / session["workspace_path"]).exists()
    code, err, _ = await call(jp_fetch, "api", "sessions", sid)
    assert code == 404 and err == {"detail": f"Session {sid} not found"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_unknown_and_invalid_ids(jp_fetch, method):
    body = {} if method == "PUT" else None
    code, err, _ = await call(jp_fetch, "api", "sessions", "20990101_000000_abcdef", method=method, body=body)
    assert code == 404 and err["detail"] == "Session 20990101_000000_abcdef not found"
    for bad in ("bad.id", "x" * 300, "%2e%2e"):
        code, err, _ = await call(jp_fetch, "api", "sessions", bad, method=method, body=body)
        assert code == 400 and "Invalid session id" in err["detail"]


async def test_export_notebook_messages_turns(jp_fetch):
    session = await create(jp_fetch, name='evil"\r\nX-Injected: 1')
    sid = session["id"]
    r = await jp_fetch("dsagent", "api", "sessions", sid, "export")
    assert r.headers["Content-Disposition"] == f'attachment; filename="{sid}.json"'
    assert "X-Injected" not in r.headers
    export = json.loads(r.body)
    assert export["session"]["id"] == sid and export["messages"] == [] and export["turns"] == []
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "notebook")
    assert code == 404 and "No notebook available" in err["detail"]
    code, messages, _ = await call(jp_fetch, "api", "sessions", sid, "messages")
    assert messages == {"messages": [], "total": 0, "has_more": False}
    code, turns, _ = await call(jp_fetch, "api", "sessions", sid, "turns")
    assert turns == {"turns": [], "total": 0, "has_more": False, "last_event_id": 0}
    for route, params in (("messages", {"limit": "201"}), ("turns", {"limit": "0"}), ("turns", {"offset": "-1"})):
        code, err, _ = await call(jp_fetch, "api", "sessions", sid, route, params=params)
        assert code == 422, (route, params)
    code, err, _ = await call(jp_fetch, "api", "sessions", sid, "messages", params={"role": "robot"})
    assert code == 400


async def test_messages_derived_from_events(jp_fetch, jp_serverapp):
    session = await create(jp_fetch)
    live = jp_serverapp.web_app.settings["dsagent"].get(session["id"])
    live.publish("user_message", {"message": "hello"})
    live.publish("llm_response", {"content": "<answer>hi</answer>"})
    code, messages, _ = await call(jp_fetch, "api", "sessions", session["id"], "messages", params={"limit": "1"})
    assert [m["role"] for m in messages["messages"]] == ["user"] and messages["has_more"] and messages["total"] == 2
    code, messages, _ = await call(jp_fetch, "api", "sessions", session["id"], "messages", params={"role": "assistant"})
    assert messages["messages"][0]["content"] == "<answer>hi</answer>" and messages["total"] == 1
    code, got, _ = await call(jp_fetch, "api", "sessions", session["id"])
    assert got["message_count"] == 2


async def test_concurrent_creates_each_get_a_kernel(jp_fetch, jp_serverapp):
    """Ten creates at once: ten sessions, each with its own kernel booted in the background (how long
    that takes is a benchmark figure, not a test)."""
    sessions = await asyncio.gather(*(create(jp_fetch, name=f"s{i}") for i in range(10)))
    assert len({s["id"] for s in sessions}) == 10
    service = jp_serverapp.web_app.settings["dsagent"]
    await asyncio.gather(*(service.get(s["id"]).kernel_start for s in sessions))
    assert all(service.get(s["id"]).kernel.is_alive for s in sessions)
    for s in sessions:
        await call(jp_fetch, "api", "sessions", s["id"], method="DELETE")


async def test_jupyter_sessions_api_unaffected(jp_fetch, jp_root_dir):
    """JupyterLab opens notebooks through the server's own /api/sessions: it must still work."""
    (jp_root_dir / "nb.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    body = {"path": "nb.ipynb", "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    r = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    assert r.code == 201
    jupyter_session = json.loads(r.body)
    assert jupyter_session["path"] == "nb.ipynb" and jupyter_session["kernel"]["id"]
    r = await jp_fetch("api", "sessions")
    assert [s["id"] for s in json.loads(r.body)] == [jupyter_session["id"]]
    await jp_fetch("api", "sessions", jupyter_session["id"], method="DELETE")


async def test_openapi_covers_routes(jp_fetch, jp_serverapp):
    from dsagent_ext.handlers import route_table
    from dsagent_ext.handlers.base import DSAgentHandler
    from dsagent_ext.handlers.openapi import OPERATIONS

    r = await jp_fetch("dsagent", "openapi.json")
    spec = json.loads(r.body)
    assert spec["servers"][0]["url"].endswith("/dsagent")
    documented = {(path, method) for path, ops in OPERATIONS.items() for method in ops}
    served = set()
    for pattern, handler in route_table():
        if pattern in ("openapi.json", "docs") or pattern.startswith("ws/"):
            continue
        path = "/" + pattern.replace("api/sessions/([^/]+)", "api/sessions/{session_id}").replace("([^/]+)", "{filename}")
        own = [k for k in handler.__mro__ if issubclass(k, DSAgentHandler) and k is not DSAgentHandler]
        for method in ("get", "post", "put", "delete"):
            if any(method in vars(k) for k in own):
                served.add((path, method))
    assert documented == served
    r = await jp_fetch("dsagent", "docs")
    assert b"/api/sessions/{session_id}/files" in r.body and r.headers["Content-Type"].startswith("text/html")


async def test_chat_without_provider_key(jp_fetch, monkeypatch):
    """A model whose key is unset: a clear 400 before anything starts, for sync and stream alike."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    session = await create(jp_fetch, model="gpt-4o")
    for route in ("chat", ("chat", "stream")):
        parts = route if isinstance(route, tuple) else (route,)
        code, err, _ = await call(jp_fetch, "api", "sessions", session["id"], *parts, method="POST", body={"message": "x"})
        assert code == 400
        assert err["detail"] == "No API key for model gpt-4o: set OPENAI_API_KEY on the server or pick another model"
    code, turns, _ = await call(jp_fetch, "api", "sessions", session["id"], "turns")
    assert turns["total"] == 0


@pytest.fixture
def dsagent_config(request):
    """Per test (indirect): ``{"api_base": True}`` sends the model calls to the scripted server."""
    config = dict(getattr(request, "param", {}))
    if config.pop("api_base", False):
        config["api_base"] = request.getfixturevalue("fake_llm").api_base
    return config


ROUTING = [{"models": ["house/special"]}, {"models": ["house/special"], "api_base": True}]


@pytest.mark.parametrize("dsagent_config", ROUTING, indirect=True, ids=["no-api-base", "api-base"])
async def test_model_names_nobody_serves_are_refused(dsagent_config, client):
    """A name litellm routes to no provider with the server's settings is refused on create and PUT (400,
    naming the model and litellm's reason); names it routes, and the admin's own list, are taken."""
    api_base = "api_base" in dsagent_config
    refused = ["nonexistent/abc"] + ([] if api_base else ["no-such-model-anywhere"])
    for model in refused:
        r = await client.call("POST", "/api/sessions", json={"model": model})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"Model {model} cannot be used on this server: LLM Provider NOT provided"), detail
    created = (await client.call("POST", "/api/sessions", json={})).json()  # the default model
    sid = created["id"]
    r = await client.call("PUT", f"/api/sessions/{sid}", json={"model": "nonexistent/abc", "name": "renamed"})
    assert r.status_code == 400 and "nonexistent/abc" in r.json()["detail"] and "LLM Provider NOT provided" in r.json()["detail"]
    session = (await client.call("GET", f"/api/sessions/{sid}")).json()
    assert session["model"] == created["model"] and session["name"] == created["name"]  # nothing changed
    accepted = ["gpt-4o", "anthropic/claude-sonnet-4-20250514", "ollama/llama3", "house/special"]
    accepted += ["llama3:8b"] if api_base else []  # a bare name goes to the api_base
    for model in accepted:
        r = await client.call("POST", "/api/sessions", json={"model": model})
        assert r.status_code == 201 and r.json()["model"] == model, r.text
        r = await client.call("PUT", f"/api/sessions/{sid}", json={"model": model})
        assert r.status_code == 200 and r.json()["model"] == model, r.text
