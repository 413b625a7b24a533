"""Rate limits per user and per IP, in memory and on the real Redis."""

from __future__ import annotations

import uuid

import pytest

from chainfolio.api.ratelimit import MemoryCounter, RateLimiter, open_rate_limiter
from chainfolio.core.errors import RateLimited
from tests.fixtures.redis import RedisServer
from tests.hardening.conftest import OpenClient, bearer
from tests.servers import free_port


def _subject() -> str:
    return f"rl-{uuid.uuid4().hex[:8]}"


async def test_memory_window_starts_at_the_first_hit() -> None:
    now = [100.0]
    limiter = RateLimiter(MemoryCounter(lambda: now[0]), per_ip=2, per_user=0)
    await limiter.check_ip("10.0.0.1")
    now[0] = 130.5
    await limiter.check_ip("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        await limiter.check_ip("10.0.0.1")
    assert refused.value.retry_after == 30  # 29.5 s left, rounded up
    await limiter.check_ip("10.0.0.2")  # another address has its own budget
    now[0] = 160.0  # the first window ended
    await limiter.check_ip("10.0.0.1")
    await limiter.check_ip("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        await limiter.check_ip("10.0.0.1")
    assert refused.value.retry_after == 60
    for _ in range(100):  # 0 = no per-user limit
        await limiter.check_user("anyone")


async def test_redis_counter_is_shared_between_limiters(redis_server: RedisServer) -> None:
    subject = _subject()
    async with (
        open_rate_limiter(redis_server.url, per_ip=0, per_user=3) as one,
        open_rate_limiter(redis_server.url, per_ip=0, per_user=3) as two,
    ):
        await one.check_user(subject)
        await two.check_user(subject)
        await one.check_user(subject)
        with pytest.raises(RateLimited) as refused:
            await two.check_user(subject)
        assert 1 <= refused.value.retry_after <= 60


async def test_redis_down_lets_requests_through() -> None:
    async with open_rate_limiter(
        f"redis://127.0.0.1:{free_port()}/0", per_ip=1, per_user=1
    ) as limiter:
        for _ in range(3):
            await limiter.check_ip("10.0.0.1")
            await limiter.check_user("someone")


async def test_rest_answers_429_with_envelope_and_retry_after(open_client: OpenClient) -> None:
    headers = bearer(_subject())
    async with open_client(rate_limit_per_minute=3, rate_limit_per_ip_per_minute=0) as client:
        for _ in range(3):
            assert (await client.get("/v1/wallets", headers=headers)).status_code == 200
        refused = await client.get("/v1/wallets", headers=headers)
        assert refused.status_code == 429
        assert refused.json() == {
            "success": False,
            "error": {
                "code": "RATE_LIMITED",
                "message": "rate limit of 3 requests per minute exceeded for this user",
            },
        }
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # another user is not affected; health routes are never limited
        assert (await client.get("/v1/wallets", headers=bearer(_subject()))).status_code == 200
        for _ in range(5):
            assert (await client.get("/healthz")).status_code == 200


async def test_graphql_answers_429_with_code_and_retry_after(open_client: OpenClient) -> None:
    headers = bearer(_subject())
    query = {"query": "{ wallets { id } }"}
    async with open_client(rate_limit_per_minute=2, rate_limit_per_ip_per_minute=0) as client:
        for _ in range(2):
            ok = await client.post("/graphql", json=query, headers=headers)
            assert ok.json() == {"data": {"wallets": []}}
        refused = await client.post("/graphql", json=query, headers=headers)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"] == {"code": "RATE_LIMITED"}
        assert "Retry-After" in refused.headers


async def test_per_ip_limit_applies_before_authentication(open_client: OpenClient) -> None:
    async with open_client(
        client_ip="192.0.2.7", rate_limit_per_minute=0, rate_limit_per_ip_per_minute=2
    ) as client:
        assert (await client.get("/v1/portfolio")).status_code == 401
        assert (await client.get("/v1/portfolio")).status_code == 401
        refused = await client.get("/v1/portfolio")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert "this address" in refused.json()["error"]["message"]
        graphql = await client.post("/graphql", json={"query": "{ wallets { id } }"})
        assert graphql.status_code == 429
        assert graphql.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert (await client.get("/readyz")).status_code == 200


async def test_per_user_limit_on_redis_spans_apps(
    open_client: OpenClient, redis_server: RedisServer
) -> None:
    headers = bearer(_subject())
    limits = {
        "redis_url": redis_server.url,
        "rate_limit_per_minute": 2,
        "rate_limit_per_ip_per_minute": 0,
    }
    async with open_client(**limits) as first, open_client(**limits) as second:
        assert (await first.get("/v1/wallets", headers=headers)).status_code == 200
        assert (await second.get("/v1/wallets", headers=headers)).status_code == 200
        assert (await first.get("/v1/wallets", headers=headers)).status_code == 429


async def test_zero_disables_both_limits(open_client: OpenClient) -> None:
    headers = bearer(_subject())
    async with open_client(rate_limit_per_minute=0, rate_limit_per_ip_per_minute=0) as client:
        for _ in range(30):
            assert (await client.get("/v1/wallets", headers=headers)).status_code == 200
