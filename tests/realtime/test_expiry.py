"""A websocket lives no longer than its token: at the JWT's `exp` the server closes it with 4401
"token expired" on every protocol (graphql-transport-ws, legacy graphql-ws, /v1/ws), while a
subscription is running; the client re-authenticates by reconnecting with a fresh token."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import orjson
import pytest
import websockets

from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from tests.api.conftest import SECRET

TTL = timedelta(seconds=3)
HANG = 30.0  # a guard against hanging, never an assertion about speed
SUBSCRIPTION = "subscription { portfolioUpdates { totalValue staleChains } }"


@pytest.fixture
def server(served: str) -> str:
    return served.replace("http", "ws")


def short_token(subject: str) -> tuple[str, float]:
    """A token valid for `TTL`, and its `exp`."""
    token = issue_token(Settings(jwt_secret=SECRET), subject=subject, ttl=TTL)  # type: ignore[arg-type]
    return token, float(jwt.decode(token, options={"verify_signature": False})["exp"])


def _json(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


async def _graphql_transport_ws(base: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(f"{base}/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(_json({"type": "connection_init", "payload": {"Authorization": token}}))
    assert orjson.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
    return ws


async def _graphql_ws(base: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(f"{base}/graphql", subprotocols=["graphql-ws"])  # type: ignore[list-item]
    await ws.send(_json({"type": "connection_init", "payload": {"authToken": token}}))
    assert orjson.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(_json({"id": "1", "type": "start", "payload": {"query": SUBSCRIPTION}}))
    return ws


async def _seed_ws(base: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(f"{base}/v1/ws?token={token}")
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    await ws.send(_json({"type": "subscribe", "channel": "portfolio", "userId": subject}))
    assert orjson.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def _messages_until_closed(ws: websockets.ClientConnection) -> None:
    while True:  # keep-alives may arrive; the close is what ends this
        await asyncio.wait_for(ws.recv(), HANG)


PROTOCOLS = {
    "graphql-transport-ws": _graphql_transport_ws,
    "graphql-ws": _graphql_ws,
    "v1-ws": _seed_ws,
}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
async def test_socket_is_closed_4401_at_token_expiry_and_reconnects(
    server: str, protocol: str
) -> None:
    subject = f"exp-{uuid.uuid4().hex[:6]}"
    token, expires = short_token(subject)
    ws = await PROTOCOLS[protocol](server, token)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await _messages_until_closed(ws)
    closed_at = time.time()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "token expired")
    assert closed_at >= expires - 0.05  # not before `exp` (clocks of one machine)

    fresh, _ = short_token(subject)  # re-authenticate: a new connection with a new token
    again = await PROTOCOLS[protocol](server, fresh)
    await again.close()


async def test_an_expired_token_is_refused_at_connect(server: str) -> None:
    subject = f"exp-{uuid.uuid4().hex[:6]}"
    token = issue_token(
        Settings(jwt_secret=SECRET),  # type: ignore[arg-type]
        subject=subject,
        ttl=timedelta(seconds=-1),
    )
    async with websockets.connect(f"{server}/v1/ws?token={token}") as ws:
        error = orjson.loads(await asyncio.wait_for(ws.recv(), HANG))
        assert error["error"]["code"] == "UNAUTHENTICATED"
        assert "expired" in error["error"]["message"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), HANG)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
