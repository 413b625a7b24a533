"""Property-based fuzzing of a real `chainfolio serve` process.

REST: schemathesis generates valid and invalid requests for every operation of the served
`/openapi.json`. GraphQL: schemathesis (hypothesis-graphql) generates queries and mutations
from the schema. Either way: never a 5xx, and every error in the documented shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis_graphql import nodes
from schemathesis import GenerationMode
from schemathesis.generation.case import Case

from chainfolio.core.domain import AssetKind, Category, Holding, Price
from chainfolio.storage import accounts
from chainfolio.storage.database import open_engine
from chainfolio.storage.holdings import replace_wallet_holdings
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from tests.hardening.conftest import bearer
from tests.hardening.test_serve_process import serving

SUBJECT = "fuzz-user"
# per operation and mode: enough to find crashes while keeping the suite fast; raise it for a
# deeper run, e.g. CHAINFOLIO_FUZZ_EXAMPLES=1000
EXAMPLES = int(os.environ.get("CHAINFOLIO_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: failures reproduce, CI is stable
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is printed as is
)


async def _seed(database_url: str) -> None:
    """A wallet with ETH and USDC and two days of hourly snapshots for the fuzz user."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    async with open_engine(database_url, pool_size=1) as engine, engine.begin() as db:
        user_id = await accounts.ensure_user(db, subject=SUBJECT)
        wallet = await accounts.add_wallet(
            db, user_id=user_id, chain_id=1, address="0x" + "ab" * 20, label="fuzz", max_wallets=10
        )

        def holding(symbol: str, contract: str, amount: int, decimals: int, usd: str) -> Holding:
            kind = AssetKind.NATIVE if contract == "native" else AssetKind.ERC20
            price = Price(symbol, Decimal(usd), "chainlink", now)
            return Holding(
                1, wallet.address, symbol, contract, kind, Category.WALLET, decimals, amount, price
            )

        await replace_wallet_holdings(
            db,
            user_id=user_id,
            wallet_id=wallet.id,
            chain="ethereum",
            observed_at=now,
            holdings=[
                holding("ETH", "native", 3 * 10**18, 18, "2000"),
                holding("USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 10**9, 6, "1"),
            ],
        )
        await write_snapshots(
            db,
            [
                Snapshot(user_id, now - timedelta(hours=h), Decimal(7000 - 3 * h))
                for h in range(1, 49)
            ],
        )


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded `chainfolio serve` with rate limits off (the fuzzers send many requests)."""
    # the seed runs on its own loop in a thread: the test session's loop is not ours to use
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _seed(database_url)).result()  # re-raises a failed seed
    env = {"CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "0", "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0"}
    with serving(database_url, tmp_path_factory.mktemp("fuzz"), **env) as (base, _proc, _log):
        yield base


def _check(case: Case, response: requests.Response, *, graphql: bool) -> None:
    where = f"{case.method} {case.formatted_path} {case.query or ''} {case.body!r:.300}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text:.500}"
    content_type = response.headers.get("content-type") or ""
    if isinstance(content_type, list):  # schemathesis' responses hold lists of values
        content_type = ",".join(content_type)
    if response.status_code < 400 and content_type.startswith("text/csv"):
        # the CSV exports: a header row, then rows
        assert response.text.splitlines()[0].count(",") >= 1, f"{where}: {response.text:.200}"
        return
    body: Any = response.json()
    if graphql:
        for error in body.get("errors") or []:
            assert isinstance(error.get("extensions", {}).get("code"), str), f"{where}: {error}"
        return
    if response.status_code >= 400:
        assert body.get("success") is False, f"{where}: {body}"
        assert set(body["error"]) == {"code", "message"}, f"{where}: {body}"
        assert isinstance(body["error"]["code"], str), f"{where}: {body}"
    elif case.path.startswith("/v1/"):  # health answers are plain {"status": …}
        assert body.get("success") is True, f"{where}: {body}"


def test_rest_routes_never_fail_and_errors_use_the_envelope(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/portfolio", "/v1/wallets/{wallet_id}"}
    headers = bearer(SUBJECT)
    with requests.Session() as session:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @FUZZ
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case: Case) -> None:
                    response = case.call(
                        base_url=server, session=session, headers=headers, timeout=30
                    )
                    _check(case, response, graphql=False)

                # an operation without parameters or body has nothing to make invalid
                with contextlib.suppress(Unsatisfiable):
                    run()


# Our custom scalars travel as strings: fuzz them with well-formed and arbitrary text.
# Numbers an attacker sends: NaN, infinities, exponents past Decimal's and PostgreSQL's range.
EXTREME_NUMBERS = st.sampled_from(
    [
        "NaN",
        "-Infinity",
        "sNaN",
        "1e400",
        "1e-1000000",
        "9e999999999",
        "1e99999999999999999999",
        "-0",
        "0." + "0" * 5000 + "1",
        "1" * 400,
    ]
)
# Text with what PostgreSQL or an encoder refuses: NUL, other control characters, lone
# surrogates (as JSON escapes), and lengths past every cap.
HOSTILE_TEXT = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=5),
    st.sampled_from(["a\x00b", "\x00", "\ud800", "x" * 10_000, "\u202e", "\x1b[2J"]),
    st.text(max_size=30),
)
NUMBER_INPUT = st.one_of(
    EXTREME_NUMBERS, st.decimals(allow_nan=True, allow_infinity=True).map(str), HOSTILE_TEXT
)

schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.text(max_size=20),
        EXTREME_NUMBERS,
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=20)).map(nodes.String),
)


def test_graphql_never_fails_and_errors_carry_codes(server: str) -> None:
    headers = bearer(SUBJECT)
    schema = schemathesis.graphql.from_url(f"{server}/graphql", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 5
    with requests.Session() as session:
        for operation in operations:

            @FUZZ
            @given(case=operation.as_strategy())
            def run(case: Case) -> None:
                response = case.call(base_url=server, session=session, headers=headers, timeout=30)
                _check(case, response, graphql=True)

            run()


TARGETS_BODY = st.fixed_dictionaries(
    {
        "targets": st.lists(
            st.fixed_dictionaries(
                {
                    "key": HOSTILE_TEXT,
                    "weight": NUMBER_INPUT,
                    "members": st.lists(HOSTILE_TEXT, max_size=3),
                }
            ),
            max_size=3,
        ),
        "band": NUMBER_INPUT,
        "minTradeUsd": NUMBER_INPUT,
    }
)
WALLET_BODY = st.fixed_dictionaries(
    {
        "chainId": st.one_of(st.integers(), st.just(2**70)),
        "address": st.one_of(HOSTILE_TEXT, st.just("0x" + "12" * 20)),
        "label": HOSTILE_TEXT,
    }
)
SET_TARGETS = """mutation($t: [TargetInput!]!, $b: Decimal!, $m: Decimal!) {
  setAllocationTargets(targets: $t, band: $b, minTradeUsd: $m) { key weight } }"""
ADD_WALLET = """mutation($c: Int!, $a: String!, $l: String) {
  addWallet(chainId: $c, address: $a, label: $l) { id label } }"""


def test_hostile_inputs_never_fail(server: str) -> None:
    """NUL and control characters, extreme decimals, NaN/Infinity and deep JSON, into every
    input the API stores, over REST and GraphQL: refused with a code, never a 5xx; and every
    read of what was stored still answers."""
    headers = bearer(SUBJECT)
    with requests.Session() as session:

        def call(method: str, path: str, body: Any) -> requests.Response:
            response = session.request(
                method, f"{server}{path}", json=body, headers=headers, timeout=30
            )
            where = f"{method} {path} {str(body)[:300]!r}"
            assert response.status_code < 500, (
                f"{where} -> {response.status_code}: {response.text:.500}"
            )
            answer = response.json()
            if path == "/graphql":
                for error in answer.get("errors") or []:
                    assert error["extensions"]["code"] != "INTERNAL", f"{where}: {error}"
            elif response.status_code >= 400:
                assert answer["success"] is False, f"{where}: {answer}"
            return response

        @FUZZ
        @given(targets=TARGETS_BODY, wallet=WALLET_BODY)
        def run(targets: dict[str, Any], wallet: dict[str, Any]) -> None:
            call("PUT", "/v1/portfolio/targets", targets)
            call("POST", "/v1/wallets", wallet)
            variables = {"t": targets["targets"], "b": targets["band"], "m": targets["minTradeUsd"]}
            call("POST", "/graphql", {"query": SET_TARGETS, "variables": variables})
            wallet_vars = {"c": wallet["chainId"], "a": wallet["address"], "l": wallet["label"]}
            call("POST", "/graphql", {"query": ADD_WALLET, "variables": wallet_vars})
            for path in ("/v1/portfolio/targets", "/v1/portfolio/rebalance", "/v1/wallets"):
                call("GET", path, None)

        run()
        for levels in (40, 1_000, 5_000):  # past our cap of 32, orjson's 1,024, Python's stack
            nested = b"[" * levels + b"]" * levels
            response = session.post(
                f"{server}/graphql",
                data=b'{"query": "{ __typename }", "variables": {"x": ' + nested + b"}}",
                headers={**headers, "Content-Type": "application/json"},
                timeout=30,
            )
            assert response.status_code == 400, (levels, response.status_code, response.text[:200])
            rest = session.put(
                f"{server}/v1/portfolio/targets",
                data=b'{"targets": ' + b"[" * levels + b"]" * levels + b"}",
                headers={**headers, "Content-Type": "application/json"},
                timeout=30,
            )
            assert rest.status_code == 400, (levels, rest.status_code, rest.text[:200])
