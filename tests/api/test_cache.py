"""The per-user answer cache: the stores themselves (memory and a real Redis), then the API.

Checked: a hit returns exactly what a fresh computation returns; a change (mutation, worker
refresh through `invalidate`) is visible on the very next request; an invalidation racing a
slow reader wins; answers never outlive the next hour boundary; users never share answers;
answers with errors are never kept; Redis down means misses, not failures.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from chainfolio.api.app import create_app
from chainfolio.core.cache import (
    AnswerCache,
    CacheBounds,
    MemoryCache,
    NoCache,
    RedisCache,
    expiry,
    open_cache,
)
from chainfolio.core.settings import Settings
from chainfolio.resolvers.context import Services
from chainfolio.storage.accounts import user_id_for
from tests.api.conftest import SECRET, Auth, SeedUser
from tests.fixtures.redis import RedisServer
from tests.servers import free_port
from tests.worker.test_flows import Clock  # the clock a test moves by hand

T0 = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
USER_A, USER_B = uuid.uuid4(), uuid.uuid4()
PORTFOLIO = "{ portfolio { totalValue change24h holdings { asset valueUsd updatedAt } } }"


# --- the stores -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[AnswerCache]:
    if request.param == "memory":
        yield MemoryCache()
    else:
        yield RedisCache(redis_server.url)


async def test_miss_store_hit_and_expiry(store: AnswerCache) -> None:
    key = f"k-{uuid.uuid4()}"
    found, generation = await store.lookup(USER_A, key, T0)
    assert found is None
    assert await store.store(USER_A, key, b'{"data":1}', generation, T0 + timedelta(seconds=60))
    assert (await store.lookup(USER_A, key, T0 + timedelta(seconds=59)))[0] == b'{"data":1}'
    assert (await store.lookup(USER_A, key, T0 + timedelta(seconds=60)))[0] is None
    assert (await store.lookup(USER_B, key, T0))[0] is None  # users never share answers


async def test_invalidate_drops_only_that_user(store: AnswerCache) -> None:
    a, b, key = uuid.uuid4(), uuid.uuid4(), "same-key"
    for user in (a, b):
        _, generation = await store.lookup(user, key, T0)
        assert await store.store(user, key, user.bytes, generation, T0 + timedelta(hours=1))
    await store.invalidate([a])
    assert (await store.lookup(a, key, T0))[0] is None
    assert (await store.lookup(b, key, T0))[0] == b.bytes


async def test_invalidation_during_a_slow_read_wins(store: AnswerCache) -> None:
    """Reader looks up (miss), the worker commits and invalidates, the reader stores what it
    read before the commit: that answer must not be kept."""
    user, key = uuid.uuid4(), "portfolio"
    _, seen_before = await store.lookup(user, key, T0)
    await store.invalidate([user])
    assert not await store.store(user, key, b"old", seen_before, T0 + timedelta(hours=1))
    assert (await store.lookup(user, key, T0))[0] is None
    _, seen_after = await store.lookup(user, key, T0)
    assert await store.store(user, key, b"new", seen_after, T0 + timedelta(hours=1))
    assert (await store.lookup(user, key, T0))[0] == b"new"


def test_expiry_is_capped_at_the_next_hour() -> None:
    assert expiry(T0, 60) == T0 + timedelta(seconds=60)
    assert expiry(datetime(2026, 11, 28, 10, 59, 30, tzinfo=UTC), 60) == datetime(
        2026, 11, 28, 11, tzinfo=UTC
    )


async def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(CacheBounds(entries=2, users=2))
    users = [uuid.uuid4() for _ in range(3)]
    later = T0 + timedelta(hours=1)
    for user in users:
        for key in ("k1", "k2", "k3"):
            _, generation = await cache.lookup(user, key, T0)
            await cache.store(user, key, key.encode(), generation, later)
    assert (await cache.lookup(users[0], "k3", T0))[0] is None  # least recently used user out
    assert (await cache.lookup(users[2], "k1", T0))[0] is None  # oldest key out
    assert (await cache.lookup(users[2], "k3", T0))[0] == b"k3"


async def test_redis_down_means_misses_not_errors() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        found, generation = await cache.lookup(USER_A, "k", T0)
        assert found is None
        assert not await cache.store(USER_A, "k", b"x", generation, T0 + timedelta(hours=1))
        await cache.invalidate([USER_A])  # logged, not raised
    finally:
        await cache.aclose()


async def test_ttl_zero_turns_caching_off() -> None:
    async with open_cache("memory://", ttl_s=0) as cache:
        _, generation = await cache.lookup(USER_A, "k", T0)
        assert not await cache.store(USER_A, "k", b"x", generation, T0 + timedelta(hours=1))


# --- through the API --------------------------------------------------------------------------


@dataclass
class Cached:
    """An app with the cache on, its services and clock, and a seeded user's headers."""

    http: httpx.AsyncClient
    services: Services
    clock: Clock
    subject: str
    headers: dict[str, str]


@pytest.fixture(params=["memory", "redis"])
async def cached(
    request: pytest.FixtureRequest,
    database_url: str,
    redis_server: RedisServer,
    tmp_path: Any,
    seeded_user: SeedUser,
    api_clock: Clock,
    auth: Auth,
) -> AsyncIterator[Cached]:
    settings = Settings(
        database_url=SecretStr(database_url),
        jwt_secret=SecretStr(SECRET),
        data_dir=tmp_path,
        redis_url=redis_server.url if request.param == "redis" else "memory://",
        cache_ttl_s=60,
        rate_limit_per_minute=0,
        rate_limit_per_ip_per_minute=0,
    )
    subject = await seeded_user()
    app: Starlette = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        services.clock = api_clock  # the seeded user's clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Cached(http, services, api_clock, subject, auth(subject))


async def _graphql(
    http: httpx.AsyncClient, headers: dict[str, str], query: str, **variables: Any
) -> httpx.Response:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


async def test_graphql_hit_is_the_fresh_answer(
    cached: Cached, seeded_user: SeedUser, auth: Auth
) -> None:
    http, headers, services = cached.http, cached.headers, cached.services
    first = await _graphql(http, headers, PORTFOLIO)
    second = await _graphql(http, headers, PORTFOLIO)
    assert first.headers["x-chainfolio-cache"] == "miss"
    assert second.headers["x-chainfolio-cache"] == "hit"
    assert second.content == first.content
    assert "errors" not in first.json()
    # a different selection is another answer, not this one
    other = await _graphql(http, headers, "{ portfolio { totalValue } }")
    assert other.headers["x-chainfolio-cache"] == "miss"
    assert set(other.json()["data"]["portfolio"]) == {"totalValue"}
    # another user with the same query gets their own answer
    someone_else = await _graphql(http, auth(await seeded_user()), PORTFOLIO)
    assert someone_else.headers["x-chainfolio-cache"] == "miss"
    # with caching off the same request computes the same bytes
    services.cache = NoCache()
    assert (await _graphql(http, headers, PORTFOLIO)).content == first.content


async def test_mutations_drop_the_answers(cached: Cached) -> None:
    http, headers = cached.http, cached.headers
    query = "{ wallets { address } allocationTargets { targets { key weight } } }"
    before = (await _graphql(http, headers, query)).json()["data"]
    assert (await _graphql(http, headers, query)).headers["x-chainfolio-cache"] == "hit"

    added = await _graphql(
        http,
        headers,
        'mutation { addWallet(chainId: 1, address: "0x' + "33" * 20 + '") { id } }',
    )
    assert "errors" not in added.json(), added.text
    after_add = await _graphql(http, headers, query)
    assert after_add.headers["x-chainfolio-cache"] == "miss"
    assert len(after_add.json()["data"]["wallets"]) == len(before["wallets"]) + 1

    rest_targets = await http.get("/v1/portfolio/targets", headers=headers)
    assert rest_targets.headers["x-chainfolio-cache"] == "miss"
    assert (await http.get("/v1/portfolio/targets", headers=headers)).headers[
        "x-chainfolio-cache"
    ] == "hit"
    put = await http.put(
        "/v1/portfolio/targets",
        json={"targets": [{"key": "ETH", "weight": 60}, {"key": "USDC", "weight": 40}]},
        headers=headers,
    )
    assert put.status_code == 200, put.text
    rest_after = await http.get("/v1/portfolio/targets", headers=headers)
    assert rest_after.headers["x-chainfolio-cache"] == "miss"
    assert [t["key"] for t in rest_after.json()["data"]["targets"]] == ["ETH", "USDC"]
    graphql_after = (await _graphql(http, headers, query)).json()["data"]
    assert [t["key"] for t in graphql_after["allocationTargets"]["targets"]] == ["ETH", "USDC"]

    listed = await http.get("/v1/wallets", headers=headers)
    assert listed.headers["x-chainfolio-cache"] == "miss"
    assert (await http.get("/v1/wallets", headers=headers)).headers["x-chainfolio-cache"] == "hit"
    wallet_id = listed.json()["data"][-1]["id"]
    assert (await http.delete(f"/v1/wallets/{wallet_id}", headers=headers)).status_code == 200
    wallets = await http.get("/v1/wallets", headers=headers)
    assert wallets.headers["x-chainfolio-cache"] == "miss"
    assert len(wallets.json()["data"]) == len(before["wallets"])


async def test_invalidate_as_the_worker_does(cached: Cached) -> None:
    http, headers = cached.http, cached.headers
    assert (await http.get("/v1/portfolio", headers=headers)).headers["x-chainfolio-cache"] == (
        "miss"
    )
    assert (await http.get("/v1/portfolio", headers=headers)).headers["x-chainfolio-cache"] == (
        "hit"
    )
    await cached.services.cache.invalidate([user_id_for(cached.subject)])
    assert (await http.get("/v1/portfolio", headers=headers)).headers["x-chainfolio-cache"] == (
        "miss"
    )


async def test_answers_end_at_the_hour_and_at_the_ttl(cached: Cached) -> None:
    http, headers, services, clock = cached.http, cached.headers, cached.services, cached.clock
    hour = clock.now.replace(minute=0, second=0, microsecond=0)
    clock.now = hour + timedelta(minutes=59, seconds=30)
    assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "miss"
    clock.now += timedelta(seconds=29)
    assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "hit"
    clock.now += timedelta(seconds=1)  # the hour turned: change24h may compare another snapshot
    assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "miss"
    clock.now += timedelta(seconds=services.settings.cache_ttl_s - 1)
    assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "hit"
    clock.now += timedelta(seconds=1)
    assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "miss"


async def test_queries_without_errors_are_kept_mutations_never(cached: Cached) -> None:
    http, headers = cached.http, cached.headers

    async def header(body: dict[str, Any]) -> str | None:
        response = await http.post("/graphql", json=body, headers=headers)
        return response.headers.get("x-chainfolio-cache")

    mutation = 'mutation { removeWallet(id: "nope") }'
    assert [await header({"query": mutation}) for _ in range(2)] == [None, None]
    invalid = "{ portfolio { noSuchField } }"
    for _ in range(2):
        response = await http.post("/graphql", json={"query": invalid}, headers=headers)
        assert response.json()["errors"]
        assert response.headers["x-chainfolio-cache"] == "miss"
    # windows over stored history are cached too; variables are part of the key
    by_var = "query($p: String!) { wallets { address } history(period: $p) { values } }"
    for period, expected in (("7d", "miss"), ("7d", "hit"), ("30d", "miss"), ("30d", "hit")):
        assert await header({"query": by_var, "variables": {"p": period}}) == expected
    # a named operation among several: cached only when the chosen one qualifies
    document = 'query A { portfolio { totalValue } } mutation B { removeWallet(id: "x") }'
    assert await header({"query": document, "operationName": "A"}) == "miss"
    assert await header({"query": document, "operationName": "B"}) is None
    assert await header({"query": document, "operationName": "A"}) == "hit"


async def test_rest_windows_are_cached_per_query_string(cached: Cached) -> None:
    http, headers = cached.http, cached.headers
    for path in (
        "/v1/portfolio/history?period=7d&interval=1h",
        "/v1/portfolio/performance?period=7d",
    ):
        first = await http.get(path, headers=headers)
        second = await http.get(path, headers=headers)
        assert first.status_code == 200, (path, first.text)
        assert first.headers["x-chainfolio-cache"] == "miss"
        assert second.headers["x-chainfolio-cache"] == "hit"
        assert second.content == first.content
    other = await http.get("/v1/portfolio/history?period=7d&interval=1d", headers=headers)
    assert other.headers["x-chainfolio-cache"] == "miss"
    # an error is never kept
    for _ in range(2):
        refused = await http.get("/v1/portfolio/compare?benchmark=NOSUCHCOIN", headers=headers)
        assert refused.status_code == 400
        assert refused.headers.get("x-chainfolio-cache") != "hit"


async def test_redis_going_away_leaves_the_api_answering(
    database_url: str,
    redis_server: RedisServer,
    tmp_path: Any,
    seeded_user: SeedUser,
    api_clock: Clock,
    auth: Auth,
) -> None:
    """Cache, bus and rate limiter all on a Redis that is killed mid-run: queries keep being
    answered (from PostgreSQL, as misses), and caching resumes once Redis is back."""
    settings = Settings(
        database_url=SecretStr(database_url),
        jwt_secret=SecretStr(SECRET),
        data_dir=tmp_path,
        redis_url=redis_server.url,
        cache_ttl_s=60,
        # the Redis layer itself: a near copy may still answer until its listener sees the
        # loss (tests/core/test_nearcache.py covers the near layer going off)
        cache_near_ttl_s=0,
    )
    headers = auth(await seeded_user())
    app: Starlette = create_app(settings)
    async with app.router.lifespan_context(app):
        # the seeded user's clock: on the wall clock an hour turning mid-test would end the
        # cached answer early and move change24h, so `down` would not equal `first`
        app.state.services.clock = api_clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = await _graphql(http, headers, PORTFOLIO)
            assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "hit"
            redis_server.stop()
            try:
                for _ in range(2):
                    down = await _graphql(http, headers, PORTFOLIO)
                    assert down.headers["x-chainfolio-cache"] == "miss"
                    assert down.content == first.content
            finally:
                redis_server.start()
            assert (await _graphql(http, headers, PORTFOLIO)).headers[
                "x-chainfolio-cache"
            ] == "miss"
            assert (await _graphql(http, headers, PORTFOLIO)).headers["x-chainfolio-cache"] == "hit"
