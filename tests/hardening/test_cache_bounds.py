"""The answer cache stays within its bounds however many distinct variants a client sends:
answers and bytes per user, users in all (least recently used out first), in Redis and in
memory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from chainfolio.core.cache import CacheBounds, MemoryCache, RedisCache
from chainfolio.storage.accounts import user_id_for
from tests.fixtures.redis import RedisServer
from tests.hardening.conftest import OpenClient, bearer

NOW = datetime.now(UTC)
LATER = NOW + timedelta(minutes=5)
BOUNDS = CacheBounds(entries=4, bytes=10_000, users=3)


async def _stored_bytes(client: aioredis.Redis, user: uuid.UUID) -> tuple[int, int]:
    """(answers, bytes of answers) Redis holds for `user`."""
    key = f"chainfolio:cache:answers:{user}"
    fields = await client.hkeys(key)  # type: ignore[misc]
    sizes = [await client.hstrlen(key, f) for f in fields]  # type: ignore[misc]
    return len(fields), sum(sizes)


async def _store(cache: RedisCache | MemoryCache, user: uuid.UUID, key: str, size: int) -> None:
    _, generation = await cache.lookup(user, key, NOW)
    await cache.store(user, key, b"x" * size, generation, LATER)


async def test_redis_bounds_hold_under_a_flood(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    cache = RedisCache(redis_server.url, BOUNDS)
    try:
        await client.flushdb()
        flooder = uuid.uuid4()
        for i in range(200):
            await _store(cache, flooder, f"variant-{i}", 1_000)
        count, size = await _stored_bytes(client, flooder)
        assert count == BOUNDS.entries
        # big answers: the byte bound bites before the entry bound
        for i in range(20):
            await _store(cache, flooder, f"big-{i}", 4_000)
        count, size = await _stored_bytes(client, flooder)
        assert size <= BOUNDS.bytes + 8 * BOUNDS.entries  # each value carries its expiry
        assert count == 2
        # an answer larger than the user's bound is not kept at all
        await _store(cache, flooder, "huge", BOUNDS.bytes + 1)
        assert (await cache.lookup(flooder, "huge", NOW))[0] is None
        # least recently used out first: a looked-up answer outlives newer ones
        await _store(cache, flooder, "kept", 100)
        for i in range(3):
            await _store(cache, flooder, f"small-{i}", 100)
            assert (await cache.lookup(flooder, "kept", NOW))[0] is not None
        # many users: only the most recent `users` keep answers
        users = [uuid.uuid4() for _ in range(10)]
        for user in users:
            for i in range(10):
                await _store(cache, user, f"v{i}", 2_000)
        holding = [u for u in [flooder, *users] if (await _stored_bytes(client, u))[0]]
        assert holding == users[-BOUNDS.users :]
        memory = 0
        async for key in client.scan_iter("chainfolio:cache:*"):
            memory += await client.memory_usage(key) or 0
        # everything the cache keeps, Redis overhead included, within a small factor of the bound
        assert memory < 2 * BOUNDS.users * BOUNDS.bytes
    finally:
        await cache.aclose()
        await client.aclose()


async def test_memory_bounds_hold_under_a_flood() -> None:
    cache = MemoryCache(BOUNDS)
    flooder = uuid.uuid4()
    for i in range(200):
        await _store(cache, flooder, f"variant-{i}", 3_000)
    kept = [i for i in range(200) if (await cache.lookup(flooder, f"variant-{i}", NOW))[0]]
    assert kept == [197, 198, 199]  # 3 x 3,000 bytes within 10,000
    users = [uuid.uuid4() for _ in range(10)]
    for user in users:
        await _store(cache, user, "v", 100)
    holding = [u for u in [flooder, *users] if (await cache.lookup(u, "v", NOW))[0]]
    assert holding == users[-BOUNDS.users :]


async def test_graphql_variants_stay_within_the_user_bound(
    open_client: OpenClient, redis_server: RedisServer
) -> None:
    """Distinct documents from one token, through the API into Redis."""
    subject = f"flood-{uuid.uuid4().hex[:8]}"
    async with open_client(
        redis_url=redis_server.url, cache_max_entries_per_user=5, rate_limit_per_minute=0
    ) as http:
        for i in range(40):
            answer = await http.post(
                "/graphql",
                json={"query": f"query Variant{i} {{ __typename }}"},
                headers=bearer(subject),
            )
            assert answer.headers["x-chainfolio-cache"] == "miss"
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        count, _ = await _stored_bytes(client, user_id_for(subject))
    finally:
        await client.aclose()
    assert count == 5
