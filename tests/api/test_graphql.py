"""GraphQL: the same numbers as REST, typed error codes, limits."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
import httpx
from graphql import find_breaking_changes

from chainfolio import __version__
from chainfolio.schema import build_schema
from tests.api.conftest import Auth, SeedUser

PORTFOLIO = """{ portfolio { totalValue change24h chains { chain value }
  assets { asset balance value } categories { category value }
  holdings { asset amount balance price priceSource valueUsd stale category } } }"""


async def gql(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    query: str,
    variables: dict[str, object] | None = None,
) -> dict[str, object]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_graphql_and_rest_agree(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    subject = await seeded_user()
    body = await gql(client, auth(subject), PORTFOLIO)
    assert "errors" not in body
    portfolio = body["data"]["portfolio"]  # type: ignore[index]
    rest = (await client.get("/v1/portfolio", headers=auth(subject))).json()["data"]
    assert Decimal(portfolio["totalValue"]) == Decimal(rest["totalValue"]) == 73_000
    assert {c["chain"]: Decimal(c["value"]) for c in portfolio["chains"]} == {
        c["chain"]: Decimal(str(c["value"])) for c in rest["chains"]
    }
    eth = [h for h in portfolio["holdings"] if h["asset"] == "ETH"]
    assert sorted(int(h["amount"]) for h in eth) == [2 * 10**18, 10 * 10**18]
    assert all(h["priceSource"] == "chainlink" for h in portfolio["holdings"])
    loan = next(h for h in portfolio["holdings"] if h["category"] == "LOAN")
    assert Decimal(loan["valueUsd"]) == -1000

    history = await gql(
        client,
        auth(subject),
        '{ history(period: "24h", interval: "1h") { timestamps values gaps '
        "points { timestamp value } } }",
    )
    rest_history = (
        await client.get(
            "/v1/portfolio/history",
            params={"period": "24h", "interval": "1h"},
            headers=auth(subject),
        )
    ).json()["data"]
    values = history["data"]["history"]["values"]  # type: ignore[index]
    assert [Decimal(v) for v in values] == [Decimal(str(p["value"])) for p in rest_history]
    assert history["data"]["history"]["gaps"] == []  # type: ignore[index]
    # The series scalars give exactly the JSON of the per-point list form: ISO strings and
    # exact decimal strings.
    compact = history["data"]["history"]  # type: ignore[index]
    points = compact["points"]
    assert len(points) >= 2
    assert compact["timestamps"] == [p["timestamp"] for p in points]
    assert compact["values"] == [p["value"] for p in points]
    assert all(isinstance(v, str) for v in compact["values"])


async def test_graphql_errors_carry_codes(client: httpx.AsyncClient, auth: Auth) -> None:
    body = await gql(client, auth("erin"), '{ history(period: "forever") { values } }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID_PERIOD"  # type: ignore[index]
    body = await gql(
        client,
        auth("erin"),
        'mutation { addWallet(chainId: 1, address: "0xnothex") { id } }',
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ADDRESS"  # type: ignore[index]
    body = await gql(client, auth("erin"), 'mutation { removeWallet(id: "nope") }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"  # type: ignore[index]


async def test_depth_and_alias_limits(client: httpx.AsyncClient, auth: Auth) -> None:
    aliases = " ".join(f"a{i}: wallets {{ id }}" for i in range(40))
    body = await gql(client, auth("frank"), f"{{ {aliases} }}")
    assert "errors" in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"  # type: ignore[index]


async def test_add_and_remove_wallet_via_graphql(client: httpx.AsyncClient, auth: Auth) -> None:
    added = await gql(
        client,
        auth("gina"),
        'mutation { addWallet(chainId: 137, address: "0x'
        + "cd" * 20
        + '", label: "cold") { id chainId address label } }',
    )
    wallet = added["data"]["addWallet"]  # type: ignore[index]
    assert wallet["chainId"] == 137
    assert wallet["label"] == "cold"
    removed = await gql(
        client, auth("gina"), "mutation($id: ID!) { removeWallet(id: $id) }", {"id": wallet["id"]}
    )
    assert removed["data"]["removeWallet"] is True  # type: ignore[index]
    again = await gql(
        client, auth("gina"), "mutation($id: ID!) { removeWallet(id: $id) }", {"id": wallet["id"]}
    )
    assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]


async def test_allocation_targets_are_validated_and_stored(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mutation = """mutation($t: [TargetInput!]!) { setAllocationTargets(targets: $t, band: 5) {
        key weight members } }"""
    good = [
        {"key": "ETH", "weight": "60"},
        {"key": "stablecoins", "weight": "40", "members": ["USDC", "DAI"]},
    ]
    body = await gql(client, auth("hank"), mutation, {"t": good})
    stored = body["data"]["setAllocationTargets"]  # type: ignore[index]
    assert {t["key"]: Decimal(t["weight"]) for t in stored} == {"ETH": 60, "stablecoins": 40}
    bad = [{"key": "ETH", "weight": "60"}, {"key": "BTC", "weight": "30"}]
    body = await gql(client, auth("hank"), mutation, {"t": bad})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_TARGETS"  # type: ignore[index]
    assert "sum to 100" in body["errors"][0]["message"]  # type: ignore[index]


async def test_decimals_are_plain_strings(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    """Whole numbers stored in `numeric` come back from asyncpg as `Decimal('2E+3')`: the API
    still writes "2000", never an exponent."""
    subject = await seeded_user()
    headers = auth(subject)
    portfolio = (await gql(client, headers, PORTFOLIO))["data"]["portfolio"]  # type: ignore[index]
    numbers = [portfolio["totalValue"], portfolio["change24h"]]
    for part, fields in (("chains", ["value"]), ("assets", ["balance", "value"])):
        numbers += [row[f] for row in portfolio[part] for f in fields]
    numbers += [h[f] for h in portfolio["holdings"] for f in ("balance", "price", "valueUsd")]
    assert not [n for n in numbers if "E" in n]
    assert portfolio["totalValue"] == "73000.000000000000000000"  # the column's scale, exact
    assert {h["price"] for h in portfolio["holdings"] if h["asset"] == "ETH"} == {"2000"}
    history = await gql(client, headers, '{ history(period: "7d", interval: "1d") { values } }')
    values = history["data"]["history"]["values"]  # type: ignore[index]
    assert values
    assert not any("E" in v for v in values)
    rest = (await client.get("/v1/portfolio", headers=headers)).json()["data"]
    assert not any("E" in a["balanceExact"] for a in rest["assets"])


async def test_change_is_read_only_when_asked_and_fragments_count(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    """`portfolio` reads the 24 h snapshot only for `change24h`/`changePercent24h`, and a
    fragment asking for them (spread or inline) is asking: the answers are the same bytes."""
    subject = await seeded_user()
    headers = auth(subject)
    direct = await gql(client, headers, "{ portfolio { change24h changePercent24h } }")
    spread = await gql(
        client,
        headers,
        "query { portfolio { ...C } } fragment C on Portfolio { change24h changePercent24h }",
    )
    inline = await gql(
        client, headers, "{ portfolio { ... on Portfolio { change24h changePercent24h } } }"
    )
    assert direct == spread == inline
    assert direct["data"]["portfolio"]["change24h"] is not None  # type: ignore[index]
    full = await gql(client, headers, PORTFOLIO)
    holdings_only = await gql(
        client,
        headers,
        "{ portfolio { holdings { asset amount balance price priceSource valueUsd stale "
        "category } } }",
    )
    only: dict[str, Any] = holdings_only["data"]  # type: ignore[assignment]
    everything: dict[str, Any] = full["data"]  # type: ignore[assignment]
    assert only["portfolio"]["holdings"] == everything["portfolio"]["holdings"]


ROOT = Path(__file__).resolve().parents[2]


def changelog_section(title: str) -> str:
    """The text under `## [title]` in CHANGELOG.md, up to the next release heading."""
    text = (ROOT / "CHANGELOG.md").read_text()
    start = text.index(f"## [{title}]")
    end = text.find("\n## [", start + 1)
    return text[start : end if end >= 0 else len(text)]


def last_release() -> str:
    """The newest release heading of CHANGELOG.md (Keep a Changelog: `## [x.y.z] - date`)."""
    found = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert found, "CHANGELOG.md lists no release"
    return found.group(1)


def unlisted_breaking_changes(released_sdl: str, current_sdl: str, listed: str) -> list[str]:
    """graphql-core's breaking changes from the released SDL that `listed` does not name."""
    changes = find_breaking_changes(
        graphql.build_schema(released_sdl), graphql.build_schema(current_sdl)
    )
    return [c.description for c in changes if c.description not in listed]


def test_committed_schema_is_the_codes_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", (
        "schema.graphql is out of date: chainfolio schema > schema.graphql"
    )


def test_the_cli_prints_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chainfolio", "schema"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == (ROOT / "schema.graphql").read_text()
    assert done.stderr == ""


def test_no_unlisted_breaking_change_since_the_last_release() -> None:
    """A change that breaks clients of the released schema must be named in CHANGELOG.md's
    Unreleased section (its description verbatim), or be made as a deprecation instead."""
    release = last_release()
    assert release == __version__, "the package version is not the last release in CHANGELOG.md"
    released = (ROOT / "docs" / f"schema-{release}.graphql").read_text()
    unlisted = unlisted_breaking_changes(
        released, build_schema().as_str(), changelog_section("Unreleased")
    )
    assert unlisted == [], "breaking schema changes not in CHANGELOG.md's Unreleased section"


def test_the_breaking_change_check_catches_a_removed_field() -> None:
    released = (ROOT / "docs" / "schema-0.1.0.graphql").read_text()
    field = '\n  """The caller\'s tracked wallets."""\n  wallets: [Wallet!]!\n'
    removed = released.replace(field, "\n", 1)
    assert removed != released
    assert unlisted_breaking_changes(released, removed, "") == ["Field Query.wallets was removed."]
    listed = "### Removed\n- **Breaking**: Field Query.wallets was removed.\n"
    assert unlisted_breaking_changes(released, removed, listed) == []
    # deprecating is not breaking
    deprecated = released.replace(
        "  wallets: [Wallet!]!\n", '  wallets: [Wallet!]! @deprecated(reason: "x")\n', 1
    )
    assert unlisted_breaking_changes(released, deprecated, "") == []


ROWS_PORTFOLIO = (
    "totalValue change24h changePercent24h chains { chain chainId value stale } "
    "assets { asset balance value loan netBalance } categories { category value } stale "
    "updatedAt unpricedCount staleChains incomplete __typename "
    "holdings { __typename chainId chain wallet asset contract category decimals amount "
    "balance price priceSource valueUsd updatedAt stale error }"
)


async def test_the_rows_path_answers_as_the_full_read(
    client: httpx.AsyncClient, auth: Auth, seeded_user: SeedUser
) -> None:
    """A `portfolio` selection the stored rows answer (issue 17: no per-holding objects) gives
    the answer of the full read, which a field the rows do not carry (positions, a holding's
    kind) makes the query take."""
    subject = await seeded_user()
    headers = auth(subject)
    rows = await gql(client, headers, f"{{ portfolio {{ {ROWS_PORTFOLIO} }} }}")
    full = await gql(
        client,
        headers,
        f"{{ portfolio {{ {ROWS_PORTFOLIO} positions {{ id }} h: holdings {{ kind }} }} }}",
    )
    assert "errors" not in rows
    assert "errors" not in full
    answer: dict[str, Any] = full["data"]["portfolio"]  # type: ignore[index]
    assert answer.pop("positions") == []
    assert sorted(h["kind"] for h in answer.pop("h")) == ["erc20", "erc20", "native", "native"]
    assert rows["data"]["portfolio"] == answer  # type: ignore[index]
    assert len(answer["holdings"]) == 4
