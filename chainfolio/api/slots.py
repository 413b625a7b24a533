"""Websocket slots per user (`SocketSlots`): in Redis for every API process, or in this one.

In Redis each user has a sorted set of the slots their open sockets hold, scored by when each
slot's lease ends (Redis's own clock, so processes on other hosts agree). Taking a slot drops
ended leases, counts the rest and adds one, atomically (one script). Each process renews the
leases of its open sockets every third of `LEASE_S`; a process that dies without closing its sockets
stops renewing, and its slots end within `LEASE_S` instead of being held for ever.

If Redis cannot be reached a socket is let in (and it is logged), as the rate limiter does:
losing the cap for a while is better than refusing every socket while Redis restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import redis.exceptions

from chainfolio.api.sockets import SocketSlots, TooManySockets
from chainfolio.resolvers.context import Caller

log = logging.getLogger(__name__)

LEASE_S = 60.0
"""How long a slot outlives the last renewal of the process holding it (renewed every third)."""
_PREFIX = "chainfolio:sockets:"

# KEYS[1] = the user's set; ARGV = cap, lease in ms, slot id. Returns 1 (taken) or 0 (full).
_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS[1] = the user's set; ARGV = lease in ms, then the slot ids this process holds.
_RENEW = """
local now = redis.call('TIME')
local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], until_ms, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""


def _too_many(per_user: int) -> TooManySockets:
    return TooManySockets(f"at most {per_user} open websockets per user: close one first")


class MemorySlots:
    """Slots counted in this process (no Redis configured)."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: Counter[uuid.UUID] = Counter()

    async def acquire(self, caller: Caller) -> str:
        """Take a slot for a new socket of `caller`, or TooManySockets."""
        if self._open[caller.user_id] >= self.per_user:
            raise _too_many(self.per_user)
        self._open[caller.user_id] += 1
        return uuid.uuid4().hex

    async def release(self, caller: Caller, slot: str) -> None:
        """Give the slot of a closed socket back."""
        del slot  # one slot is as good as another here
        self._open[caller.user_id] -= 1
        if self._open[caller.user_id] <= 0:
            del self._open[caller.user_id]


class RedisSlots:
    """Slots shared by every API process, leased (see the module docstring)."""

    def __init__(self, client: aioredis.Redis, per_user: int, *, lease_s: float = LEASE_S) -> None:
        self.per_user = per_user
        self._client = client
        self._lease_ms = int(lease_s * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._held: defaultdict[str, set[str]] = defaultdict(set)  # key -> slots held here

    async def acquire(self, caller: Caller) -> str:
        """Take a slot for a new socket of `caller`, or TooManySockets."""
        key, slot = _PREFIX + caller.rate_key, uuid.uuid4().hex
        try:
            taken = await self._acquire(keys=[key], args=[self.per_user, self._lease_ms, slot])
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("socket slots unavailable, letting the socket in: %s", exc)
            return slot
        if not taken:
            raise _too_many(self.per_user)
        self._held[key].add(slot)
        return slot

    async def release(self, caller: Caller, slot: str) -> None:
        """Give the slot of a closed socket back."""
        key = _PREFIX + caller.rate_key
        held = self._held.get(key)
        if held is None or slot not in held:
            return  # let in while Redis was unreachable: nothing to give back
        held.discard(slot)
        if not held:
            del self._held[key]
        try:
            await self._client.zrem(key, slot)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("socket slot not released (its lease ends it): %s", exc)

    async def renew(self) -> None:
        """Extend the leases of every slot this process holds (one round trip)."""
        if not self._held:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key, slots in self._held.items():
                await self._renew(keys=[key], args=[self._lease_ms, *slots], client=pipe)
            await pipe.execute()

    async def renewing(self) -> None:
        """Renew every third of the lease until cancelled."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                await self.renew()
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("socket slots not renewed: %s", exc)


@contextlib.asynccontextmanager
async def open_socket_slots(url: str, *, per_user: int) -> AsyncIterator[SocketSlots]:
    """Slots in Redis for `redis://` URLs (renewed until exit), in memory otherwise."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        yield MemorySlots(per_user)
        return
    client = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    slots = RedisSlots(client, per_user)
    task = asyncio.create_task(slots.renewing(), name="socket-slot-leases")
    try:
        yield slots
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()
