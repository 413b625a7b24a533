"""Subscriptions refused before execution carry `extensions.code` too (validation errors); a
document that does not parse closes the socket with 4400, as graphql-transport-ws says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import websockets

from tests.hardening.conftest import graphql_socket, serve_env
from tests.servers import serve


async def test_early_subscription_errors_carry_codes(database_url: str, tmp_path: Path) -> None:
    documents = {
        "unknown field": "subscription { nope }",
        "two anonymous": "subscription { portfolioUpdates { totalValue } } subscription { x }",
    }
    with serve(serve_env(database_url, tmp_path)) as base:
        async with graphql_socket(base, "ws-errors-user") as ws:
            for name, query in documents.items():
                subscribe = {"id": name, "type": "subscribe", "payload": {"query": query}}
                await ws.send(orjson.dumps(subscribe).decode())
                answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer["id"] == name
                assert answer["type"] == "error", answer
                codes = {e["extensions"]["code"] for e in answer["payload"]}
                assert codes == {"GRAPHQL_VALIDATION_FAILED"}, (name, answer)
            syntax = {"id": "syntax", "type": "subscribe", "payload": {"query": "subscription {"}}
            await ws.send(orjson.dumps(syntax).decode())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
    assert "Syntax Error" in closed.value.rcvd.reason
