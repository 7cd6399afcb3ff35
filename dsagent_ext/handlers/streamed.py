"""Request bodies read as they arrive, and answers given before the body has been read.

A handler with a streamed body (``@web.stream_request_body``) may answer before the client has sent
it all: the session is unknown, the category invalid, the upload over the size limit. Tornado then
closes the connection at once, with the rest of the body unread and without saying so: the bytes still
arriving make the server's TCP stack answer with a reset, which can destroy the answer before the
client reads it (with a few MB in flight the client got no answer at all), and a keep-alive client
found its connection dead at its next request.

So such an answer says ``Connection: close`` (RFC 9112 §9.6) and goes out at once, and the connection
stays open while the rest of the body is read and thrown away: until it is all read, the client closes
(having read the answer), or ``LINGER_BYTES`` or ``LINGER_SECONDS`` are reached (a lingering close, as
nginx does). Only then does Tornado close it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import DSAgentHandler

LINGER_BYTES = 1024 * 1024 * 1024  # read and discard at most this much of a body already answered...
LINGER_SECONDS = 30.0  # ...for at most this long (nginx's lingering_time)


class StreamedBodyHandler(DSAgentHandler):
    """Base of ``@web.stream_request_body`` handlers: they implement ``body_received`` (not
    ``data_received``), and each of their verb methods sets ``body_complete`` first."""

    body_complete = False  # set by the verb methods: Tornado calls them once the whole body has arrived
    _received = 0  # body bytes delivered so far
    _lingering: asyncio.Future[None] | None = None  # resolved by the real finish
    _linger_timer: asyncio.TimerHandle | None = None
    _finish_kwargs: dict[str, Any] = {}  # the deferred finish's arguments (replaced, never changed in place)

    def body_received(self, chunk: bytes) -> Any:
        """A chunk of the body, while no answer has been given."""

    def data_received(self, chunk: bytes) -> Any:
        self._received += len(chunk)
        if self._lingering is None:
            return self.body_received(chunk)
        if self._all_received() or self._received > LINGER_BYTES:
            self._close()
        return None

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        """Finish as usual once the body has been read; before that, answer now and linger."""
        if self._lingering is not None:  # tornado's send_error finishing what write_error started
            return self._lingering
        if self._finished or self.body_complete:
            return super().finish(*args, **kwargs)
        # Tornado closes the connection after an answer given before it has read the whole body
        # (even an empty one, when the answer comes from ``prepare``): say so
        self.set_header("Connection", "close")
        if self._all_received():
            return super().finish(*args, **kwargs)
        for chunk in args[:1]:
            if chunk is not None:
                self.write(chunk)
        self.set_header("Content-Length", sum(len(part) for part in self._write_buffer))
        # the whole answer: the client can read it while it is still sending (or gone: no error then)
        self.flush().add_done_callback(lambda f: f.exception())
        loop = asyncio.get_running_loop()
        self._lingering = loop.create_future()
        self._finish_kwargs = kwargs
        length = self._content_length()
        if length is not None and length > LINGER_BYTES:
            self._close()  # not worth reading: close as Tornado would have
            return self._lingering
        # let Tornado read (and drop) the rest, even past the server's limit on bodies
        self.request.connection.set_max_body_size(length if length is not None else LINGER_BYTES)
        self._linger_timer = loop.call_later(LINGER_SECONDS, self._close)
        return self._lingering

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._lingering is not None:
            self._close()  # the client read the answer and left

    def _close(self) -> None:
        """The real finish, after which Tornado closes the connection, as the answer said."""
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._finished or self._lingering is None or self._lingering.done():
            return
        self._lingering.set_result(None)
        sent = super().finish(**self._finish_kwargs)
        sent.add_done_callback(lambda f: f.exception())  # a client gone meanwhile is no error here

    def _content_length(self) -> int | None:
        """The body's announced length; None when it is chunked (its end is not known in advance)."""
        headers = self.request.headers
        if "Content-Length" in headers:
            try:
                return int(headers["Content-Length"])
            except ValueError:
                return None
        return None if "chunked" in headers.get("Transfer-Encoding", "").lower() else 0

    def _all_received(self) -> bool:
        length = self._content_length()
        return length is not None and self._received >= length
