"""Live updates over real websockets: GraphQL (both protocols) and the seed's /v1/ws.

Two `chainfolio serve` processes share a private Redis; updates are published on the bus as
the worker publishes them, and must reach subscribers of both processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import orjson
import pytest
import websockets
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from prometheus_client.parser import text_string_to_metric_families

from chainfolio.api.auth import issue_token
from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.core.settings import Settings
from chainfolio.resolvers.updates import PortfolioUpdate
from chainfolio.storage.accounts import user_id_for
from tests.api.conftest import SECRET
from tests.fixtures.redis import RedisServer
from tests.servers import serve

SUBSCRIPTION = gql(
    "subscription { portfolioUpdates { totalValue change changePercent stale_chains: staleChains"
    " blocks { chainId block } } }"
)


@pytest.fixture(scope="module")
def two_servers(
    database_url: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    env = {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_JWT_SECRET": SECRET,
        "CHAINFOLIO_REDIS_URL": redis_server.url,
        "CHAINFOLIO_DATA_DIR": str(tmp_path_factory.mktemp("serve")),
    }
    with serve(env) as first, serve(env) as second:
        yield first.replace("http", "ws"), second.replace("http", "ws")


def token(subject: str) -> str:
    return issue_token(Settings(jwt_secret=SECRET), subject=subject)  # type: ignore[arg-type]


def update(subject: str, total: str, change: str) -> PortfolioUpdate:
    return PortfolioUpdate(
        user_id=str(user_id_for(subject)),
        total_value=Decimal(total),
        change=Decimal(change),
        change_percent=Decimal("0.5"),
        timestamp=datetime.now(UTC),
        blocks={1: 42},
    )


async def publish_until(
    redis_url: str, subject: str, message: PortfolioUpdate, received: asyncio.Future[object]
) -> object:
    """Publish until the subscriber has it (its subscription may still be registering)."""
    async with Bus(redis_url) as bus:
        for _ in range(100):
            await bus.publish(portfolio_channel(user_id_for(subject)), message.to_json())
            try:
                return await asyncio.wait_for(asyncio.shield(received), 0.2)
            except TimeoutError:
                continue
    raise AssertionError("subscriber never received the update")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_graphql_subscription_receives_published_update(
    two_servers: tuple[str, str], redis_server: RedisServer, protocol: str
) -> None:
    subject = f"sub-{uuid.uuid4().hex[:6]}"
    transport = WebsocketsTransport(
        url=f"{two_servers[1]}/graphql",
        init_payload={"Authorization": f"Bearer {token(subject)}"},
        subprotocols=[protocol],  # type: ignore[list-item]
    )
    async with Client(transport=transport) as session:
        received: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        async def consume() -> None:
            async for result in session.subscribe(SUBSCRIPTION):
                if not received.done():
                    received.set_result(result)

        task = asyncio.create_task(consume())
        result = await publish_until(
            redis_server.url, subject, update(subject, "100500", "500"), received
        )
        task.cancel()
    payload = result["portfolioUpdates"]  # type: ignore[index]
    assert Decimal(payload["totalValue"]) == Decimal("100500")
    assert Decimal(payload["change"]) == 500
    assert payload["blocks"] == [{"chainId": 1, "block": 42}]


async def test_graphql_subscription_without_valid_token_is_closed_4401(
    two_servers: tuple[str, str],
) -> None:
    async with websockets.connect(
        f"{two_servers[0]}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as ws:
        await ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}
            ).decode()
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_seed_websocket_protocol_on_both_processes(
    two_servers: tuple[str, str], redis_server: RedisServer
) -> None:
    subject = f"ws-{uuid.uuid4().hex[:6]}"
    sockets = [
        await websockets.connect(f"{base}/v1/ws?token={token(subject)}") for base in two_servers
    ]
    try:
        for ws in sockets:
            await ws.send(
                orjson.dumps(
                    {"type": "subscribe", "channel": "portfolio", "userId": subject}
                ).decode()
            )
            ack = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert ack["type"] == "subscribed"
        # "subscribed" comes once the bus subscription exists: one publication after it is
        # enough for the subscribers of both processes (no retry).
        async with Bus(redis_server.url) as bus:
            channel = portfolio_channel(user_id_for(subject))
            await bus.publish(channel, update(subject, "100500", "500").to_json())
        message = orjson.loads(await asyncio.wait_for(sockets[0].recv(), 5))
        assert message == {
            "type": "portfolio_update",
            "data": {
                "totalValue": 100500,
                "change": 500,
                "changePercent": 0.5,
                "timestamp": message["data"]["timestamp"],  # type: ignore[index]
                "staleChains": [],
                "incomplete": False,
            },
        }
        # the second process got the very same publication
        second = orjson.loads(await asyncio.wait_for(sockets[1].recv(), 5))
        assert second["type"] == "portfolio_update"
        assert second["data"]["totalValue"] == 100500
    finally:
        for ws in sockets:
            await ws.close()


async def test_seed_websocket_refuses_bad_input(two_servers: tuple[str, str]) -> None:
    async with websockets.connect(f"{two_servers[0]}/v1/ws") as ws:
        error = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error["type"] == "error"
        assert error["error"]["code"] == "UNAUTHENTICATED"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401

    async with websockets.connect(f"{two_servers[0]}/v1/ws?token={token('mallory')}") as ws:
        await ws.send('{"type": "dance"}')
        error = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error["error"]["code"] == "UNKNOWN_MESSAGE_TYPE"
        await ws.send("not json")
        assert orjson.loads(await ws.recv())["error"]["code"] == "INVALID_JSON"
        await ws.send('{"type": "ping"}')
        assert orjson.loads(await ws.recv()) == {"type": "pong"}
        await ws.send('{"type": "subscribe", "channel": "portfolio", "userId": "alice"}')
        assert orjson.loads(await ws.recv())["error"]["code"] == "FORBIDDEN"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403


def _bus_lag_count(base: str) -> float:
    scraped = httpx.get(f"{base.replace('ws', 'http', 1)}/metrics", timeout=5).text
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == "chainfolio_bus_lag_seconds_count":
                return sample.value
    raise AssertionError("chainfolio_bus_lag_seconds is not on /metrics")


async def test_metrics_show_the_bus_lag_of_a_delivered_publication(
    two_servers: tuple[str, str], redis_server: RedisServer
) -> None:
    subject = f"lag-{uuid.uuid4().hex[:6]}"
    async with websockets.connect(f"{two_servers[0]}/v1/ws?token={token(subject)}") as ws:
        subscribe = {"type": "subscribe", "channel": "portfolio", "userId": subject}
        await ws.send(orjson.dumps(subscribe).decode())
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
        before = _bus_lag_count(two_servers[0])
        async with Bus(redis_server.url) as bus:
            channel = portfolio_channel(user_id_for(subject))
            await bus.publish(channel, update(subject, "7", "1").to_json())
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message["data"]["totalValue"] == 7  # the envelope never reaches the client
    assert _bus_lag_count(two_servers[0]) == before + 1
