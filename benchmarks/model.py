"""The benchmark's model: the test suite's scripted OpenAI-compatible server, in its own process.

Its own process, so its replies never wait for the load generator's GIL. Every reply is chosen from
the request itself, so any number of sessions can run at once: a task message ``bench:N:D:T`` asks for
N code rounds (``print(k)``) then an answer, streamed with D ms between chunks (with T > 0: T chunks
of one 4-character token each). It listens with a backlog of 1,024, so fifty clients connecting at
once are all accepted (``http.server``'s 5 stalls them about a second). The moment each
reply's first text chunk leaves is kept (``time.perf_counter``, a system-wide monotonic clock on
Linux) and served at ``GET /first-chunks`` so the benchmark can time the first ``llm_delta`` from it; ``GET /chunks`` counts the chunks sent.

Run: ``python benchmarks/model.py PORT`` (prints ``ready`` once listening).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_llm import FakeLLM, FakeReply, _ChatHandler  # noqa: E402
from tornado.web import RequestHandler  # noqa: E402

TASK_PREFIX = "bench:"


BACKLOG = 1024  # pending connections: 50 sessions connecting at once must not wait for a retry


def task_message(code_rounds: int, chunk_delay_ms: float = 0, tokens: int = 0) -> str:
    """The user message that scripts a task of ``code_rounds`` cells and a final answer; with ``tokens``,
    each reply is that many chunks of one 4-character token, as a real provider streams."""
    return f"{TASK_PREFIX}{code_rounds}:{chunk_delay_ms:g}:{tokens}"


def reply_for(body: dict) -> FakeReply:
    """The next reply of the task in ``body``: which round it is, from the assistant turns since its message."""
    messages = body.get("messages", [])
    start = max((i for i, m in enumerate(messages) if str(m.get("content", "")).startswith(TASK_PREFIX)), default=None)
    if start is None:
        return FakeReply(text="<answer>done</answer>")
    _, rounds, delay, tokens = messages[start]["content"].split(":")
    done = sum(m.get("role") == "assistant" for m in messages[start + 1 :])
    if done < int(rounds):
        text = f"Step {done + 1}.\n<code>\nprint({done + 1})\n</code>"
    else:
        text = "<answer>All done.</answer>"
    if not int(tokens):
        return FakeReply(text=text, chunk_delay=float(delay) / 1000)
    # the reply's thinking before its tag, in distinct tokens (litellm ends a stream that repeats one chunk)
    filler = "".join(f"w{n % 100:02d} " for n in range(max(0, int(tokens) - len(text) // 4)))
    return FakeReply(text=filler + text, chunk_size=4, chunk_delay=float(delay) / 1000)


class TimedChat(_ChatHandler):
    """The scripted handler, replying per request and noting when the first text chunk left."""

    first_chunks: list[float] = []
    chunks = 0  # streamed chunks sent, all replies together

    async def _reply(self, body: dict) -> None:
        self.sent_text = False
        self.fake.script(reply_for(body))  # taken at once by the base handler: no await in between
        await super()._reply(body)

    async def _send(self, payload: dict | str) -> None:
        await super()._send(payload)
        TimedChat.chunks += 1
        if not self.sent_text and isinstance(payload, dict) and _has_text(payload):
            self.sent_text = True
            TimedChat.first_chunks.append(time.perf_counter())


class FirstChunks(RequestHandler):
    def get(self) -> None:
        self.finish(json.dumps(TimedChat.first_chunks))

    def delete(self) -> None:
        TimedChat.first_chunks.clear()


class Chunks(RequestHandler):
    def get(self) -> None:
        self.finish(json.dumps(TimedChat.chunks))


def _has_text(chunk: dict) -> bool:
    return any((c.get("delta") or {}).get("content") for c in chunk.get("choices", []))


def serve(port: int) -> None:
    """Serve on ``port`` until killed."""
    from tornado.httpserver import HTTPServer
    from tornado.web import Application

    async def main() -> None:
        fake = FakeLLM()
        app = Application(
            [(r"/v1/chat/completions", TimedChat, {"fake": fake}), (r"/first-chunks", FirstChunks),
             (r"/chunks", Chunks)],
            log_function=lambda _: None,
        )
        HTTPServer(app).listen(port, "127.0.0.1", backlog=BACKLOG)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
