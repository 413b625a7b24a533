"""An in-process layer in front of the Redis answer cache, with bounded staleness.

A Redis hit costs a round trip and redis-py's pipeline machinery: `bench_graphql.py` measured
the Redis-backed cache at 18 % of a bare route where the in-process cache reached 39 %. With
several API processes the answers must live in Redis (a refresh invalidates them for every
process), so each API process keeps a *near* copy of the answers it read from Redis:

- for at most `ttl_s` (default 1 s, `CHAINFOLIO_CACHE_NEAR_TTL_S`) and never past the answer's
  own expiry in Redis;
- dropped at once when any process invalidates the user: `RedisCache.invalidate` publishes the
  users' ids on `INVALIDATIONS` in the same pipeline, and every near layer listens;
- dropped too when this process receives a user's portfolio update on the bus (`Bus.listen`):
  the worker invalidates before it publishes, but the two messages travel on different
  connections, and a client that refetches on a push must not get the answer from before it;
- served only while that subscription is confirmed: a lost connection clears the layer and
  lookups go to Redis until the subscription is back, so a missed invalidation can never keep
  an answer longer than `ttl_s`.

So after an invalidation a process may serve the old answer for the time the message takes to
arrive (measured: `benchmarks/bench_graphql.py`, docs/BENCHMARKS.md), and never longer than
`ttl_s`. A lookup that raced an invalidation cannot refill the layer with what it read before
it: the near layer is a `MemoryCache`, whose generations refuse such a store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from chainfolio.core.cache import INVALIDATIONS, CacheBounds, MemoryCache, RedisCache

log = logging.getLogger(__name__)

_RETRY_S = 1.0
_PORTFOLIO_PREFIX = (
    "chainfolio:portfolio:"  # chainfolio.bus.portfolio_channel (core imports no bus)
)


class NearCache:
    """`RedisCache` with a near layer in this process (see the module docstring)."""

    def __init__(self, shared: RedisCache, *, ttl_s: float, bounds: CacheBounds | None) -> None:
        self._shared = shared
        self._near = MemoryCache(bounds)
        self._ttl_s = ttl_s
        self.listening = asyncio.Event()
        """Set while the invalidation channel is subscribed (the near layer is in use)."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[NearCache]:
        """Listen for invalidations until the block ends."""
        task = asyncio.create_task(self._listen(), name="near-cache-invalidations")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def lookup(self, user_id: uuid.UUID, key: str, now: datetime) -> tuple[bytes | None, Any]:
        """The near copy if there is one, else Redis's answer (kept near for `ttl_s`)."""
        if not self.listening.is_set():
            return await self._shared.lookup(user_id, key, now)
        found, tick = await self._near.lookup(user_id, key, now)
        if found is not None:
            return found, None  # a hit: nothing is stored after it
        found, generation, expires = await self._shared.lookup_until(user_id, key, now)
        if found is not None:
            until = min(expires, now.timestamp() + self._ttl_s)
            await self._near.store(user_id, key, found, tick, datetime.fromtimestamp(until, UTC))
        return found, generation

    async def store(
        self, user_id: uuid.UUID, key: str, value: bytes, generation: Any, expires: datetime
    ) -> bool:
        """Kept in Redis only: the next lookup of any process brings it near."""
        return await self._shared.store(user_id, key, value, generation, expires)

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Drop the users here at once, then in Redis (which tells the other processes)."""
        users = list(user_ids)
        await self._near.invalidate(users)
        await self._shared.invalidate(users)

    def drop_channel(self, channel: str) -> None:
        """A bus message reached this process: if it is a user's portfolio update, drop that
        user's near answers first (`Bus.listen`), whatever order the two channels arrive in."""
        if channel.startswith(_PORTFOLIO_PREFIX):
            with contextlib.suppress(ValueError):
                self._near.clear_users([uuid.UUID(channel.removeprefix(_PORTFOLIO_PREFIX))])

    def drop(self, payload: bytes) -> None:
        """Apply one invalidation message: 16 bytes per user id."""
        users = [uuid.UUID(bytes=payload[i : i + 16]) for i in range(0, len(payload) - 15, 16)]
        self._near.clear_users(users)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis  # noqa: PLC0415

        while True:
            client = aioredis.Redis.from_url(self._shared.url, socket_connect_timeout=1)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(INVALIDATIONS)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._near.clear()  # whatever was missed before this point
                        self.listening.set()
                    elif message["type"] == "message":
                        self.drop(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any loss of the channel: stop serving near
                log.warning("cache: invalidation channel lost (%s); near layer off", exc)
            finally:
                self.listening.clear()
                self._near.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            await asyncio.sleep(_RETRY_S)
