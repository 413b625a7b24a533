"""Queries and mutations sent over graphql-transport-ws answer with the same error codes
(`extensions.code`) as over HTTP; legacy graphql-ws, which serves subscriptions only, refuses
them with a code and says where to send them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import websockets

from tests.realtime.test_expiry import short_token

HANG = 30.0  # a guard against hanging, never an assertion about speed
DOCUMENTS = {
    "unknown chain": 'mutation { addWallet(chainId: 999, address: "0x' + "11" * 20 + '") { id } }',
    "bad address": 'mutation { addWallet(chainId: 1, address: "0x12") { id } }',
    "bad period": '{ history(period: "forever") { period } }',
    "unknown field": "{ nope }",
}


def _codes(errors: list[dict[str, Any]]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in errors]


async def _over_socket(base: str, protocol: str, token: str, query: str) -> list[str | None]:
    url = base.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(
            orjson.dumps({"type": "connection_init", "payload": {"authToken": token}}).decode()
        )
        assert orjson.loads(await asyncio.wait_for(ws.recv(), HANG))["type"] == "connection_ack"
        kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await ws.send(orjson.dumps({"id": "1", "type": kind, "payload": {"query": query}}).decode())
        while True:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), HANG))
            if message["type"] in ("next", "data"):
                return _codes(message["payload"].get("errors") or [])
            if message["type"] == "error":
                payload = message["payload"]
                return _codes(payload if isinstance(payload, list) else [payload])


async def test_socket_errors_carry_the_codes_http_gives(served: str) -> None:
    token, _ = short_token(f"codes-{uuid.uuid4().hex[:6]}")
    async with httpx.AsyncClient(base_url=served, timeout=HANG) as http:
        for name, query in DOCUMENTS.items():
            answer = await http.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
            )
            expected = _codes(answer.json()["errors"])
            assert expected, (name, answer.json())
            assert None not in expected, (name, answer.json())
            over_ws = await _over_socket(served, "graphql-transport-ws", token, query)
            assert over_ws == expected, name


async def test_legacy_protocol_refuses_queries_and_mutations_with_a_code(served: str) -> None:
    token, _ = short_token(f"codes-{uuid.uuid4().hex[:6]}")
    for name in ("unknown chain", "bad period"):
        codes = await _over_socket(served, "graphql-ws", token, DOCUMENTS[name])
        assert codes == ["BAD_REQUEST"], name
