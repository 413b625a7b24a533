"""Request rate limits per client IP and per user: fixed one-minute windows per client.

The counter lives in Redis when `CHAINFOLIO_REDIS_URL` is `redis://…` (one atomic script per
hit, so every API process shares it) and in this process otherwise. A client's window starts
at its first request and lasts a minute. A fixed window lets a client send up to twice its
limit across a window edge; that is the price of one round trip and one key per client, and
is fine for abuse protection.

If Redis cannot be reached the limiter lets requests through (and logs it): losing the limit
for a while is better than refusing every request while Redis restarts.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis
import redis.exceptions

from chainfolio.core.errors import RateLimited

log = logging.getLogger(__name__)

WINDOW_S = 60

# KEYS[1] = counter key; ARGV[1] = window in seconds. Returns {count, ttl in ms}.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 1000)
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 1000)
  ttl = tonumber(ARGV[1]) * 1000
end
return {count, ttl}
"""


class Counter(Protocol):
    """Counts hits of a key in the current window: returns (hits so far, seconds left)."""

    async def hit(self, key: str) -> tuple[int, float]: ...


class MemoryCounter:
    """The same windows as in Redis (each starts at a key's first hit), in this process only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, hits)
        self._next_sweep = 0.0

    async def hit(self, key: str) -> tuple[int, float]:
        """One more hit of `key`."""
        now = self._clock()
        if now >= self._next_sweep:  # forget ended windows once a window
            self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
            self._next_sweep = now + WINDOW_S
        ends, count = self._windows.get(key, (0.0, 0))
        if ends <= now:
            ends, count = now + WINDOW_S, 0
        self._windows[key] = (ends, count + 1)
        return count + 1, ends - now


class RedisCounter:
    """A key per client that expires with its window, shared by every process."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(_HIT_SCRIPT)

    async def hit(self, key: str) -> tuple[int, float]:
        """One more hit of `key` (INCR + PEXPIRE in one script)."""
        count, ttl_ms = await self._script(keys=[f"chainfolio:ratelimit:{key}"], args=[WINDOW_S])
        return int(count), int(ttl_ms) / 1000


class RateLimiter:
    """Checks hits against per-IP and per-user limits (requests per minute; 0 = no limit)."""

    def __init__(self, counter: Counter, *, per_ip: int, per_user: int) -> None:
        self._counter = counter
        self.per_ip = per_ip
        self.per_user = per_user

    async def check_ip(self, address: str) -> None:
        """Count a request from `address`; RateLimited when over the per-IP limit."""
        await self._check(f"ip:{address}", self.per_ip, "this address")

    async def check_user(self, subject: str) -> None:
        """Count a request by `subject`; RateLimited when over the per-user limit."""
        await self._check(f"user:{subject}", self.per_user, "this user")

    async def _check(self, key: str, limit: int, who: str) -> None:
        if limit <= 0:
            return
        try:
            count, seconds_left = await self._counter.hit(key)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("rate limiter unavailable, letting the request through: %s", exc)
            return
        if count > limit:
            raise RateLimited(
                f"rate limit of {limit} requests per minute exceeded for {who}",
                retry_after=max(1, math.ceil(seconds_left)),
            )


@asynccontextmanager
async def open_rate_limiter(url: str, *, per_ip: int, per_user: int) -> AsyncIterator[RateLimiter]:
    """A limiter on Redis for `redis://` URLs, in memory otherwise; closed on exit."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        yield RateLimiter(MemoryCounter(), per_ip=per_ip, per_user=per_user)
        return
    # short timeouts: a slow Redis must not slow every request down
    client = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        yield RateLimiter(RedisCounter(client), per_ip=per_ip, per_user=per_user)
    finally:
        await client.aclose()
