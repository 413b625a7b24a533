"""Request body cap (413 in the route's error shape) and the GraphQL document limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from tests.hardening.conftest import OpenClient, bearer

CAP = 4096


async def _chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    yield b'{"query": "{ wallets { id } }", "pad": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


async def test_oversized_bodies_get_413_in_the_route_shape(open_client: OpenClient) -> None:
    headers = {**bearer(f"body-{uuid.uuid4().hex[:8]}"), "Content-Type": "application/json"}
    big = {"query": "{ wallets { id } }", "pad": "x" * CAP}
    async with open_client(max_body_bytes=CAP) as client:
        graphql = await client.post("/graphql", json=big, headers=headers)
        assert graphql.status_code == 413
        assert graphql.json()["errors"][0]["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}
        rest = await client.post(
            "/v1/wallets", json={"chainId": 1, "address": "x" * CAP}, headers=headers
        )
        assert rest.status_code == 413
        assert rest.json() == {
            "success": False,
            "error": {
                "code": "PAYLOAD_TOO_LARGE",
                "message": f"request body larger than {CAP} bytes",
            },
        }
        # under the app's cap but over the REST routes' own (16 KiB): 413 as well
        async with open_client() as roomy:
            wallet = {"chainId": 1, "address": "x" * 20_000}
            rest = await roomy.post("/v1/wallets", json=wallet, headers=headers)
            assert rest.status_code == 413
            assert rest.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        # without Content-Length (chunked) the body is counted as it arrives
        chunked = await client.post("/graphql", content=_chunks(2 * CAP), headers=headers)
        assert chunked.status_code == 413
        assert chunked.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        small = await client.post("/graphql", content=_chunks(CAP // 2), headers=headers)
        assert small.json() == {"data": {"wallets": []}}
        assert "x-request-id" in small.headers


async def test_graphql_document_limits_answer_with_codes(open_client: OpenClient) -> None:
    headers = bearer(f"doc-{uuid.uuid4().hex[:8]}")
    aliases = " ".join(f"a{i}: wallets {{ id }}" for i in range(40))
    async with open_client() as client:
        response = await client.post(
            "/graphql", json={"query": f"{{ {aliases} }}"}, headers=headers
        )
        errors = response.json()["errors"]
        assert errors
        assert all(e["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" for e in errors)


README_QUERY = """
query {
  portfolio { totalValue change24h changePercent24h
    chains { chain value stale } assets { asset balance value } categories { category value }
    holdings { chain wallet asset amount balance price priceSource valueUsd updatedAt stale
      error } }
  history(period: "90d", interval: "1d") { timestamps values gaps }
  allocation { totalValue byAsset { key valueUsd weight } byCategory { key weight } unpricedCount }
  rebalance { withinBands trades { side asset chainId valueUsd amount } gas { chainId costUsd } }
  compare(period: "90d", benchmark: "ETH") { timestamps portfolio benchmarkValues excessReturn
    beta }
}
"""


async def test_graphql_cost_limit(open_client: OpenClient) -> None:
    headers = bearer(f"cost-{uuid.uuid4().hex[:8]}")
    expensive = " ".join(f'h{i}: history(period: "all") {{ values }}' for i in range(25))
    # fragments spread twice at every level: 2^60 fields if expanded; strawberry's depth and
    # alias limiters walked every spread (exponential time: this request blocked the server)
    levels = "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    bomb = f"query {{ ...F0 }}\n{levels}\nfragment F60 on Query {{ wallets {{ id }} }}"
    async with open_client() as client:
        for document in (f"{{ {expensive} }}", bomb):
            refused = await client.post("/graphql", json={"query": document}, headers=headers)
            messages = [e["message"] for e in refused.json()["errors"]]
            assert any("over the limit of 500" in m for m in messages), messages
            assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        everyday = await client.post("/graphql", json={"query": README_QUERY}, headers=headers)
        assert not [e for e in everyday.json().get("errors", []) if "limit" in e["message"]]
    async with open_client(graphql_max_cost=20) as tight:
        small = await tight.post("/graphql", json={"query": "{ wallets { id } }"}, headers=headers)
        assert small.json() == {"data": {"wallets": []}}
        refused = await tight.post("/graphql", json={"query": README_QUERY}, headers=headers)
        assert "over the limit of 20" in refused.json()["errors"][0]["message"]
