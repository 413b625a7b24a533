"""Publish/subscribe for portfolio updates, chosen by URL: `memory://` or `redis://`.

One interface, two backends (the shape of encode/broadcaster). Each process holds at most one
Redis subscription connection (`chainfolio.bus.subscriber`, read with hiredis) and fans messages
out to its local subscribers through bounded queues: a slow subscriber loses intermediate
messages and keeps the newest; it never blocks the publisher or the other subscribers.

On Redis each message travels in an envelope, `\\x1f<publisher's time.time()>\\x1f<message>`;
the receiving process strips it (subscribers see the message as published) and records the
delay in `chainfolio_bus_lag_seconds`. Messages published on Redis by something else, without
the envelope, are delivered as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from chainfolio.bus.subscriber import RedisSubscriber
from chainfolio.core.metrics import SUBSCRIBERS, observe_bus_lag

QUEUE_SIZE = 8
STAMP = "\x1f"  # ASCII unit separator: delimits the publication time in the Redis envelope


def stamp(message: str, published_at: float | None = None) -> str:
    """`message` in the Redis envelope, with the publication time (default: now)."""
    at = time.time() if published_at is None else published_at
    return f"{STAMP}{at!r}{STAMP}{message}"


def unstamp(data: str) -> tuple[str, float | None]:
    """The message and its publication time; (data, None) for data without the envelope."""
    if data.startswith(STAMP):
        head, found, message = data[1:].partition(STAMP)
        if found:
            try:
                published_at = float(head)
            except ValueError:
                return data, None
            if math.isfinite(published_at):
                return message, published_at
    return data, None


class Subscription:
    """A local subscriber's bounded queue; iterate it to receive messages."""

    def __init__(self, channel: str, maxsize: int = QUEUE_SIZE) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, message: str) -> None:
        """Enqueue without ever blocking: when full, the oldest message makes room."""
        while True:
            try:
                self._queue.put_nowait(message)
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
                    self.dropped += 1
            else:
                return

    async def get(self) -> str:
        """The next message."""
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        while True:
            yield await self._queue.get()


class Backend(Protocol):
    """Moves messages between processes (or not, for memory://)."""

    async def connect(self, deliver: Any) -> None: ...
    async def disconnect(self) -> None: ...
    async def publish(self, channel: str, message: str) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...


class MemoryBackend:
    """Single-process delivery."""

    def __init__(self) -> None:
        self._deliver: Any = None

    async def connect(self, deliver: Any) -> None:
        """Remember where to deliver."""
        self._deliver = deliver

    async def disconnect(self) -> None:
        """Nothing to close."""

    async def publish(self, channel: str, message: str) -> None:
        """Deliver locally at once."""
        self._deliver(channel, message)

    async def subscribe(self, channel: str) -> None:
        """Nothing to do in one process."""

    async def unsubscribe(self, channel: str) -> None:
        """Nothing to do in one process."""


class RedisBackend:
    """Redis pub/sub: redis-py publishes; one subscription connection per process reads
    (`chainfolio.bus.subscriber`), reconnecting on failure."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._subscriber: RedisSubscriber | None = None
        self._deliver: Any = None

    async def connect(self, deliver: Any) -> None:
        """Open the publishing client; start the subscriber and wait (briefly) for it."""
        import redis.asyncio as aioredis  # noqa: PLC0415

        self._deliver = deliver
        self._client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=2, health_check_interval=5
        )
        self._subscriber = RedisSubscriber(self._url, self._receive)
        await self._subscriber.start()

    async def disconnect(self) -> None:
        """Stop the subscriber and close connections."""
        if self._subscriber is not None:
            await self._subscriber.stop()
        if self._client is not None:
            await self._client.aclose()

    async def publish(self, channel: str, message: str) -> None:
        """PUBLISH to every process, stamped with the time of publication."""
        await self._client.publish(channel, stamp(message))

    async def subscribe(self, channel: str) -> None:
        """SUBSCRIBE once per process per channel; return once Redis confirmed it."""
        assert self._subscriber is not None
        await self._subscriber.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        """UNSUBSCRIBE when the last local subscriber left."""
        assert self._subscriber is not None
        self._subscriber.unsubscribe(channel)

    def _receive(self, channel: str, data: str) -> None:
        text, published_at = unstamp(data)
        if published_at is not None:
            observe_bus_lag(time.time() - published_at)
        self._deliver(channel, text)


class Bus:
    """Publish to a channel; subscribe to it from any number of local consumers."""

    def __init__(self, url: str = "memory://") -> None:
        if url.startswith("memory://"):
            self._backend: Backend = MemoryBackend()
        elif url.startswith(("redis://", "rediss://", "unix://")):
            self._backend = RedisBackend(url)
        else:
            raise ValueError(f"unsupported bus URL {url!r}: use memory:// or redis://")
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._listeners: list[Callable[[str], None]] = []
        self.url = url

    async def __aenter__(self) -> Bus:
        await self._backend.connect(self._deliver)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._backend.disconnect()

    def subscriber_count(self) -> int:
        """Local subscribers across channels."""
        return sum(len(s) for s in self._subscribers.values())

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call `listener(channel)` for every message this process receives, before its
        subscribers see it (the API's near cache drops the user's answers there, so a client
        that refetches on a push never gets the answer from before it)."""
        self._listeners.append(listener)

    def _deliver(self, channel: str, message: str) -> None:
        for listener in self._listeners:
            listener(channel)
        for subscription in tuple(self._subscribers.get(channel, ())):
            subscription.offer(message)

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every subscriber of `channel`, in every process."""
        await self._backend.publish(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """A subscription that lasts for the `async with` block."""
        subscription = Subscription(channel)
        self._subscribers[channel].add(subscription)
        try:
            # Every subscriber waits until the channel is subscribed (the backend asks once);
            # from then on it counts in `chainfolio_bus_subscribers`.
            await self._backend.subscribe(channel)
            SUBSCRIBERS.inc()
            try:
                yield subscription
            finally:
                SUBSCRIBERS.dec()
        finally:
            self._subscribers[channel].discard(subscription)
            if not self._subscribers[channel]:
                del self._subscribers[channel]
                await self._backend.unsubscribe(channel)


WALLETS_CHANNEL = "chainfolio:wallets"
"""The API publishes a user's id here after adding or removing one of their wallets; the
worker holding that user refreshes them at once (instead of at its next cycle)."""


def portfolio_channel(user_id: object) -> str:
    """The channel carrying one user's portfolio updates."""
    return f"chainfolio:portfolio:{user_id}"
