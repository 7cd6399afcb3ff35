"""Agent tasks as background runs of a session, and the subscriptions transports read them through.

A run belongs to the session, not to the HTTP request that started it: SSE, sync chat and WebSocket
are subscribers, so a client that disconnects loses nothing and can resume from the event log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from jupyter_core.utils import ensure_async

from ..engine.cell_edits import CellEdits
from ..engine.conversation import history_from_turns, summary_request
from ..engine.llm import LLMClient, LLMError, missing_api_key, surely_routed
from ..engine.model_workers import ModelWorkers, WorkerLLMClient
from ..engine.runner import AgentRunner, RunConfig
from ..governance.policy import UnroutableModel
from ..governance.spending import LimitReached, Spending, session_spent
from ..models import ChatResponse, NotebookContext, RoundResult, Usage
from ..settings import RunSettings
from ..store.history import stored_turns
from .live import LOG_ONLY, Session, SessionBusy
from .restore import Plan, RestoreService, agent_notice, ends_restore
from .service import SessionService

TERMINAL = "done"
_IDLE: Any = object()  # queued by a subscription's keepalive timer
KEEP_TURNS = 4  # the most recent rounds always stay verbatim


class NoApiKey(ValueError):
    """The session's model needs a provider key the server does not have."""


class Subscription:
    """One reader of a session's events: what it missed from the log, then what happens live."""

    def __init__(self, session: Session, after: int | None) -> None:
        self.session = session
        self.after = after
        self.queue: asyncio.Queue[Any] = asyncio.Queue()  # records; None: closed; _IDLE: keepalive due
        self.closed = False
        session.subscribers.add(self.queue)

    def replay(self) -> list[dict[str, Any]]:
        """Logged events after ``after`` that a live client would have received."""
        if self.after is None:
            return []
        missed = [r for r in self.session.events.read(self.after) if r["event"] not in LOG_ONLY]
        if missed:
            self.after = missed[-1]["seq"]
        return missed

    @property
    def queued(self) -> bool:
        """Live events are waiting to be read (the reader may write them out together)."""
        return self.queue.qsize() > 0

    def close(self) -> None:
        self.closed = True
        self.session.subscribers.discard(self.queue)
        self.queue.put_nowait(None)

    async def events(
        self, keepalive: float | None = None, *, forever: bool = False
    ) -> AsyncIterator[dict[str, Any] | None]:
        """Replay, then live events up to and including ``done`` or the end of a restore run on its own
        (or until closed, ``forever``); None every ``keepalive`` idle seconds."""
        try:
            for record in self.replay():
                yield record
            if not forever and not self.session.busy:
                return  # nothing more will come
            while not self.closed:
                record = self.queue.get_nowait() if self.queue.qsize() else await self._wait(keepalive)
                if record is _IDLE:
                    yield None
                    continue
                if record is None:
                    return
                if record.get("seq") is not None and self.after is not None and record["seq"] <= self.after:
                    continue  # already replayed from the log
                yield record
                if (record["event"] == TERMINAL or ends_restore(record)) and not forever:
                    return
        finally:
            self.close()

    async def _wait(self, keepalive: float | None) -> Any:
        """The next record, or ``_IDLE`` after ``keepalive`` seconds without one.

        A timer puts the marker in the queue (rather than ``wait_for``, which wraps every wait in a
        task): the reader wakes in the same loop turn as the event's publisher yields.
        """
        timer = None
        if keepalive:
            timer = asyncio.get_running_loop().call_later(keepalive, self.queue.put_nowait, _IDLE)
        try:
            return await self.queue.get()
        finally:
            if timer is not None:
                timer.cancel()


class RunService:
    """Starts, cancels and follows agent tasks."""

    def __init__(
        self,
        settings: RunSettings,
        sessions: SessionService,
        restores: RestoreService,
        spending: Spending,
        contents_manager: Any,
        log: logging.Logger,
    ) -> None:
        """``contents_manager``: the server's, to read an attached notebook for the model."""
        self.settings = settings
        self.sessions = sessions
        self.restores = restores
        self.spending = spending
        self.contents_manager = contents_manager
        self.log = log
        # litellm's per-chunk CPU runs in worker processes, off the loop that serves JupyterLab
        model = settings.model
        self.workers = ModelWorkers(model.workers, log) if model.workers else None

    def llm(self) -> LLMClient:
        model = self.settings.model
        options = (model.api_base, model.temperature, model.max_tokens)
        if self.workers is None:
            return LLMClient(*options, timeout=model.timeout, fast_path=model.fast_path)
        return WorkerLLMClient(self.workers, *options, timeout=model.timeout, fast_path=model.fast_path)

    async def check_route(self, model: str) -> None:
        """``UnroutableModel`` (400) for a name litellm sends to no provider with the server's settings.

        litellm's own routing decides, asked where model calls run (a model worker: the server never
        imports litellm for it; the worker then serves the session's first task). The admin's list and
        default are taken as configured, and names litellm surely routes are not asked about: the first
        question starts a worker, seconds of importing litellm, which a create should rarely wait for."""
        settings = self.settings.model
        if model == settings.default_model or model in settings.admin_models:
            return
        if surely_routed(model, settings.api_base):
            return
        try:
            await self.llm().route(model)
        except LLMError as e:
            raise UnroutableModel(f"Model {model} cannot be used on this server: {e}") from None

    async def stop(self) -> None:
        """Server stop, after the runs ended: the model workers exit."""
        if self.workers is not None:
            await self.workers.stop()

    def start(
        self,
        session: Session,
        message: str,
        user: str,
        notebook: NotebookContext | None = None,
        *,
        edit_cells: bool = True,
    ) -> Subscription:
        """Start a task for ``user`` and return a subscription that sees all of it; 409 when one is
        running, 400 outside the admin's policy, 429 while a spending limit is reached.

        ``notebook``: the user's notebook as the client shows it; an attached session without it reads
        the saved notebook. ``edit_cells``: whether the agent may rewrite the user's cells (``<code cell="N">``)
        rather than only add cells."""
        if session.busy:
            doing = "a kernel restore" if session.restoring else "another task"
            raise SessionBusy(f"Session is busy with {doing}; wait for it to finish or cancel it")
        model = self.sessions.resolve_model(session)
        # the session may predate the policy: it is checked again on every task
        self.sessions.policy.check_model(model)
        self.sessions.policy.check_hitl_mode(session.record.hitl_mode)
        missing = missing_api_key(model, self.settings.model.api_base)
        if missing:
            raise NoApiKey(f"No API key for model {model}: set {missing} on the server or pick another model")
        events = session.events.read()
        spent = session_spent(events)
        self.spending.check_start(user, spent)
        runner = AgentRunner(
            self.llm(),
            session.kernel,
            RunConfig(
                model=model, max_rounds=self.settings.max_rounds, code_timeout=self.settings.code_timeout,
                notebook=session.record.notebook_path, workspace=self.sessions.workspace_from_notebook(session),
                vision=self.settings.vision,
            ),
            gate=session.gate,
            budget=lambda usage: self.spending.over(user, spent, usage),
        )
        runner.history = lambda: self._history(session, runner, events)
        self.sessions.reactivate(session)  # saved with the first round
        restore = self.restores.plan(session) if self.restores.wanted(session) else None
        if session.record.notebook_path and edit_cells:
            runner.edits = CellEdits(lambda: self.sessions.cells.current(session))
        if notebook is not None or session.record.notebook_path:
            runner.notebook = lambda: self._notebook(session, notebook, runner.edits)
        start = session.publish("user_message", {"message": message})
        subscription = Subscription(session, start["seq"])
        session.run = asyncio.ensure_future(self._drive(session, runner, message, user, restore))
        return subscription

    def follow(self, session: Session, after: int | None) -> Subscription:
        """Subscribe from ``after`` (Last-Event-ID), or from the start of the latest task."""
        if after is None:
            after = self._last_task_start(session)
        return Subscription(session, after)

    async def cancel(self, session: Session) -> bool:
        """Stop the running task (model stream and kernel cell); False when nothing runs."""
        if not session.busy:
            return False
        assert session.run is not None
        session.run.cancel()
        await asyncio.gather(session.run, return_exceptions=True)
        return True

    async def chat(
        self,
        session: Session,
        message: str,
        user: str,
        notebook: NotebookContext | None = None,
        *,
        edit_cells: bool = True,
    ) -> tuple[ChatResponse | None, str | None]:
        """Run a task to its end: the sync response, or the error that ended it (``LimitReached``
        when a spending limit did)."""
        rounds: list[RoundResult] = []
        usage, error, limit = Usage(), None, None
        async for record in self.start(session, message, user, notebook, edit_cells=edit_cells).events():
            if record["event"] == "round_complete":
                rounds.append(RoundResult(**record["data"]))
            elif record["event"] == "error":
                error = record["data"]["error"]
                limit = record["data"] if record["data"].get("limit") else None
            elif record["event"] == TERMINAL:
                usage = Usage(**record["data"].get("usage", {}))
        if limit is not None:
            raise LimitReached(limit)
        if not rounds:
            return None, error or "The task ended without a reply"
        last = rounds[-1]
        return ChatResponse(**last.model_dump(exclude={"round", "usage", "stop_reason"}), rounds=rounds, usage=usage), error

    async def _drive(
        self, session: Session, runner: AgentRunner, message: str, user: str, restore: Plan | None
    ) -> None:
        """Restore the kernel first when due, then publish the runner's events, writing the record (and
        the round's spending) before each ``round_complete`` (and the record before a ``done`` that
        follows no round): nothing is awaited between the last round and ``done``, so a client that
        sees either may send the next message at once and finds the session free."""
        try:
            restored = await self.restores.replay(session, restore, auto=True) if restore is not None else None
            if restored is not None and restored.status == "cancelled":
                await self._cancelled_before_start(session)
                return
            runner.kernel_notice = agent_notice(session, restored)
            after_round = False
            async for event in runner.run(message):
                if event.name == "round_complete" and event.data.get("usage"):
                    await self.spending.record(user, Usage(**event.data["usage"]))
                if event.name == "round_complete" or (event.name == TERMINAL and not after_round):
                    await self.sessions.save(session)
                after_round = event.name == "round_complete"
                session.publish(event.name, event.data)
        except asyncio.CancelledError:  # cancelled before the runner took it: still end the stream
            await self._finish(session, {})
        except Exception as e:  # a fault below the runner (kernel gone, disk full): report, never hang
            self.log.exception("DSAgent: task in session %s failed", session.id)
            session.publish("error", {"error": f"The task failed: {e}"})
            await self._finish(session, {})

    async def _cancelled_before_start(self, session: Session) -> None:
        """The task was cancelled during its automatic restore: it ends as a cancelled task does."""
        closing = RoundResult(round=1, content="", answer="Task cancelled by user.", is_complete=True, stop_reason="cancelled")
        try:
            await self.sessions.save(session)
        except OSError as e:
            self.log.warning("DSAgent: could not save the record of session %s: %s", session.id, e)
        session.publish("round_complete", closing.model_dump(mode="json"))
        session.publish(TERMINAL, {"usage": Usage().model_dump(mode="json")})

    async def _finish(self, session: Session, data: dict[str, Any]) -> None:
        """End a task the runner could not end: the record is written first, nothing awaited after ``done``."""
        try:
            await self.sessions.save(session)
        except OSError as e:
            self.log.warning("DSAgent: could not save the record of session %s: %s", session.id, e)
        session.publish(TERMINAL, data)

    async def _history(self, session: Session, runner: AgentRunner, events: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Earlier tasks as model messages, summarised first when they outgrow ``context_tokens``."""
        turns = stored_turns(events)
        summary = next((r["data"] for r in reversed(events) if r["event"] == "summary"), None)
        covered = summary["turns"] if summary else 0
        limit = runner.config.feedback_chars
        history = history_from_turns(turns[covered:], limit, summary and summary["content"])
        model = runner.config.model
        if len(turns) - covered <= KEEP_TURNS or token_bound(history) <= self.settings.context_tokens:
            return history  # surely fits: counting (tokenizing all of it) took longer than the rest of a round
        tokens = await runner.llm.count(model, history)
        if tokens <= self.settings.context_tokens:
            return history
        keep = len(turns) - KEEP_TURNS
        older = history_from_turns(turns[covered:keep], limit, summary and summary["content"])
        try:
            reply = await runner.llm.complete(model, summary_request(older, limit))
        except LLMError as e:  # keep going on the recent turns alone rather than fail the task
            self.log.warning("DSAgent: could not summarise session %s: %s", session.id, e)
            return history_from_turns(turns[keep:], limit, summary and summary["content"])
        runner.charge(reply.usage)  # a model call of this task: its first round's usage shows it
        usage = reply.usage.model_dump(mode="json")
        session.publish("summary", {"content": reply.text, "turns": keep, "tokens_before": tokens, "usage": usage})
        return history_from_turns(turns[keep:], limit, reply.text)

    async def _notebook(
        self, session: Session, notebook: NotebookContext | None, edits: CellEdits | None
    ) -> NotebookContext | None:
        """The user's notebook for the model: the client's live cells, else the saved notebook (which
        are the cells an edit's ``[N]`` refers to)."""
        path = session.record.notebook_path
        if notebook is None and path:
            try:
                model = await ensure_async(self.contents_manager.get(path, content=True, type="notebook"))
                notebook = NotebookContext(cells=model["content"]["cells"])
            except Exception as e:  # the task goes on without it
                self.log.warning("DSAgent: could not read notebook %s for session %s: %s", path, session.id, e)
                return None
        if notebook is not None and edits is not None:
            edits.shown = list(notebook.cells)
        return notebook

    def _last_task_start(self, session: Session) -> int:
        starts = [r["seq"] for r in session.events.read() if r["event"] == "user_message"]
        return starts[-1] if starts else session.events.last_seq


def token_bound(messages: list[dict[str, str]]) -> int:
    """More tokens than any tokenizer counts in ``messages``: each token covers at least one UTF-8 byte,
    plus a few per message for the role and framing."""
    return 8 + sum(len(m["role"]) + len(m["content"].encode()) + 8 for m in messages)
