"""Websockets against a real `serve`: every operation counts against the per-user rate
limit, sockets per user and operations per socket are capped."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import websockets

from chainfolio.api.slots import RedisSlots
from chainfolio.api.sockets import TooManySockets
from chainfolio.resolvers.context import Caller
from tests.fixtures.redis import RedisServer
from tests.hardening.conftest import bearer, graphql_socket, serve_env
from tests.servers import serve

LIMIT = 8
ENV = {
    "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    "CHAINFOLIO_WS_MAX_SOCKETS_PER_USER": "2",
    "CHAINFOLIO_WS_MAX_SUBSCRIPTIONS_PER_SOCKET": "3",
}


async def _recv(ws: websockets.ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] not in {"ka", "ping", "pong"}:
            return message


async def _subscribe(ws: websockets.ClientConnection, op_id: str, query: str) -> None:
    message = {"id": op_id, "type": "subscribe", "payload": {"query": query}}
    await ws.send(orjson.dumps(message).decode())


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve(serve_env(database_url, tmp_path_factory.mktemp("ws-limits"), **ENV)) as base:
        yield base


async def test_graphql_operations_count_against_the_user_limit(server: str) -> None:
    async with graphql_socket(server, "ws-rate") as ws:  # authentication: 1 of LIMIT
        answers = []
        for i in range(LIMIT):
            await _subscribe(ws, str(i), "{ __typename }")
            answer = await _recv(ws)
            if answer["type"] == "next":
                assert (await _recv(ws))["type"] == "complete"
            answers.append(answer)
    assert [a["type"] for a in answers] == ["next"] * (LIMIT - 1) + ["error"]
    refusal = answers[-1]["payload"][0]
    assert refusal["extensions"]["code"] == "RATE_LIMITED"
    assert refusal["extensions"]["retryAfter"] >= 1


async def test_sockets_per_user_are_capped(server: str) -> None:
    async with graphql_socket(server, "ws-sockets"), graphql_socket(server, "ws-sockets"):
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with graphql_socket(server, "ws-sockets"):
                pass
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4429
        assert closed.value.rcvd.reason == "TOO_MANY_SOCKETS"
        # the seed's /v1/ws shares the count
        async with websockets.connect(
            server.replace("http", "ws") + "/v1/ws",
            additional_headers=bearer("ws-sockets"),
        ) as seed:
            refused = orjson.loads(await asyncio.wait_for(seed.recv(), 10))
            assert refused["error"]["code"] == "TOO_MANY_SOCKETS"
    # closed sockets give their slots back
    async with graphql_socket(server, "ws-sockets"):
        pass


async def test_operations_per_socket_are_capped(server: str) -> None:
    subscription = "subscription { portfolioUpdates { totalValue } }"
    async with graphql_socket(server, "ws-subs") as ws:
        for i in range(4):
            await _subscribe(ws, str(i), subscription)
        refusal = await _recv(ws)
    assert refusal["type"] == "error"
    assert refusal["id"] == "3"


async def test_seed_socket_messages_count_against_the_user_limit(server: str) -> None:
    async with websockets.connect(
        server.replace("http", "ws") + "/v1/ws", additional_headers=bearer("ws-seed-rate")
    ) as ws:
        answers = []
        for _ in range(LIMIT):
            await ws.send('{"type": "ping"}')
            answers.append(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert [a["type"] for a in answers] == ["pong"] * (LIMIT - 1) + ["error"]
    assert answers[-1]["error"]["code"] == "RATE_LIMITED"


async def _refused_socket(base: str, subject: str) -> websockets.ConnectionClosed:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with graphql_socket(base, subject):
            pass
    return closed.value


async def test_the_socket_cap_holds_across_serve_processes(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """Two `serve` processes on one Redis: a user holds at most the cap in all, not per process
    (with an in-process count they could hold twice the cap)."""
    env = serve_env(
        database_url,
        tmp_path,
        CHAINFOLIO_REDIS_URL=redis_server.url,
        CHAINFOLIO_WS_MAX_SOCKETS_PER_USER="2",
        CHAINFOLIO_RATE_LIMIT_PER_MINUTE="0",
    )
    subject = f"ws-across-{uuid.uuid4().hex[:8]}"
    with serve(env) as first, serve(env) as second:
        async with graphql_socket(first, subject), AsyncExitStack() as held:
            await held.enter_async_context(graphql_socket(second, subject))
            for base in (first, second):
                closed = await _refused_socket(base, subject)
                assert closed.rcvd is not None
                assert (closed.rcvd.code, closed.rcvd.reason) == (4429, "TOO_MANY_SOCKETS")
            await held.aclose()  # the second process's socket closes: its slot is back
            async with graphql_socket(first, subject):
                pass
        # another user is not affected by this one's sockets
        async with graphql_socket(second, f"{subject}-other"):
            pass
    # every slot was given back (none left to expire with its lease)
    client = aioredis.from_url(redis_server.url)
    try:
        for _ in range(50):
            keys = [k async for k in client.scan_iter("chainfolio:sockets:*")]
            if not keys or sum([await client.zcard(k) for k in keys]) == 0:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"slots left in Redis: {keys}")
    finally:
        await client.aclose()


async def test_slots_of_a_process_that_died_end_with_their_lease(
    redis_server: RedisServer,
) -> None:
    """A process that stops renewing (killed) loses its slots after the lease; a live one keeps
    them past it."""
    caller = Caller(uuid.uuid4(), "lease", f"lease-{uuid.uuid4().hex}")
    client = aioredis.from_url(redis_server.url)
    try:
        dead = RedisSlots(client, 2, lease_s=1.0)  # never renews: as if killed
        alive = RedisSlots(client, 2, lease_s=1.0)
        await dead.acquire(caller)
        slot = await alive.acquire(caller)
        with pytest.raises(TooManySockets):
            await alive.acquire(caller)
        renewing = asyncio.create_task(alive.renewing())
        try:
            await asyncio.sleep(1.6)  # the dead process's lease ended, the live one's renewed
            second = await alive.acquire(caller)
            with pytest.raises(TooManySockets):
                await alive.acquire(caller)
        finally:
            renewing.cancel()
        await alive.release(caller, slot)
        await alive.release(caller, second)
        assert await client.zcard(f"chainfolio:sockets:{caller.rate_key}") == 0
    finally:
        await client.aclose()
