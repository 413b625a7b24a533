"""The near layer in front of the Redis answer cache: served locally, dropped by any process's
invalidation, never longer than its TTL, and off while its invalidation channel is down.
Real Redis (the session's redis-server), two "processes" as two caches on it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.core.cache import RedisCache
from chainfolio.core.nearcache import NearCache
from tests.fixtures.redis import RedisServer

NOW = datetime.now(UTC)
LATER = NOW + timedelta(minutes=5)


@asynccontextmanager
async def near(url: str, ttl_s: float) -> AsyncIterator[NearCache]:
    shared = RedisCache(url)
    try:
        async with NearCache(shared, ttl_s=ttl_s, bounds=None).running() as cache:
            await asyncio.wait_for(cache.listening.wait(), 10)
            yield cache
    finally:
        await shared.aclose()


async def _fill(cache: NearCache, user: uuid.UUID, key: str, answer: bytes) -> None:
    found, generation = await cache.lookup(user, key, NOW)
    assert found is None
    assert await cache.store(user, key, answer, generation, LATER)


async def _near_only(cache: NearCache, user: uuid.UUID, key: str, answer: bytes) -> None:
    """`answer` stored, read back (so kept near), then forgotten in Redis: from here on the
    cache answers it only from its near layer."""
    await _fill(cache, user, key, answer)
    assert (await cache.lookup(user, key, NOW))[0] == answer
    await _forget_in_redis(cache._shared.url, user)


async def _forget_in_redis(url: str, user: uuid.UUID) -> None:
    """Delete the user's answers in Redis behind the caches' backs (not an invalidation):
    whatever a cache still answers after this comes from its near layer."""
    client = aioredis.Redis.from_url(url)
    await client.delete(f"chainfolio:cache:answers:{user}")
    await client.aclose()


async def test_an_invalidation_anywhere_drops_every_near_copy(redis_server: RedisServer) -> None:
    url = redis_server.url
    user = uuid.uuid4()
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(near(url, ttl_s=30))
        second = await stack.enter_async_context(near(url, ttl_s=30))
        worker = RedisCache(url)  # a worker process: Redis only, no near layer
        stack.push_async_callback(worker.aclose)
        await _fill(first, user, "q", b"old answer")
        assert (await second.lookup(user, "q", NOW))[0] == b"old answer"  # now near in both
        assert (await first.lookup(user, "q", NOW))[0] == b"old answer"
        await _forget_in_redis(url, user)
        assert (await second.lookup(user, "q", NOW))[0] == b"old answer"  # served near

        started = time.monotonic()
        await worker.invalidate([user])
        while (await second.lookup(user, "q", NOW))[0] is not None:
            assert time.monotonic() - started < 10, "the invalidation never arrived"
            await asyncio.sleep(0.001)
        while (await first.lookup(user, "q", NOW))[0] is not None:
            assert time.monotonic() - started < 10, "the invalidation never arrived"
            await asyncio.sleep(0.001)

        # the invalidating process drops its own copy before it returns
        await _near_only(first, user, "r", b"answer")
        await first.invalidate([user])
        assert (await first.lookup(user, "r", NOW))[0] is None


async def test_a_near_copy_lives_at_most_its_ttl(redis_server: RedisServer) -> None:
    user = uuid.uuid4()
    async with near(redis_server.url, ttl_s=2) as cache:
        await _near_only(cache, user, "q", b"answer")
        assert (await cache.lookup(user, "q", NOW + timedelta(seconds=1.9)))[0] == b"answer"
        assert (await cache.lookup(user, "q", NOW + timedelta(seconds=2.1)))[0] is None


async def test_never_past_the_answers_own_expiry(redis_server: RedisServer) -> None:
    user = uuid.uuid4()
    async with near(redis_server.url, ttl_s=30) as cache:
        _, generation = await cache.lookup(user, "q", NOW)
        await cache.store(user, "q", b"answer", generation, NOW + timedelta(seconds=5))
        assert (await cache.lookup(user, "q", NOW))[0] == b"answer"
        await _forget_in_redis(redis_server.url, user)
        assert (await cache.lookup(user, "q", NOW + timedelta(seconds=4.9)))[0] == b"answer"
        assert (await cache.lookup(user, "q", NOW + timedelta(seconds=5.1)))[0] is None


async def test_a_lookup_racing_an_invalidation_does_not_refill_the_near_layer(
    redis_server: RedisServer,
) -> None:
    """The Redis read began before the invalidation message arrived: what it read is not kept
    near. Redis is frozen (SIGSTOP) while the read is on its way, well inside its 1 s timeout."""
    user = uuid.uuid4()
    async with near(redis_server.url, ttl_s=30) as cache:
        await _fill(cache, user, "q", b"old")
        with redis_server.frozen():
            reading = asyncio.create_task(cache.lookup(user, "q", NOW))
            await asyncio.sleep(0.2)  # the read has been sent and waits for Redis
            cache.drop(user.bytes)  # an invalidation message arrives meanwhile
        found, _ = await reading
        assert found == b"old"  # this request's answer, as read
        await _forget_in_redis(redis_server.url, user)
        assert (await cache.lookup(user, "q", NOW))[0] is None  # nothing old was kept near


async def test_a_push_drops_the_near_copy_before_its_subscribers_see_it(
    redis_server: RedisServer,
) -> None:
    """The worker's portfolio update reaches this process on the bus, maybe before the
    invalidation on its own channel: the near copy is gone when the subscriber wakes."""
    user = uuid.uuid4()
    async with AsyncExitStack() as stack:
        cache = await stack.enter_async_context(near(redis_server.url, ttl_s=30))
        bus = await stack.enter_async_context(Bus(redis_server.url))
        bus.listen(cache.drop_channel)
        subscription = await stack.enter_async_context(bus.subscribe(portfolio_channel(user)))
        await _near_only(cache, user, "q", b"old")
        publisher = await stack.enter_async_context(Bus(redis_server.url))
        await publisher.publish(portfolio_channel(user), "{}")  # no invalidation sent at all
        await asyncio.wait_for(subscription.get(), 10)
        assert (await cache.lookup(user, "q", NOW))[0] is None


async def test_no_near_answers_while_the_channel_is_down(redis_server: RedisServer) -> None:
    user = uuid.uuid4()
    async with near(redis_server.url, ttl_s=30) as cache:
        await _fill(cache, user, "q", b"answer")
        assert (await cache.lookup(user, "q", NOW))[0] == b"answer"
        redis_server.stop()
        try:
            deadline = time.monotonic() + 10
            while cache.listening.is_set():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            # Redis is gone and the near layer is off: a miss, not the near copy
            assert (await cache.lookup(user, "q", NOW))[0] is None
        finally:
            redis_server.start()
        await asyncio.wait_for(cache.listening.wait(), 15)
        await _forget_in_redis(redis_server.url, user)
        assert (await cache.lookup(user, "q", NOW))[0] is None  # cleared when the channel came back
