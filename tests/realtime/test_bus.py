"""The bus on both backends: fan-out, slow subscribers, two processes, Redis restarts."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis
from prometheus_client import REGISTRY

from chainfolio.bus.broadcast import QUEUE_SIZE, STAMP, Bus, stamp, unstamp
from tests.fixtures.redis import RedisServer


async def test_memory_fan_out_and_slow_subscriber_keeps_latest() -> None:
    async with Bus("memory://") as bus, bus.subscribe("c") as fast, bus.subscribe("c") as slow:
        for i in range(QUEUE_SIZE * 3):
            await bus.publish("c", str(i))
            assert await fast.get() == str(i)  # the fast one reads as it goes
        received = [await slow.get() for _ in range(QUEUE_SIZE)]
        assert received[-1] == str(QUEUE_SIZE * 3 - 1)  # the newest survived
        assert slow.dropped == QUEUE_SIZE * 2
    assert bus.subscriber_count() == 0


async def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="memory:// or redis://"):
        Bus("kafka://x")


async def _next(sub: object, wait: float = 5.0) -> str:
    return await asyncio.wait_for(sub.get(), wait)  # type: ignore[attr-defined]


async def test_redis_delivers_to_subscriptions_opened_concurrently(
    redis_server: RedisServer,
) -> None:
    # Many users' first subscriptions in one process arrive together (clients reconnecting
    # after a deploy): every channel must be subscribed on the connection the bus reads.
    channels = [f"portfolio:c{i}" for i in range(20)]
    async with Bus(redis_server.url) as api, Bus(redis_server.url) as worker:
        opened: list[str] = []
        all_open = asyncio.Event()

        async def client(channel: str) -> str:
            async with api.subscribe(channel) as sub:
                opened.append(channel)
                if len(opened) == len(channels):
                    all_open.set()
                return await _next(sub)

        tasks = [asyncio.create_task(client(c)) for c in channels]
        await asyncio.wait_for(all_open.wait(), 5)
        for channel in channels:
            await worker.publish(channel, channel)
        assert await asyncio.gather(*tasks) == channels
    assert api.subscriber_count() == 0


async def test_redis_reaches_every_process_and_survives_a_restart(
    redis_server: RedisServer,
) -> None:
    async with (
        Bus(redis_server.url) as api_a,
        Bus(redis_server.url) as api_b,
        Bus(redis_server.url) as worker,
        api_a.subscribe("portfolio:u1") as sub_a,
        api_b.subscribe("portfolio:u1") as sub_b,
        api_b.subscribe("portfolio:u2") as other,
    ):
        await worker.publish("portfolio:u1", "one")
        assert await _next(sub_a) == "one"
        assert await _next(sub_b) == "one"
        assert other._queue.empty()

        redis_server.stop()
        await asyncio.sleep(0.5)
        redis_server.start()

        async def once_back(sub: object) -> str:
            """The first message `sub` gets after the restart. Publisher and readers reconnect
            by themselves, each process on its own: what is published before a reader is
            back is not delivered to it (pub/sub keeps nothing), so publish until it is."""
            for attempt in range(50):
                try:
                    await worker.publish("portfolio:u1", f"two-{attempt}")
                except Exception:
                    await asyncio.sleep(0.1)
                    continue
                try:
                    return await _next(sub, 0.3)
                except TimeoutError:
                    continue
            pytest.fail("no message after the Redis restart")

        assert (await once_back(sub_a)).startswith("two-")
        assert (await once_back(sub_b)).startswith("two-")  # api_b may be back later than api_a


def _lag_count() -> float:
    return REGISTRY.get_sample_value("chainfolio_bus_lag_seconds_count") or 0.0


async def test_redis_envelope_is_stripped_and_the_lag_observed(
    redis_server: RedisServer,
) -> None:
    async with (
        Bus(redis_server.url) as api,
        Bus(redis_server.url) as worker,
        api.subscribe("lag:u1") as sub,
    ):
        before = _lag_count()
        await worker.publish("lag:u1", '{"a": 1}')
        assert await _next(sub) == '{"a": 1}'  # subscribers see the message as published
        assert _lag_count() == before + 1

        # something else publishing on Redis without the envelope: delivered as it is
        raw = redis.Redis.from_url(redis_server.url)
        try:
            for message in ("plain", f"{STAMP}not-a-time{STAMP}x", f"{STAMP}nan{STAMP}y"):
                await raw.publish("lag:u1", message)
                assert await _next(sub) == message
        finally:
            await raw.aclose()
        assert _lag_count() == before + 1


def test_stamp_round_trip() -> None:
    assert unstamp(stamp("hello", 1700000000.25)) == ("hello", 1700000000.25)
    assert unstamp(stamp(f"{STAMP}inner{STAMP}", 2.5)) == (f"{STAMP}inner{STAMP}", 2.5)
    assert unstamp("hello") == ("hello", None)
    assert unstamp(f"{STAMP}12") == (f"{STAMP}12", None)  # no closing delimiter
    published_at = unstamp(stamp("now"))[1]
    assert published_at is not None
    assert abs(published_at - time.time()) < 60
