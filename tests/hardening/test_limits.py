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
