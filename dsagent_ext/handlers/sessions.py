"""Session resources: create, list, read, change, archive, export, delete, history."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import (
    CreateSessionRequest,
    MessagesResponse,
    SessionListResponse,
    SessionStatus,
    TurnsResponse,
    UpdateSessionRequest,
)
from ..store.history import derive_messages, derive_turns, messages_page, turns_page
from .base import DSAgentHandler

_ROLES = ("user", "assistant", "execution", "system")


def _choice(value: str | None, allowed: list[str], what: str) -> str | None:
    """A query value from a fixed list; unknown values are a 400, never silently ignored."""
    if value in (None, ""):
        return None
    if value not in allowed:
        raise web.HTTPError(400, f"Invalid {what}: {value}. Valid: {allowed}".replace("%", "%%"))
    return value


class SessionRootHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List sessions, most recently updated first (``?notebook_path=``: those attached to that notebook)."""
        status = _choice(self.get_query_argument("status", None), [s.value for s in SessionStatus], "status")
        limit = self.query_int("limit", 50, low=1, high=100)
        notebook_path = self.get_query_argument("notebook_path", None) or None
        sessions, total = self.service.list(SessionStatus(status) if status else None, limit, notebook_path)
        self.reply(SessionListResponse(sessions=[self.service.response(s) for s in sessions], total=total))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Create a session; its kernel boots in the background (an attached one's is the notebook's)."""
        request = self.parse_body(CreateSessionRequest)
        session = await self.service.create(request)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + session.id)
        self.reply(self.service.response(session), 201)


class SessionHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Get a session."""
        self.reply(self.service.response(self.session(session_id)))

    @web.authenticated
    @authorized
    async def put(self, session_id: str) -> None:
        """Change name, status, model, HITL mode or notebook; only the fields given."""
        session = self.session(session_id)
        request = self.parse_body(UpdateSessionRequest)
        self.reply(self.service.response(await self.service.update(session, request)))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        """Delete a session with its kernel and folder (a notebook's kernel keeps running)."""
        await self.service.delete(self.session(session_id))
        self.set_status(204)
        self.finish()


class ArchiveHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Archive a session: its kernel stops, its files and history stay."""
        session = await self.service.archive(self.session(session_id))
        self.reply(self.service.response(session))


class ExportHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Download the session with its whole history as one JSON file."""
        session = self.session(session_id)
        events = session.events.read()
        export = {
            "session": json.loads(self.service.response(session).model_dump_json()),
            "messages": [json.loads(m.model_dump_json()) for m in derive_messages(events)],
            "turns": [json.loads(t.model_dump_json()) for t in derive_turns(events)],
        }
        # the id is validated to [a-zA-Z0-9_-], so nothing can break out of the quoted filename
        self.set_header("Content-Disposition", f'attachment; filename="{session.id}.json"')
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(export, ensure_ascii=False))


class NotebookHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Download the session's notebook."""
        session = self.session(session_id)
        notebooks = self.service.notebooks
        await notebooks.flush(session)
        path = session.folder / notebooks.name(session)
        if not path.is_file():
            raise web.HTTPError(404, "No notebook available for this session yet: it is written after the first chat round")
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.set_header("Content-Disposition", f'attachment; filename="{session.id}.ipynb"')
        self.finish(path.read_bytes())


class MessagesHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Conversation messages, oldest first, derived from the event log."""
        session = self.session(session_id)
        limit = self.query_int("limit", 50, low=1, high=200)
        offset = self.query_int("offset", 0, low=0)
        role = _choice(self.get_query_argument("role", None), list(_ROLES), "role")
        page, total = messages_page(session.events.read(), offset, limit, role)
        self.reply(MessagesResponse(messages=page, total=total, has_more=offset + limit < total))


class TurnsHandler(DSAgentHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """Rounds as streamed in ``round_complete``, for rendering history like live events."""
        session = self.session(session_id)
        limit = self.query_int("limit", 50, low=1, high=200)
        offset = self.query_int("offset", 0, low=0)
        events = session.events.read()
        page, total = turns_page(events, offset, limit)
        last = events[-1]["seq"] if events else 0
        self.reply(TurnsResponse(turns=page, total=total, has_more=offset + limit < total, last_event_id=last))
