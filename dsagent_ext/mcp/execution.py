"""``execute_code``: a cell in the session's kernel, behind the session's approval gate in ``full`` mode.

In ``full`` mode every cell is a human's decision, the agent's own and an MCP client's alike: the cell
becomes the session's pending code approval (seen in JupyterLab and by ``GET .../hitl/status``),
asked through elicitation when the client can, and runs only once approved (edited, if so decided).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import CallToolResult
from pydantic import Field

from ..engine.hitl import Decision, Pause
from ..models import HITLAction
from ..sessions.live import Session, SessionBusy
from .approvals import ask, supports_elicitation
from .content import MAX_IMAGES, OUTPUT_CAP, b64_image_block, cap, text_block
from .results import ExecuteResult, dump
from .tools import RUN, SessionId, caller, domain_errors

if TYPE_CHECKING:
    from .tools import Services


def register_execution(server: FastMCP, services: Services) -> None:
    sessions = services.sessions

    @server.tool(annotations=RUN)
    @domain_errors
    async def execute_code(
        session_id: SessionId,
        code: Annotated[str, Field(max_length=1_000_000)],
        ctx: Context[Any, Any, Any],
        timeout: Annotated[float | None, Field(gt=0, le=3600, description="Seconds before the kernel is interrupted.")] = None,
    ) -> Annotated[CallToolResult, ExecuteResult]:
        """Run a cell in the session's kernel (an attached session's is the user's notebook kernel) and return
        its outputs, images as image blocks. In full HITL mode a human approves the cell first."""
        session = sessions.get(session_id)
        if session.busy:
            raise SessionBusy("Session is running a task; wait for it or cancel it before executing code")
        if session.gate.wants("code"):
            decision = await approve(ctx, session, code, caller(ctx))
            if decision.action not in (HITLAction.approve, HITLAction.modify):
                result = ExecuteResult(
                    session_id=session.id, status="rejected", success=False,
                    message=decision.message or f"The cell was not approved ({decision.action.value})",
                )
                return CallToolResult(content=[text_block(f"Not run: {result.message}")], structuredContent=dump(result))
            code = decision.modified_code or code
        ran = await sessions.execute(session, code, timeout=timeout or services.settings.code_timeout)
        result = ExecuteResult(
            session_id=session.id, status="executed", success=ran.success, output=cap(ran.output, OUTPUT_CAP),
            error=ran.error, execution_count=ran.execution_count,
        )
        images = [b for i in ran.images[:MAX_IMAGES] if (b := b64_image_block(i.data, i.mime)) is not None]
        text = result.output or ("(no output)" if ran.success else ran.error or "failed")
        return CallToolResult(content=[text_block(text), *images], structuredContent=dump(result), isError=False)


async def approve(ctx: Context[Any, Any, Any], session: Session, code: str, who: Any) -> Decision:
    """Make the cell the session's pending code approval and wait for whoever decides (the client's human
    through elicitation, JupyterLab, REST), up to the gate's timeout; a client gone rejects it."""
    gate = session.gate
    pause = gate.open(Pause("code", code=code))
    session.publish("hitl_request", pause.request(gate.timeout))
    asking = asyncio.ensure_future(ask(ctx, gate, pause, who.identity)) if supports_elicitation(ctx) else None
    gone = asyncio.ensure_future(who.disconnected.wait())
    decided = asyncio.ensure_future(gate.wait(pause))
    try:
        await asyncio.wait({decided, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not decided.done():
            decided.cancel()
            decision = Decision(HITLAction.reject, message="The MCP client went away", by=who.identity)
        else:
            decision = decided.result()
    finally:
        for future in (asking, gone, decided):
            if future is not None and not future.done():
                future.cancel()
    session.publish("hitl_resolved", {"request_type": "code", "round": 0, **decision.record()})
    return decision
