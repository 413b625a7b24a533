"""Read timeouts for slow clients: a request's headers must arrive within
`CHAINFOLIO_HEADER_TIMEOUT_S` of its first byte (or of the connection), its body within
`CHAINFOLIO_BODY_TIMEOUT_S` of the headers; past either the connection is answered 408 (when
nothing was answered yet) and closed.

uvicorn times out idle keep-alive connections only: 1,000 half-sent requests were held open
for 30 s, each a socket and a parser. Websockets are not affected once upgraded.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chainfolio.core.settings import Settings

log = logging.getLogger(__name__)

_BODY = (
    b'{"success":false,"error":{"code":"REQUEST_TIMEOUT","message":"request not received in time"}}'
)
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


@functools.cache
def _limits() -> tuple[float, float]:
    # read in each server process (uvicorn workers are spawned, not forked with our state)
    settings = Settings()
    return settings.header_timeout_s, settings.body_timeout_s


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's header deadline."""
        super().connection_made(transport)
        self._arm(_limits()[0])

    def data_received(self, data: bytes) -> None:
        """A new request's first bytes start its header deadline."""
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(_limits()[0])
        super().data_received(data)

    def on_headers_complete(self) -> None:
        """Headers in: the body's deadline starts (none for a websocket upgrade)."""
        super().on_headers_complete()
        if self.parser.should_upgrade():
            self._disarm()
        else:
            self._arm(_limits()[1])

    def on_message_complete(self) -> None:
        """The whole request is in."""
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline outlives its connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = self.client[0] if self.client else "unknown"
        log.info("closed a connection from %s: request not received in time", client)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_TIMEOUT_408)
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()
