"""Cursor pagination: GraphQL connections (Relay) and REST `limit`/`cursor` over the same lists."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from chainfolio.core.errors import InvalidInput
from chainfolio.resolvers.pages import MAX_PAGE, encode_cursor, paginate
from tests.api.conftest import Auth, SeedUser
from tests.api.test_graphql import gql

HOLDINGS = """query($first: Int, $after: String) { portfolio { holdingsConnection(first: $first,
  after: $after) { totalCount edges { cursor node { chainId wallet asset contract kind valueUsd } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }"""
WALLETS = """query($first: Int, $after: String) { walletsConnection(first: $first, after: $after) {
  totalCount edges { cursor node { id address } } pageInfo { hasNextPage endCursor } } }"""


async def walk(
    client: httpx.AsyncClient, headers: dict[str, str], query: str, path: list[str], first: int
) -> list[dict[str, Any]]:
    """Every page of a connection, `first` at a time; the pages' nodes in order."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gql(client, headers, query, {"first": first, "after": after})
        assert "errors" not in body, body
        connection: Any = body["data"]
        for name in path:
            connection = connection[name]
        assert len(connection["edges"]) <= first
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        nodes += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        after = connection["pageInfo"]["endCursor"]


def documented_order(holding: dict[str, Any]) -> tuple[Any, ...]:
    """Largest absolute value first, unpriced last, then chain id, asset, wallet, contract."""
    value = holding["valueUsd"]
    magnitude = -abs(Decimal(value)) if value is not None else Decimal(0)
    return (value is None, magnitude, holding["chainId"], holding["asset"], holding["wallet"])


@pytest.mark.parametrize("first", [1, 3, 50])
async def test_holdings_pages_cover_the_list_once_in_order(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser, first: int
) -> None:
    headers = auth(await seeded_user())
    query = "{ portfolio { holdings { chainId wallet asset contract kind valueUsd } } }"
    listed = (await gql(client, headers, query))["data"]["portfolio"]["holdings"]  # type: ignore[index]
    paged = await walk(client, headers, HOLDINGS, ["portfolio", "holdingsConnection"], first)
    assert sorted(map(str, paged)) == sorted(map(str, listed))  # each exactly once
    assert len(paged) == 4
    assert paged == sorted(paged, key=documented_order)
    assert [abs(Decimal(h["valueUsd"])) for h in paged] == [50_000, 20_000, 4_000, 1_000]


async def test_wallet_pages_survive_changes_between_pages(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    headers = auth("paula-pages")
    add = "mutation($a: String!) { addWallet(chainId: 1, address: $a) { id address } }"
    ids = []
    for i in range(5):
        body = await gql(client, headers, add, {"a": "0x" + f"{i + 1:02x}" * 20})
        ids.append(body["data"]["addWallet"]["id"])  # type: ignore[index]
    first = await gql(client, headers, WALLETS, {"first": 2})
    page = first["data"]["walletsConnection"]  # type: ignore[index]
    assert [e["node"]["id"] for e in page["edges"]] == ids[:2]
    assert page["totalCount"] == 5
    # between pages: one already seen is removed, a new one is added (it sorts last)
    await gql(client, headers, "mutation($id: ID!) { removeWallet(id: $id) }", {"id": ids[0]})
    added = await gql(client, headers, add, {"a": "0x" + "aa" * 20})
    ids.append(added["data"]["addWallet"]["id"])  # type: ignore[index]
    rest = []
    after = page["pageInfo"]["endCursor"]
    while after is not None:
        body = await gql(client, headers, WALLETS, {"first": 2, "after": after})
        connection = body["data"]["walletsConnection"]  # type: ignore[index]
        rest += [e["node"]["id"] for e in connection["edges"]]
        after = (
            connection["pageInfo"]["endCursor"] if connection["pageInfo"]["hasNextPage"] else None
        )
    assert rest == ids[2:]  # none repeated, none skipped

    # REST: the same list, the same cursors
    listed = (await client.get("/v1/wallets", headers=headers)).json()
    assert set(listed) == {"success", "data"}  # unpaged: the answer as before
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = (await client.get("/v1/wallets", params=params, headers=headers)).json()
        seen += [w["id"] for w in answer["data"]]
        assert answer["page"]["totalCount"] == 5
        cursor = answer["page"]["nextCursor"]
        if not answer["page"]["hasNextPage"]:
            assert cursor is None
            break
    assert seen == [w["id"] for w in listed["data"]] == ids[1:]


async def test_rest_holdings_pages_match_the_portfolio(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    headers = auth(await seeded_user())
    whole = (await client.get("/v1/portfolio", headers=headers)).json()["data"]["holdings"]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/v1/portfolio/holdings", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        seen += answer.json()["data"]
        cursor = answer.json()["page"]["nextCursor"]
        if cursor is None:
            break
    assert sorted(map(str, seen)) == sorted(map(str, whole))
    assert [abs(h["value"]) for h in seen] == [50_000, 20_000, 4_000, 1_000]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "INVALID_PAGE"),
        ({"limit": str(MAX_PAGE + 1)}, "INVALID_PAGE"),
        ({"limit": "ten"}, "INVALID_PAGE"),
        ({"cursor": "not-a-cursor"}, "INVALID_CURSOR"),
        ({"cursor": encode_cursor("wallet", (1, "x"))}, "INVALID_CURSOR"),  # another list's
    ],
)
async def test_bad_pages_are_refused_with_a_code(
    client: httpx.AsyncClient,
    auth: Auth,
    seeded_user: SeedUser,
    params: dict[str, str],
    code: str,
) -> None:
    headers = auth(await seeded_user())
    rest = await client.get("/v1/portfolio/holdings", params=params, headers=headers)
    assert rest.status_code == 400
    assert rest.json()["success"] is False
    assert rest.json()["error"]["code"] == code
    if params.get("limit", "1").isdigit():
        variables = {"first": int(params.get("limit", "1")), "after": params.get("cursor")}
        body = await gql(client, headers, HOLDINGS, variables)
        assert body["errors"][0]["extensions"]["code"] == code  # type: ignore[index]


def test_paginate_by_key() -> None:
    """The in-memory keyset: `after` is a position in the order, not an index."""
    items = [Decimal("2.5"), Decimal(-1), Decimal("10"), Decimal(3)]
    first = paginate("n", items, lambda d: (d, 0), first=2, after=None)
    assert [d for _, d in first.edges] == [Decimal(-1), Decimal("2.5")]
    assert (first.has_next_page, first.has_previous_page, first.total_count) == (True, False, 4)
    after = first.end_cursor
    assert after is not None
    # an item before the cursor disappears, one after it appears: no repeat, no skip
    changed = [Decimal("2.5"), Decimal("10"), Decimal(3), Decimal(7)]
    rest = paginate("n", changed, lambda d: (d, 0), first=5, after=after)
    assert [d for _, d in rest.edges] == [Decimal(3), Decimal(7), Decimal(10)]
    assert (rest.has_next_page, rest.has_previous_page) == (False, True)
    with pytest.raises(InvalidInput) as refused:
        paginate("m", changed, lambda d: (d, 0), first=5, after=after)
    assert refused.value.code == "INVALID_CURSOR"
    assert paginate("n", [], lambda d: (d, 0), first=5, after=after).edges == []
