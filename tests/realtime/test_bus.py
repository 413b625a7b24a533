"""The bus on both backends: fan-out, slow subscribers, two processes, Redis restarts."""

from __future__ import annotations

import asyncio

import pytest

from chainfolio.bus import QUEUE_SIZE, Bus
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
        await asyncio.sleep(0.3)  # subscriptions reach Redis
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
        await asyncio.sleep(0.2)  # subscriptions reach Redis
        await worker.publish("portfolio:u1", "one")
        assert await _next(sub_a) == "one"
        assert await _next(sub_b) == "one"
        assert other._queue.empty()

        redis_server.stop()
        await asyncio.sleep(0.5)
        redis_server.start()
        for attempt in range(50):  # publisher and readers reconnect by themselves
            try:
                await worker.publish("portfolio:u1", f"two-{attempt}")
            except Exception:
                await asyncio.sleep(0.1)
                continue
            try:
                got_a = await _next(sub_a, 0.3)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("no message after the Redis restart")
        assert got_a.startswith("two-")
        assert (await _next(sub_b)).startswith("two-")
