"""The bus's Redis subscription: one connection per process, read with hiredis directly.

Why not redis-py's `PubSub`: profiled during a 10,000-subscriber fan-out (docs/BENCHMARKS.md),
its `get_message` path (a retry wrapper, a timeout context and a health check per call, the
push-notification dispatch) was half of the API process's CPU. Here one `read` takes whatever
arrived, hiredis (the C parser redis-py itself uses) splits it into replies, and each message
goes to `deliver` with no await in between. Publishing stays on redis-py.

What it keeps from a full client: AUTH (user and password from the URL), TLS (`rediss://`,
`ssl_cert_reqs`, `ssl_ca_certs`, `ssl_check_hostname` in the query), unix sockets, TCP
keepalive, a PING after `idle_s` without traffic (a half-open connection is noticed within
`idle_s + answer_s`), and reconnection with backoff, every channel subscribed again.
`subscribe` returns once Redis has confirmed the channel, so a caller that then tells its
client "subscribed" does not miss an update published afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url

log = logging.getLogger(__name__)

CHANNELS_PER_COMMAND = 1_000  # a reconnect resubscribes in commands of this many channels
_PING = b"*1\r\n$4\r\nPING\r\n"
_EXPECTED = (OSError, ConnectionError, TimeoutError, hiredis.ProtocolError)  # no traceback


def command(*parts: str | bytes) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _tls(options: dict[str, Any]) -> ssl.SSLContext | None:
    if options.get("connection_class") is not SSLConnection:
        return None
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    requirement = str(options.get("ssl_cert_reqs", "required")).lower()
    if requirement == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        if requirement == "optional":
            context.verify_mode = ssl.CERT_OPTIONAL
        if options.get("ssl_check_hostname") is False:
            context.check_hostname = False
    return context


class RedisSubscriber:
    """Subscribe to channels on one Redis connection; `deliver(channel, data)` each message."""

    def __init__(
        self,
        url: str,
        deliver: Callable[[str, str], None],
        *,
        connect_timeout_s: float = 2.0,
        idle_s: float = 15.0,
        answer_s: float = 5.0,
        confirm_s: float = 2.0,
    ) -> None:
        self._options: dict[str, Any] = dict(parse_url(url))
        self._deliver = deliver
        self._connect_timeout_s = connect_timeout_s
        self._idle_s = idle_s
        self._answer_s = answer_s
        self._confirm_s = confirm_s
        self._channels: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.connections = 0
        """How many times it has connected (tests watch reconnections)."""

    async def start(self) -> None:
        """Connect and keep connected, in a background task; return once connected, or after
        `connect_timeout_s` with Redis unreachable (it goes on trying)."""
        self._task = asyncio.create_task(self._run(), name="bus-redis-subscriber")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._connect_timeout_s):
                await self._up.wait()

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def subscribe(self, channel: str) -> None:
        """SUBSCRIBE `channel`; return once Redis confirms it. Without a connection (Redis
        down) or without an answer within `confirm_s`, return anyway: the channel is
        subscribed on every (re)connection."""
        known = channel in self._channels
        self._channels.add(channel)
        if self._writer is None or (known and channel not in self._waiting):
            return
        future = asyncio.get_running_loop().create_future()
        if not self._waiting.get(channel):  # not already asked: ask
            self._writer.write(command(b"SUBSCRIBE", channel))
        self._waiting.setdefault(channel, []).append(future)
        try:
            async with asyncio.timeout(self._confirm_s):
                await future
        except TimeoutError:
            log.warning(
                "bus: Redis did not confirm SUBSCRIBE %s in %.1fs", channel, self._confirm_s
            )
        finally:
            waiting = self._waiting.get(channel)
            if waiting and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiting[channel]

    def unsubscribe(self, channel: str) -> None:
        """UNSUBSCRIBE `channel` (no answer awaited: nothing depends on it)."""
        self._channels.discard(channel)
        if self._writer is not None:
            self._writer.write(command(b"UNSUBSCRIBE", channel))

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                reader, writer, parser = await self._connect()
            except Exception as exc:  # the reader must outlive anything Redis does
                log.warning(
                    "bus: cannot reach Redis (%s), retrying in %.1fs",
                    exc,
                    backoff,
                    exc_info=not isinstance(exc, _EXPECTED),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            self.connections += 1
            try:
                self._writer = writer  # from here on, subscribe() writes its own SUBSCRIBE
                self._resubscribe(writer, self._channels)
                self._up.set()
                await self._read(reader, writer, parser)
            except Exception as exc:
                log.warning(
                    "bus: Redis connection lost (%s), reconnecting",
                    exc,
                    exc_info=not isinstance(exc, _EXPECTED),
                )
            finally:
                self._up.clear()
                self._writer = None
                self._release_waiting()
                writer.close()

    async def _connect(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, hiredis.Reader]:
        options = self._options
        async with asyncio.timeout(self._connect_timeout_s):
            if "path" in options:
                reader, writer = await asyncio.open_unix_connection(options["path"])
            else:
                reader, writer = await asyncio.open_connection(
                    options.get("host", "localhost"),
                    int(options.get("port", 6379)),
                    ssl=_tls(options),
                )
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            parser = hiredis.Reader(encoding="utf-8", errors="replace")
            try:
                await _handshake(reader, writer, parser, options)
            except BaseException:
                writer.close()
                raise
        return reader, writer, parser

    @staticmethod
    def _resubscribe(writer: asyncio.StreamWriter, channels: Iterable[str]) -> None:
        batch = sorted(channels)
        for i in range(0, len(batch), CHANNELS_PER_COMMAND):
            writer.write(command(b"SUBSCRIBE", *batch[i : i + CHANNELS_PER_COMMAND]))

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader
    ) -> None:
        pinged = False
        while True:
            try:
                async with asyncio.timeout(self._answer_s if pinged else self._idle_s):
                    data = await reader.read(1 << 16)
            except TimeoutError:
                if pinged:
                    raise ConnectionError(f"no answer to PING in {self._answer_s:.0f}s") from None
                writer.write(_PING)
                pinged = True
                continue
            if not data:
                raise ConnectionError("closed by Redis")
            pinged = False
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                self._handle(reply)

    def _handle(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            log.warning("bus: Redis replied with an error: %s", reply)
            return
        kind = reply[0]
        if kind == "message":
            try:
                self._deliver(reply[1], reply[2])
            except Exception:  # one bad message must not stop the reader
                log.exception("bus: delivering a message on %s failed", reply[1])
        elif kind == "subscribe":
            _release(self._waiting.pop(reply[1], ()))

    def _release_waiting(self) -> None:
        # The connection is gone: the channels will be subscribed on the next one.
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            _release(futures)


def _release(futures: Iterable[asyncio.Future[None]]) -> None:
    """Let the callers waiting on `futures` go on."""
    for future in futures:
        if not future.done():
            future.set_result(None)


async def _handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    parser: hiredis.Reader,
    options: dict[str, Any],
) -> None:
    """AUTH when the URL has a password, then a PING: connected means Redis answered."""
    password = options.get("password")
    if password is not None:
        username = options.get("username")
        writer.write(command("AUTH", username, password) if username else command("AUTH", password))
    writer.write(_PING)
    for _ in range(2 if password is not None else 1):
        reply = await _reply(reader, parser)
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis refused: {reply}")


async def _reply(reader: asyncio.StreamReader, parser: hiredis.Reader) -> Any:
    while (reply := parser.gets()) is False:
        data = await reader.read(1 << 16)
        if not data:
            raise ConnectionError("closed by Redis")
        parser.feed(data)
    return reply
