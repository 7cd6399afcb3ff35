"""The MCP server and its session, task and approval tools, each calling the services REST calls.

Tools read who calls from the request's ASGI scope (set by the handler after Jupyter's auth): that
identity is the one the policy and the spending limits count, as for REST. Domain errors (unknown
session, busy, policy, limits) come back as ``isError`` results with the message REST would give.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from ..notebook.attachments import NotebookTaken
from ..engine.hitl import Decision
from ..models import (
    ActionResponse, CreateSessionRequest, HITLAction, HITLMode, SessionListResponse, SessionResponse, SessionStatus,
)
from ..sessions.live import Session, SessionBusy
from .approvals import approval
from .content import text_block
from .results import ApprovalResult, TaskResult, dump
from .tasks import TaskWatch

if TYPE_CHECKING:
    from ..sessions.runs import RunService
    from ..sessions.service import SessionService
    from ..settings import MCPSettings

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
CHANGE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
RUN = ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=True)
DEFAULT_WAIT = 50.0
MAX_WAIT = 300.0
INSTRUCTIONS = """DSAgent is a data-science agent working in this Jupyter server's kernels and notebooks.
Create (or find) a session, hand it a task with run_task and follow it with get_task until its status is no
longer running. Approvals of plans and code go to a human (in this client when it can ask, else in JupyterLab)."""

SessionId = Annotated[str, Field(description="The session's id (from list_sessions or create_session).")]
WaitSeconds = Annotated[
    float, Field(ge=0, le=MAX_WAIT, description="Longest wait in seconds before answering with status running.")
]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass
class Services:
    """What the tools call: the same services the REST handlers call."""

    sessions: SessionService
    runs: RunService
    contents: Callable[[], Any]  # the server's contents manager
    settings: MCPSettings
    log: logging.Logger


def caller(ctx: Context[Any, Any, Any]) -> Any:
    from .service import CALLER

    request = ctx.request_context.request
    state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
    if CALLER not in state:
        raise ToolError("This tool is served over DSAgent's HTTP endpoint only")
    return state[CALLER]


def domain_errors(func: F) -> F:
    """Domain errors as ``isError`` results with REST's words (``busy: ...`` for a running session)."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await func(*args, **kwargs)
        except ToolError:
            raise
        except SessionBusy as e:
            raise ToolError(f"busy: {e}") from None
        except Exception as e:
            if getattr(e, "http_status", None) or isinstance(e, (LookupError, ValueError)):
                raise ToolError(str(e)) from None
            raise

    return wrapper  # type:ignore[return-value]


def reply(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(content=[text_block(text)], structuredContent=dump(model))


def build_server(services: Services) -> FastMCP:
    """The MCP server with every tool and resource registered."""
    from .execution import register_execution
    from .reading import register_reading

    server = FastMCP("dsagent", instructions=INSTRUCTIONS, log_level="WARNING")
    register_sessions(server, services)
    register_tasks(server, services)
    register_execution(server, services)
    register_reading(server, services)
    return server


def register_sessions(server: FastMCP, services: Services) -> None:
    sessions = services.sessions

    @server.tool(annotations=READ)
    @domain_errors
    async def list_sessions(
        status: Annotated[Literal["active", "archived"] | None, Field(description="Only sessions of this status.")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 50,
        notebook_path: Annotated[str | None, Field(description="Only the session attached to this notebook.")] = None,
    ) -> Annotated[CallToolResult, SessionListResponse]:
        """List DSAgent sessions, most recently updated first (as GET /api/sessions)."""
        found, total = sessions.list(SessionStatus(status) if status else None, limit, notebook_path)
        listing = SessionListResponse(sessions=[sessions.response(s) for s in found], total=total)
        lines = [f"{s.id}: {s.name} ({s.status.value}{', ' + s.notebook_path if s.notebook_path else ''})" for s in listing.sessions]
        return reply(listing, f"{total} sessions" + ("\n" + "\n".join(lines) if lines else ""))

    @server.tool(annotations=CHANGE)
    @domain_errors
    async def create_session(
        name: Annotated[str | None, Field(max_length=200)] = None,
        model: Annotated[str | None, Field(max_length=200, description="litellm model name; the server's default when absent.")] = None,
        hitl_mode: Annotated[HITLMode | None, Field(description="Where the agent pauses for a human's approval.")] = None,
        notebook_path: Annotated[str | None, Field(description="Work in this notebook (relative to the server root) and its kernel.")] = None,
    ) -> Annotated[CallToolResult, SessionResponse]:
        """Create a session (its own kernel, or the kernel of notebook_path). When that notebook already has
        a session, that session is returned."""
        request = CreateSessionRequest(name=name, model=model, hitl_mode=hitl_mode, notebook_path=notebook_path)
        try:
            session = await sessions.create(request)
            text = f"Created session {session.id}"
        except NotebookTaken as e:
            session = sessions.get(e.payload["session_id"])
            text = f"Notebook {notebook_path} already has session {session.id}: use it"
        return reply(sessions.response(session), text)


def register_tasks(server: FastMCP, services: Services) -> None:
    sessions, runs, settings = services.sessions, services.runs, services.settings

    def watch(ctx: Context[Any, Any, Any], session: Session) -> TaskWatch:
        return TaskWatch(ctx, session, caller(ctx), settings.keepalive)

    @server.tool(annotations=RUN)
    @domain_errors
    async def run_task(
        session_id: SessionId,
        message: Annotated[str, Field(max_length=200_000, description="The task, in plain words.")],
        ctx: Context[Any, Any, Any],
        wait_seconds: WaitSeconds = DEFAULT_WAIT,
    ) -> Annotated[CallToolResult, TaskResult]:
        """Hand the session's agent a task: it plans, runs code in the kernel, repairs and answers. Progress
        is reported while it works; the call returns at its end (with its answer, rounds and figures) or
        after wait_seconds with status running: then follow it with get_task. The task goes on either way."""
        session = sessions.get(session_id)
        subscription = runs.start(session, message, caller(ctx).identity)
        return await watch(ctx, session).follow(subscription, wait_seconds, ask_pending=False)

    @server.tool(annotations=READ)
    @domain_errors
    async def get_task(
        session_id: SessionId,
        ctx: Context[Any, Any, Any],
        after_event: Annotated[int | None, Field(ge=0, description="next_event of the previous call; absent: the latest task from its start.")] = None,
        wait_seconds: WaitSeconds = DEFAULT_WAIT,
    ) -> Annotated[CallToolResult, TaskResult]:
        """The session's latest task from after_event on: waits up to wait_seconds for it to end."""
        session = sessions.get(session_id)
        subscription = runs.follow(session, after_event)
        task = watch(ctx, session)
        task.catch_up(subscription.after)
        return await task.follow(subscription, wait_seconds, ask_pending=True)

    @server.tool(annotations=RUN)
    @domain_errors
    async def cancel_task(session_id: SessionId) -> Annotated[CallToolResult, ActionResponse]:
        """Cancel the session's running task: stop the model, interrupt the kernel (as POST .../chat/cancel)."""
        cancelled = await runs.cancel(sessions.get(session_id))
        response = ActionResponse(success=cancelled, message="Task cancelled" if cancelled else "No task is running")
        return reply(response, response.message)

    @server.tool(annotations=READ)
    @domain_errors
    async def get_approval(session_id: SessionId) -> Annotated[CallToolResult, ApprovalResult]:
        """What the session's task waits for a human to approve (plan, code, error or answer), and the actions allowed."""
        session = sessions.get(session_id)
        pause = session.gate.pending if session.gate.pending and not session.gate.pending.future.done() else None
        result = ApprovalResult(session_id=session.id, status=session.gate.status(), approval=approval(pause) if pause else None)
        return reply(result, result.approval.message if result.approval else "Nothing is awaiting approval")

    @server.tool(annotations=RUN)
    @domain_errors
    async def respond_approval(
        session_id: SessionId,
        action: HITLAction,
        ctx: Context[Any, Any, Any],
        message: Annotated[str | None, Field(max_length=100_000)] = None,
        modified_code: Annotated[str | None, Field(max_length=1_000_000)] = None,
        modified_plan: Annotated[str | None, Field(max_length=100_000)] = None,
    ) -> Annotated[CallToolResult, ActionResponse]:
        """Answer a pending approval (as POST .../hitl/respond). Refused unless the server's admin lets agents
        approve (an agent approving its own code is no human gate): a human answers in JupyterLab otherwise."""
        if not settings.allow_agent_approval:
            raise ToolError(
                "Agents may not answer approvals on this server (DSAgent.mcp_allow_agent_approval is off): "
                "ask the user to answer in JupyterLab's DSAgent panel"
            )
        session = sessions.get(session_id)
        decision = Decision(action, message, modified_plan, modified_code, by=caller(ctx).identity)
        response = ActionResponse(success=True, message=session.gate.resolve(decision))
        return reply(response, response.message)
