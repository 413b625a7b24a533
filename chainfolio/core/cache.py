"""Per-user cache of serialised answers, dropped whenever the user's data changes.

The answers kept are the queries over a user's stored data: GraphQL `portfolio`,
`allocation`, `allocationTargets`, `rebalance`, `wallets`, and the windows ending now over
stored snapshots, flows and prices (`history`, `performance`, `compare`), with their REST
twins. Between two refreshes of a user the stored data does not change, so a dashboard polling
them costs one cache lookup instead of database reads, field resolution and serialisation; the
windows lag their sliding end by at most the TTL, the freshness the values themselves have.

Invalidation is explicit: the worker drops the cache of every user it refreshed, after its
transaction commits and before it publishes the update (a client reacting to the push reads
fresh data), and again after writing the hour's snapshot; mutations drop their user's cache
after committing. Two guards keep a slow reader
from storing an answer computed before an invalidation:

- a *generation* per user: `lookup` returns the generation it saw, and `store` only writes if
  no invalidation happened since (in Redis, checked and written in one Lua script);
- an *expiry*: at most `ttl_s` later (a safety net for writers outside chainfolio), and never
  past the next hour boundary, where `change24h` moves to the next snapshot.

Backend by URL, like the bus: `memory://` keeps answers in this process, `redis://` in Redis,
shared by every API process and by separate worker processes that invalidate it.

Both are bounded (`CacheBounds`): each user keeps at most `entries` answers of at most `bytes`
in all (least recently used answers out first), and at most `users` users keep answers (least
recently stored users out first), so the cache never holds more than `users x bytes` of
answers however many distinct query texts or variables a client sends. Each distinct document
or variable set is an entry of its own: without the bounds, 60 variants left 38 MB in one
user's Redis hash.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter

log = logging.getLogger(__name__)

CACHE_REQUESTS = Counter(
    "chainfolio_cache_requests_total",
    "Lookups of the per-user answer cache, by surface (graphql / rest) and result (hit / miss)",
    ["surface", "result"],
)


@dataclass(frozen=True, slots=True)
class CacheBounds:
    """How much the answer cache may hold: per user (answers, bytes) and users in all."""

    entries: int = 16
    bytes: int = 256 * 1024
    users: int = 4_000


_EXPIRY = struct.Struct(">d")  # POSIX seconds, by the app's clock, before each Redis value
_REDIS_PREFIX = "chainfolio:cache:"
_GENERATION_TTL_S = 86_400
_INVALIDATE_CHUNK = 1_000
_USERS_KEY = f"{_REDIS_PREFIX}users"
INVALIDATIONS = f"{_REDIS_PREFIX}invalidations"
"""The channel of invalidations: each message the 16-byte ids of the users dropped."""


def _now_ms() -> int:
    # an order for LRU, not a time anything is compared with
    return time.time_ns() // 1_000_000


def expiry(now: datetime, ttl_s: float) -> datetime:
    """When an answer computed at `now` stops being valid: `ttl_s` later, at most the next hour.

    `change24h` compares with the snapshot 24 h earlier, which moves on at each hour boundary.
    """
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return min(now + timedelta(seconds=ttl_s), next_hour)


class AnswerCache(Protocol):
    """What the API and the worker use; see the module docstring."""

    async def lookup(self, user_id: uuid.UUID, key: str, now: datetime) -> tuple[bytes | None, Any]:
        """The stored answer (None when absent or expired) and the generation to store with."""
        ...

    async def store(
        self, user_id: uuid.UUID, key: str, value: bytes, generation: Any, expires: datetime
    ) -> bool:
        """Keep `value` unless the user's data changed since `lookup` gave `generation`."""
        ...

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Drop every answer of these users and make in-flight stores of them fail."""
        ...


class NoCache:
    """Caching turned off (`cache_ttl_s = 0`): every lookup misses, nothing is kept."""

    async def lookup(self, user_id: uuid.UUID, key: str, now: datetime) -> tuple[bytes | None, Any]:
        """Always a miss."""
        return None, None

    async def store(
        self, user_id: uuid.UUID, key: str, value: bytes, generation: Any, expires: datetime
    ) -> bool:
        """Keeps nothing."""
        return False

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Nothing to drop."""


class MemoryCache:
    """In this process, within `bounds` (least recently used answers and users out first).

    Generations come from one process-wide counter: `store` succeeds only if the user was not
    invalidated after the `lookup` that returned the generation.
    """

    def __init__(self, bounds: CacheBounds | None = None) -> None:
        self._bounds = bounds or CacheBounds()
        self._users: OrderedDict[uuid.UUID, OrderedDict[str, tuple[bytes, float]]] = OrderedDict()
        self._bytes: dict[uuid.UUID, int] = {}
        self._ticks = itertools.count(1)
        self._dropped: dict[uuid.UUID, int] = {}  # user → tick of the last invalidation
        self._cleared = 0  # tick of the last `clear`

    async def lookup(self, user_id: uuid.UUID, key: str, now: datetime) -> tuple[bytes | None, Any]:
        """The answer if present and not expired; the current tick as the generation."""
        tick = next(self._ticks)
        entries = self._users.get(user_id)
        if entries is not None:
            self._users.move_to_end(user_id)
            found = entries.get(key)
            if found is not None:
                if found[1] > now.timestamp():
                    entries.move_to_end(key)
                    return found[0], tick
                self._drop(user_id, entries, key)
        return None, tick

    async def store(
        self, user_id: uuid.UUID, key: str, value: bytes, generation: Any, expires: datetime
    ) -> bool:
        """Keep the answer unless the user was invalidated after `generation` was handed out."""
        bounds = self._bounds
        if (
            self._dropped.get(user_id, 0) >= generation
            or self._cleared >= generation
            or len(value) > bounds.bytes
        ):
            return False
        entries = self._users.get(user_id)
        if entries is None:
            entries = self._users[user_id] = OrderedDict()
            self._bytes[user_id] = 0
            while len(self._users) > bounds.users:
                dropped, _ = self._users.popitem(last=False)
                del self._bytes[dropped]
        else:
            self._users.move_to_end(user_id)
        if key in entries:
            self._drop(user_id, entries, key)
        entries[key] = (value, expires.timestamp())
        self._bytes[user_id] += len(value)
        while len(entries) > bounds.entries or self._bytes[user_id] > bounds.bytes:
            self._drop(user_id, entries, next(iter(entries)))
        return True

    def _drop(
        self, user_id: uuid.UUID, entries: OrderedDict[str, tuple[bytes, float]], key: str
    ) -> None:
        self._bytes[user_id] -= len(entries.pop(key)[0])

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Drop the users' answers; stores from lookups before now fail."""
        self.clear_users(user_ids)

    def clear_users(self, user_ids: Iterable[uuid.UUID]) -> None:
        """`invalidate`, synchronously (for a message handler)."""
        tick = next(self._ticks)
        for user_id in user_ids:
            self._users.pop(user_id, None)
            self._bytes.pop(user_id, None)
            self._dropped[user_id] = tick

    def clear(self) -> None:
        """Drop every answer of every user; stores from lookups before now fail."""
        self._cleared = next(self._ticks)
        self._users.clear()
        self._bytes.clear()
        self._dropped.clear()


# KEYS: generation, answers hash, LRU order of the answers (zset), their bytes, the users
# holding answers (zset by last store). ARGV: generation seen by lookup, field, value, ttl
# (ms), now (ms, the LRU score), max entries, max bytes, max users, user id, key prefix.
# Users pushed out by the global bound lose their keys, named from the prefix (so the cache
# needs one Redis, not a Redis Cluster).
_STORE_SCRIPT = """
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return 0 end
local size = string.len(ARGV[3])
if size > tonumber(ARGV[7]) then return 0 end
local total = redis.call('INCRBY', KEYS[4], size - redis.call('HSTRLEN', KEYS[2], ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
while redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[6]) or total > tonumber(ARGV[7]) do
  local oldest = redis.call('ZPOPMIN', KEYS[3])[1]
  total = redis.call('INCRBY', KEYS[4], -redis.call('HSTRLEN', KEYS[2], oldest))
  redis.call('HDEL', KEYS[2], oldest)
end
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[9])
local over = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[8])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[5], over)
  for i = 1, #popped, 2 do
    local user = popped[i]
    redis.call('DEL', ARGV[10] .. 'answers:' .. user, ARGV[10] .. 'lru:' .. user,
      ARGV[10] .. 'bytes:' .. user)
  end
end
return 1
"""


class RedisCache:
    """In Redis: per user a hash of answers, their LRU order and byte count, and a generation
    counter; one sorted set of the users holding answers, for the global bound.

    A lookup is one round trip (HGET, GET and the LRU touch pipelined); a store one script
    call (bounds enforced inside it, atomically); invalidating
    a worker cycle's users one pipeline per thousand users (INCR the generation, DEL the hash).
    Redis unavailable: lookups miss and stores are skipped (the API answers from PostgreSQL);
    a failed invalidation is logged, and answers kept from before it live until their expiry.
    """

    def __init__(self, url: str, bounds: CacheBounds | None = None) -> None:
        import redis.asyncio as aioredis  # noqa: PLC0415
        import redis.exceptions  # noqa: PLC0415

        self.url = url
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._store = self._client.register_script(_STORE_SCRIPT)
        self._bounds = bounds or CacheBounds()
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @staticmethod
    def _keys(user_id: uuid.UUID) -> tuple[str, str, str, str]:
        return (
            f"{_REDIS_PREFIX}gen:{user_id}",
            f"{_REDIS_PREFIX}answers:{user_id}",
            f"{_REDIS_PREFIX}lru:{user_id}",
            f"{_REDIS_PREFIX}bytes:{user_id}",
        )

    async def lookup(self, user_id: uuid.UUID, key: str, now: datetime) -> tuple[bytes | None, Any]:
        """The answer if present and not expired, and the user's generation."""
        found, generation, _ = await self.lookup_until(user_id, key, now)
        return found, generation

    async def lookup_until(
        self, user_id: uuid.UUID, key: str, now: datetime
    ) -> tuple[bytes | None, Any, float]:
        """`lookup`, with the answer's expiry (POSIX seconds; 0 on a miss)."""
        generation_key, answers_key, lru_key, _ = self._keys(user_id)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hget(answers_key, key)
                pipe.get(generation_key)
                pipe.zadd(lru_key, {key: _now_ms()}, xx=True)  # used: last out
                raw, generation, _ = await pipe.execute()
        except self._errors:
            return None, None, 0.0  # a miss, and nothing will be stored
        seen = generation.decode() if generation is not None else "0"
        if raw is None:
            return None, seen, 0.0
        expires = _EXPIRY.unpack_from(raw)[0]
        if expires <= now.timestamp():
            return None, seen, 0.0
        return bytes(raw[_EXPIRY.size :]), seen, expires

    async def store(
        self, user_id: uuid.UUID, key: str, value: bytes, generation: Any, expires: datetime
    ) -> bool:
        """Keep the answer (atomically) if the generation is still the one `lookup` saw."""
        bounds = self._bounds
        if generation is None or len(value) > bounds.bytes:
            return False
        try:
            # The hash outlives its entries by at most an hour: they carry their own expiry.
            stored = await self._store(
                keys=[*self._keys(user_id), _USERS_KEY],
                args=[
                    generation,
                    key,
                    _EXPIRY.pack(expires.timestamp()) + value,
                    3_600_000,
                    _now_ms(),
                    bounds.entries,
                    bounds.bytes + _EXPIRY.size * bounds.entries,
                    bounds.users,
                    str(user_id),
                    _REDIS_PREFIX,
                ],
            )
        except self._errors:
            return False
        return bool(stored)

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Bump the users' generations and drop their answers; tell the API processes' near
        layers (`chainfolio.core.nearcache`) on `INVALIDATIONS`, in the same round trip."""
        users = list(user_ids)
        try:
            for start in range(0, len(users), _INVALIDATE_CHUNK):
                chunk = users[start : start + _INVALIDATE_CHUNK]
                async with self._client.pipeline(transaction=False) as pipe:
                    for user_id in chunk:
                        generation_key, *answers = self._keys(user_id)
                        pipe.incr(generation_key)
                        pipe.expire(generation_key, _GENERATION_TTL_S)
                        pipe.delete(*answers)
                    pipe.publish(INVALIDATIONS, b"".join(u.bytes for u in chunk))
                    await pipe.execute()
        except self._errors as exc:
            log.warning("cache: invalidation failed (%s); answers expire within the TTL", exc)


@asynccontextmanager
async def open_cache(
    url: str, *, ttl_s: float, bounds: CacheBounds | None = None, near_ttl_s: float = 0.0
) -> AsyncIterator[AnswerCache]:
    """The cache for `url` (the bus URL: `memory://` or `redis://`); `NoCache` when `ttl_s` is 0.

    `near_ttl_s` > 0 (API processes on Redis): an in-process layer in front of Redis
    (`chainfolio.core.nearcache.NearCache`) serves answers for at most that long.
    """
    if ttl_s <= 0:
        yield NoCache()
    elif url.startswith(("redis://", "rediss://", "unix://")):
        cache = RedisCache(url, bounds)
        try:
            if near_ttl_s > 0:
                from chainfolio.core.nearcache import NearCache  # noqa: PLC0415 - a cycle

                async with NearCache(cache, ttl_s=near_ttl_s, bounds=bounds).running() as near:
                    yield near
            else:
                yield cache
        finally:
            await asyncio.shield(cache.aclose())
    else:
        yield MemoryCache(bounds)
