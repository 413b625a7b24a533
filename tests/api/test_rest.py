"""REST routes: the seed's envelopes field by field, errors, auth and user isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tests.api.conftest import SECRET, Auth, SeedUser


async def test_portfolio_envelope_matches_seed(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    subject = await seeded_user()
    response = await client.get("/v1/portfolio", headers=auth(subject))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    # 10 ETH x 2000 + 50,000 USDC - 1,000 USDC loan + 2 ETH x 2000
    assert data["totalValue"] == 73_000
    assert {"totalValue", "chains", "assets", "categories"} <= data.keys()
    assert data["chains"] == [
        {"chain": "ethereum", "chainId": 1, "value": 69_000, "stale": False},
        {"chain": "arbitrum", "chainId": 42161, "value": 4_000, "stale": False},
    ]
    eth = next(a for a in data["assets"] if a["asset"] == "ETH")
    usdc = next(a for a in data["assets"] if a["asset"] == "USDC")
    assert (eth["balance"], eth["value"]) == (12, 24_000)
    assert (usdc["balance"], usdc["value"]) == (50_000, 49_000)  # loan is not a balance
    assert {c["category"]: c["value"] for c in data["categories"]} == {
        "WALLET": 74_000,
        "LOAN": -1_000,
    }
    for item in data["chains"]:
        assert {"chain", "value"} <= item.keys()
    for item in data["assets"]:
        assert {"asset", "balance", "value"} <= item.keys()
    # 24 h ago the snapshot said 70,000 - 240
    assert data["change24h"] == 73_000 - 69_760
    assert data["changePercent24h"] == pytest.approx(3_240 / 69_760 * 100, abs=1e-4)


async def test_history_envelope_matches_seed(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    subject = await seeded_user()
    response = await client.get(
        "/v1/portfolio/history", params={"period": "24h", "interval": "1h"}, headers=auth(subject)
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert all(set(point) == {"timestamp", "value"} for point in data)
    assert data[-1]["value"] == 70_000 - 10
    assert data[0]["timestamp"].endswith("Z")
    values = [p["value"] for p in data]
    assert values == sorted(values)  # the seeded series rises towards now


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/portfolio/history", {"period": "2y"}, "INVALID_PERIOD"),
        ("/v1/portfolio/history", {"period": "30d", "interval": "3m"}, "INVALID_INTERVAL"),
        ("/v1/portfolio/history", {"period": "1y", "interval": "5m"}, "TOO_MANY_POINTS"),
    ],
)
async def test_bad_query_parameters_are_400(
    client: httpx.AsyncClient, auth: Auth, path: str, params: dict[str, str], code: str
) -> None:
    response = await client.get(path, params=params, headers=auth("someone"))
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert "accepted" in body["error"]["message"] or "interval" in body["error"]["message"]


def _token(claims: dict[str, object], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


_future = datetime.now(UTC) + timedelta(hours=1)
_past = datetime.now(UTC) - timedelta(hours=1)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer " + _token({"sub": "a", "exp": _future}, key="x" * 40)},
        {"Authorization": "Bearer " + _token({"sub": "a", "exp": _past})},
        {"Authorization": "Bearer " + _token({"sub": "a", "exp": _future}, key="", alg="none")},
        {"Authorization": "Bearer " + _token({"exp": _future})},
        {"Authorization": "Bearer not-a-jwt"},
    ],
    ids=["missing", "basic", "bad-signature", "expired", "alg-none", "no-sub", "garbage"],
)
async def test_bad_tokens_are_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/v1/portfolio", "/v1/portfolio/history", "/v1/wallets"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.json()["success"] is False
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    graphql = await client.post("/graphql", json={"query": "{ wallets { id } }"}, headers=headers)
    assert graphql.status_code == 401
    assert graphql.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_users_never_see_each_other(client: httpx.AsyncClient, auth: Auth) -> None:
    created = await client.post(
        "/v1/wallets",
        json={"chainId": 1, "address": "0x" + "ab" * 20, "label": "alice"},
        headers=auth("alice"),
    )
    assert created.status_code == 201
    wallet_id = created.json()["data"]["id"]
    assert (await client.get("/v1/wallets", headers=auth("bob"))).json()["data"] == []
    assert (await client.get("/v1/portfolio", headers=auth("bob"))).json()["data"][
        "totalValue"
    ] == 0
    stolen = await client.delete(f"/v1/wallets/{wallet_id}", headers=auth("bob"))
    assert stolen.status_code == 404
    query = "{ wallets { id address } }"
    bob = await client.post("/graphql", json={"query": query}, headers=auth("bob"))
    assert bob.json()["data"]["wallets"] == []
    mine = await client.post("/graphql", json={"query": query}, headers=auth("alice"))
    assert [w["id"] for w in mine.json()["data"]["wallets"]] == [wallet_id]
    removed = await client.delete(f"/v1/wallets/{wallet_id}", headers=auth("alice"))
    assert removed.status_code == 200


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("0x123", "INVALID_ADDRESS"),
        ("0x" + "zz" * 20, "INVALID_ADDRESS"),
        ("0xA0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "INVALID_ADDRESS"),  # bad checksum
    ],
)
async def test_bad_addresses_are_400(
    client: httpx.AsyncClient, auth: Auth, address: str, code: str
) -> None:
    response = await client.post(
        "/v1/wallets", json={"chainId": 1, "address": address}, headers=auth("carol")
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_lowercase_address_is_normalised_and_duplicates_refused(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    lower = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
    response = await client.post(
        "/v1/wallets", json={"chainId": 1, "address": lower}, headers=auth("dave")
    )
    assert response.status_code == 201
    assert response.json()["data"]["address"] == "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    again = await client.post(
        "/v1/wallets",
        json={"chainId": 1, "address": lower.upper().replace("0X", "0x")},
        headers=auth("dave"),
    )
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "DUPLICATE_WALLET"
    unknown = await client.post(
        "/v1/wallets", json={"chainId": 999999, "address": lower}, headers=auth("dave")
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "UNKNOWN_CHAIN"
    bad_json = await client.post("/v1/wallets", content=b"{", headers=auth("dave"))
    assert bad_json.status_code == 400


async def test_health_routes_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
