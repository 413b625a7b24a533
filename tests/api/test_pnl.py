"""P&L through the API: hand-computed histories, a random history against the lot-loop
reference, display currencies converted at each figure's own time, and the CSV exports."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus
from chainfolio.core.domain import AssetKind, Category, Holding, Price
from chainfolio.devnet import Devnet, set_price, set_time, transfer_native
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import open_chains
from chainfolio.resolvers.pnl import resolve_pnl, transaction_rows
from chainfolio.storage.accounts import Wallet, add_wallet, ensure_user
from chainfolio.storage.holdings import replace_wallet_holdings
from chainfolio.storage.movements import AssetMovement, user_movements, write_movements
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from chainfolio.worker.cycle import Worker
from tests.analytics.costbasis_reference import Trade, reference
from tests.api.conftest import Auth
from tests.fixtures.devnet import own_time
from tests.worker.test_flows import Clock, user_with_wallets

T0 = datetime(2026, 6, 1, tzinfo=UTC)
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
E18 = 10**18


async def _user(engine: AsyncEngine, wallets: int = 1) -> tuple[str, uuid.UUID, list[Wallet]]:
    subject = f"pnl-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        rows = [
            await add_wallet(
                db,
                user_id=user_id,
                chain_id=1,
                address="0x" + uuid.uuid4().hex[:20] + f"{i:020x}",
                label=None,
                max_wallets=10,
            )
            for i in range(wallets)
        ]
    return subject, user_id, rows


def _move(
    user_id: uuid.UUID,
    wallet: Wallet,
    hour: int,
    amount: int,
    price: str | None,
    *,
    kind: str = "external",
    symbol: str = "ETH",
    asset: str = "ETH",
    contract: str = "native",
    decimals: int = 18,
    tx: str | None = None,
    log_index: int = -1,
) -> AssetMovement:
    units = Decimal(abs(amount)).scaleb(-decimals)
    return AssetMovement(
        user_id=user_id,
        wallet_id=wallet.id,
        chain_id=1,
        block_number=100 + hour,
        time=T0 + timedelta(hours=hour),
        tx_hash=tx or f"0x{hour:064x}",
        log_index=log_index,
        contract=contract,
        symbol=symbol,
        asset=asset,
        decimals=decimals,
        amount=amount,
        price_usd=None if price is None else Decimal(price),
        value_usd=None if price is None else units * Decimal(price),
        kind=kind,
    )


def _usdc(
    user_id: uuid.UUID,
    wallet: Wallet,
    hour: int,
    amount: int,
    *,
    tx: str | None = None,
    log_index: int = -1,
) -> AssetMovement:
    return _move(
        user_id,
        wallet,
        hour,
        amount,
        "1",
        symbol="USDC",
        asset="USDC",
        contract=USDC,
        decimals=6,
        tx=tx,
        log_index=log_index,
    )


async def _hold(
    engine: AsyncEngine, user_id: uuid.UUID, wallet: Wallet, amount: int, usd: str, at: datetime
) -> None:
    async with engine.begin() as db:
        await replace_wallet_holdings(
            db,
            user_id=user_id,
            wallet_id=wallet.id,
            chain="ethereum",
            observed_at=at,
            holdings=[
                Holding(
                    chain_id=1,
                    wallet=wallet.address,
                    symbol="ETH",
                    contract="native",
                    kind=AssetKind.NATIVE,
                    category=Category.WALLET,
                    decimals=18,
                    amount=amount,
                    price=Price("ETH", Decimal(usd), "chainlink", at),
                )
            ],
        )


async def _store(engine: AsyncEngine, moves: list[AssetMovement]) -> None:
    async with engine.begin() as db:
        await write_movements(db, moves)


async def _gql(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> Any:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _buy_buy_sell(engine: AsyncEngine) -> tuple[str, uuid.UUID, list[Wallet]]:
    subject, user_id, wallets = await _user(engine)
    (w,) = wallets
    await _store(
        engine,
        [
            _move(user_id, w, 0, E18, "2000"),
            _move(user_id, w, 1, E18, "3000"),
            _move(user_id, w, 2, -E18, "4000"),
        ],
    )
    await _hold(engine, user_id, w, E18, "4000", T0 + timedelta(hours=3))
    return subject, user_id, wallets


async def test_buy_buy_sell_average_and_fifo(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject, _, _ = await _buy_buy_sell(engine)
    headers = auth(subject)
    average = (await client.get("/v1/portfolio/pnl", headers=headers)).json()["data"]
    assert (average["method"], average["realizedExact"], average["unrealizedExact"]) == (
        "average",
        "1500",
        "1500",
    )
    (eth,) = average["byAsset"]
    assert (eth["exact"]["costBasis"], eth["exact"]["averageCost"]) == ("2500", "2500")
    assert eth["unrealizedPercent"] == 60
    fifo = (await client.get("/v1/portfolio/pnl?method=fifo", headers=headers)).json()["data"]
    assert (fifo["realizedExact"], fifo["unrealizedExact"]) == ("2000", "1000")

    data = await _gql(
        client,
        headers,
        """{ pnl { realized unrealized byAsset { asset realized unrealized } }
             portfolio { holdings { costBasis averageCost unrealizedPnl unrealizedPnlPercent
                                    realizedPnl } }
             lots(asset: "ETH", method: "fifo") { quantity cost unitCost } }""",
    )
    assert data["pnl"] == {
        "realized": "1500",
        "unrealized": "1500",
        "byAsset": [{"asset": "ETH", "realized": "1500", "unrealized": "1500"}],
    }
    (holding,) = data["portfolio"]["holdings"]
    assert holding == {
        "costBasis": "2500",
        "averageCost": "2500",
        "unrealizedPnl": "1500",
        "unrealizedPnlPercent": "60",
        "realizedPnl": "1500",
    }
    assert data["lots"] == [{"quantity": "1", "cost": "3000", "unitCost": "3000"}]

    set_method = await _gql(client, headers, 'mutation { setCostBasisMethod(method: "fifo") }')
    assert set_method == {"setCostBasisMethod": "fifo"}
    saved = (await client.get("/v1/portfolio/pnl", headers=headers)).json()["data"]
    assert saved["method"] == "fifo"


async def test_partial_sells_and_a_period(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Any
) -> None:
    subject, user_id, (w,) = await _user(engine)
    await _store(
        engine,
        [
            _move(user_id, w, 0, 2 * E18, "2000"),
            _move(user_id, w, 1, -(E18 // 2), "4000"),  # +1,000
            _move(user_id, w, 2, -(E18 // 2), "5000"),  # +1,500
        ],
    )
    api_clock.now = T0 + timedelta(hours=2, minutes=30)
    headers = auth(subject)
    everything = (await client.get("/v1/portfolio/pnl", headers=headers)).json()["data"]
    assert everything["realizedExact"] == "2500"
    last_hour = (await client.get("/v1/portfolio/pnl?period=1h", headers=headers)).json()["data"]
    assert last_hour["realizedExact"] == "1500"


async def test_own_wallet_moves_wraps_and_swaps(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject, user_id, (a, b) = await _user(engine, wallets=2)
    move = "0x" + "ab" * 32
    swap = "0x" + "cd" * 32
    await _store(
        engine,
        [
            _move(user_id, a, 0, 2 * E18, "2000"),
            # 1 ETH to the user's other wallet: both sides are own moves
            _move(user_id, a, 1, -E18, "2500", kind="own", tx=move),
            _move(user_id, b, 1, E18, "2500", kind="own", tx=move),
            # b wraps it: ETH out to WETH (WETH is priced by ETH: one asset)
            _move(user_id, b, 2, -E18, "2600", kind="wrap"),
            # a swaps its last ETH for 3,000 USDC (USDC's own price would say 2,990)
            _move(user_id, a, 3, -E18, "3000", tx=swap),
            _usdc(user_id, a, 3, 2_990 * 10**6, tx=swap, log_index=7),
        ],
    )
    data = (await client.get("/v1/portfolio/pnl", headers=auth(subject))).json()["data"]
    by_asset = {r["asset"]: r for r in data["byAsset"]}
    assert by_asset["ETH"]["exact"]["realized"] == "1000"  # 3,000 - 2,000: moves kept basis
    lots = await _gql(client, auth(subject), '{ lots(asset: "USDC") { quantity cost } }')
    assert lots["lots"] == [{"quantity": "2990", "cost": "3000"}]  # acquired at the ETH's value
    eth_lots = await _gql(client, auth(subject), '{ lots(asset: "ETH") { quantity cost } }')
    assert eth_lots["lots"] == [{"quantity": "1", "cost": "2000"}]  # the wrapped one, basis kept


async def test_an_unvalued_flow_is_counted_and_flagged(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject, user_id, (w,) = await _user(engine)
    await _store(
        engine,
        [
            _move(user_id, w, 0, E18, "2000"),
            _move(user_id, w, 1, E18, None),  # nobody priced it
            _move(user_id, w, 2, -E18, "4000"),
        ],
    )
    await _hold(engine, user_id, w, E18, "4000", T0 + timedelta(hours=3))
    data = (await client.get("/v1/portfolio/pnl", headers=auth(subject))).json()["data"]
    assert (data["unvalued"], data["complete"]) == (1, False)
    # average cost: half the pool has a known cost, so half the sale's gain is known
    assert data["realizedExact"] == "1000"


async def test_bad_input_answers_with_codes(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth(f"pnl-{uuid.uuid4().hex[:8]}")
    for url, code in (
        ("/v1/portfolio/pnl?currency=XYZ", "INVALID_CURRENCY"),
        ("/v1/portfolio/pnl?method=lifo", "INVALID_METHOD"),
        ("/v1/portfolio/pnl?period=7x", "INVALID_PERIOD"),
        ("/v1/portfolio/transactions.csv?currency=XYZ", "INVALID_CURRENCY"),
    ):
        response = await client.get(url, headers=headers)
        assert response.status_code == 400, url
        assert response.json()["error"]["code"] == code
    body = (
        await client.post(
            "/graphql", json={"query": '{ pnl(currency: "XYZ") { realized } }'}, headers=headers
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURRENCY"


async def test_csv_exports(client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine) -> None:
    subject, _, (w,) = await _buy_buy_sell(engine)
    response = await client.get("/v1/portfolio/transactions.csv", headers=auth(subject))
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["kind"], r["amount"], r["value"], r["cost_basis"], r["gain"]) for r in rows] == [
        ("acquisition", "1", "2000", "", ""),
        ("acquisition", "1", "3000", "", ""),
        ("disposal", "-1", "4000", "2500", "1500"),
    ]
    assert rows[0]["date"] == "2026-06-01T00:00:00Z"
    assert rows[0]["wallet"] == w.address
    pnl = await client.get("/v1/portfolio/pnl.csv?method=fifo", headers=auth(subject))
    (row,) = csv.DictReader(io.StringIO(pnl.text))
    assert (row["asset"], row["realized"], row["cost_basis"], row["method"]) == (
        "ETH",
        "2000",
        "3000",
        "fifo",
    )


# --- currencies -----------------------------------------------------------------------------


async def test_eur_series_is_the_usd_series_over_the_feed_at_each_point(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Any
) -> None:
    subject, user_id, _ = await _user(engine)
    now = api_clock.now.replace(minute=0, second=0, microsecond=0)
    hours = range(1, 13)
    rates = {h: Decimal("1.05") + Decimal(h) / 100 for h in hours}  # USD per EUR, moving
    async with engine.begin() as db:
        await write_snapshots(
            db,
            [Snapshot(user_id, now - timedelta(hours=h), Decimal(10_000 + 37 * h)) for h in hours],
        )
        await write_prices(
            db,
            [
                PricePoint(now - timedelta(hours=h), "EUR", rates[h], "chainlink:test")
                for h in hours
            ],
        )
    params = {"period": "24h", "interval": "1h"}
    usd = (await client.get("/v1/portfolio/history", params=params, headers=auth(subject))).json()
    eur = (
        await client.get(
            "/v1/portfolio/history", params={**params, "currency": "EUR"}, headers=auth(subject)
        )
    ).json()
    assert len(usd["data"]) == len(eur["data"]) == 12
    for u, e in zip(usd["data"], eur["data"], strict=True):
        hour = int((now - datetime.fromisoformat(u["timestamp"])).total_seconds() // 3600)
        assert e["value"] == pytest.approx(float(Decimal(str(u["value"])) / rates[hour]), rel=1e-12)
    data = await _gql(
        client,
        auth(subject),
        '{ usd: history(period: "24h", interval: "1h") { values } '
        'eur: history(period: "24h", interval: "1h", currency: "EUR") { values timestamps } }',
    )
    for u, e, t in zip(
        data["usd"]["values"], data["eur"]["values"], data["eur"]["timestamps"], strict=True
    ):
        hour = int((now - datetime.fromisoformat(t.replace("Z", "+00:00"))).total_seconds() // 3600)
        assert Decimal(e) == Decimal(u) / rates[hour]  # exact: the same division


async def test_pnl_in_eur_uses_the_rate_at_each_movement(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject, user_id, (w,) = await _user(engine)
    await _store(engine, [_move(user_id, w, 0, E18, "2000"), _move(user_id, w, 5, -E18, "3000")])
    async with engine.begin() as db:
        await write_prices(
            db,
            [
                PricePoint(T0, "EUR", Decimal("1.25"), "chainlink:test"),  # 1,600 EUR paid
                PricePoint(T0 + timedelta(hours=5), "EUR", Decimal("1.5"), "chainlink:test"),
            ],
        )
    data = (await client.get("/v1/portfolio/pnl?currency=EUR", headers=auth(subject))).json()
    # sold for 3,000 / 1.5 = 2,000 EUR, bought for 2,000 / 1.25 = 1,600 EUR
    assert (data["data"]["currency"], data["data"]["realizedExact"]) == ("EUR", "400")
    missing = (await client.get("/v1/portfolio/pnl?currency=GBP", headers=auth(subject))).json()
    assert missing["data"]["unvalued"] == 2  # no GBP rate stored: unknown, never zero
    assert missing["data"]["realizedExact"] == "0"
    assert missing["data"]["complete"] is False


# --- a random history against the reference --------------------------------------------------

trades = st.lists(
    st.tuples(
        st.sampled_from(["ETH", "BTC"]),
        st.sampled_from([1, 1, -1]),
        st.integers(1, 5 * 10**6),  # micro-units
        st.one_of(st.none(), st.integers(1, 10**8)),  # value in cents
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=trades, method=st.sampled_from(["average", "fifo"]))
async def test_random_history_matches_the_lot_loop(
    client: httpx.AsyncClient,
    auth: Auth,
    engine: AsyncEngine,
    history: list[tuple[str, int, int, int | None]],
    method: str,
) -> None:
    subject, user_id, (w,) = await _user(engine)
    moves = []
    for i, (asset, sign, micro, cents) in enumerate(history):
        units = Decimal(micro).scaleb(-6)
        value = None if cents is None else Decimal(cents).scaleb(-2)
        moves.append(
            AssetMovement(
                user_id=user_id,
                wallet_id=w.id,
                chain_id=1,
                block_number=i,
                time=T0 + timedelta(minutes=i),
                tx_hash=f"0x{i:064x}",
                log_index=-1,
                contract="native" if asset == "ETH" else "0x" + "bb" * 20,
                symbol=asset,
                asset=asset,
                decimals=18,
                amount=sign * micro * 10**12,
                price_usd=None if value is None else value / units,
                value_usd=value,
                kind="external",
            )
        )
    await _store(engine, moves)
    data = (await client.get(f"/v1/portfolio/pnl?method={method}", headers=auth(subject))).json()[
        "data"
    ]
    expected = reference(
        [
            Trade(a, Fraction(s * m, 10**6), None if c is None else Fraction(c, 100))
            for a, s, m, c in history
        ],
        method,
    )
    got = {r["asset"]: Fraction(Decimal(r["exact"]["realized"])) for r in data["byAsset"]}
    for asset, book in expected.items():
        assert abs(got[asset] - book.realized) <= Fraction(1, 10**40), asset


# --- end to end: the worker records movements on the devnet -----------------------------------


async def test_worker_records_movements_and_fx_rates(
    engine: AsyncEngine, restore_devnet: Devnet
) -> None:
    chain = restore_devnet.chain(1)
    tracked, own, outsider = chain.wallets[13], chain.wallets[14], chain.wallets[15]
    user_id = await user_with_wallets(engine, 1, tracked, own)
    start = own_time(chain, days=600)
    clock = Clock(start)
    set_price(chain, "ETH", 2_000 * 10**8)
    async with (
        open_chains(config_from_devnet([chain])) as chains,
        Bus("memory://") as bus,
    ):
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await worker.refresh()  # first sight: opening balances at 2,000

        clock.now = start + timedelta(minutes=10)
        set_time(chain, int(clock.now.timestamp()))
        set_price(chain, "ETH", 3_000 * 10**8)
        transfer_native(chain, sender=outsider, to=tracked, amount=10**18)  # bought at 3,000
        transfer_native(chain, sender=tracked, to=own, amount=10**18 // 2)  # own: basis kept
        await worker.refresh()

        clock.now = start + timedelta(minutes=20)
        set_time(chain, int(clock.now.timestamp()))
        set_price(chain, "ETH", 4_000 * 10**8)
        set_price(chain, "EUR", 125_000_000)  # 1.25 USD per EUR
        transfer_native(chain, sender=tracked, to=outsider, amount=10**18)  # sold at 4,000
        await worker.refresh()

    async with engine.connect() as db:
        moves = [m for m in await user_movements(db, user_id=user_id) if m.asset == "ETH"]
        eur = await db.scalar(
            text("SELECT price FROM prices WHERE symbol = 'EUR' AND time = :t"), {"t": clock.now}
        )
        usd = await resolve_pnl(db, user_id=user_id, period="all", currency="USD", now=clock.now)
        in_eur = await resolve_pnl(db, user_id=user_id, period="all", currency="EUR", now=clock.now)
    assert eur == Decimal("1.25")
    transfers = [(m.kind, m.amount, m.value_usd) for m in moves if m.kind != "opening"]
    assert sorted(transfers) == sorted(
        [
            ("external", 10**18, 3_000),
            ("own", -(10**18) // 2, 1_500),
            ("own", 10**18 // 2, 1_500),
            ("external", -(10**18), 4_000),
        ]
    )
    openings = [m for m in moves if m.kind == "opening"]
    assert {m.wallet_id for m in openings} == {m.wallet_id for m in moves}
    assert all(m.price_usd == 2_000 and m.time == start for m in openings)

    def expected(rates: dict[datetime, Fraction]) -> Fraction:
        trades = [
            Trade("ETH", Fraction(m.quantity), Fraction(m.value_usd) / rates[m.time])
            for m in moves
            if m.kind in {"external", "opening"} and m.value_usd is not None
        ]
        return reference(trades, "average")["ETH"].realized

    eth = {a.asset: a for a in usd.by_asset}["ETH"]
    times = {m.time for m in moves}
    # 80 significant digits: the average cost of a pool of opening balances divides
    assert abs(Fraction(eth.realized) - expected(dict.fromkeys(times, Fraction(1)))) < Fraction(
        1, 10**40
    )
    eth_eur = {a.asset: a for a in in_eur.by_asset}["ETH"]
    rates = {t: Fraction(108, 100) if t < clock.now else Fraction(125, 100) for t in times}
    assert abs(Fraction(eth_eur.realized) - expected(rates)) < Fraction(1, 10**20)


async def test_the_csv_stream_keeps_a_swap_whole_across_batches(engine: AsyncEngine) -> None:
    _, user_id, (w,) = await _user(engine)
    swap = "0x" + "ef" * 32
    await _store(
        engine,
        [
            _move(user_id, w, 0, E18, "2000"),
            _move(user_id, w, 1, -E18, "3000", tx=swap),
            _usdc(user_id, w, 1, 2_990 * 10**6, tx=swap, log_index=3),
            _usdc(user_id, w, 2, -1_000 * 10**6),
        ],
    )
    async with engine.connect() as db:
        batches = [
            rows
            async for rows in transaction_rows(
                db, user_id=user_id, currency="USD", chain_names={1: "ethereum"}, now=T0, batch=1
            )
        ]
    rows = [row for batch in batches for row in batch]
    assert len(batches) > 1  # streamed
    kinds = [(r[4], r[9], r[11], r[12]) for r in rows]
    assert kinds[:3] == [
        ("ETH", "acquisition", "", ""),
        ("ETH", "swap_out", "2000", "1000"),  # the swap was recognised across batches
        ("USDC", "acquisition", "", ""),
    ]
    # 1,000 of the 2,990 USDC that cost 3,000 (the ETH given up), sold for 1,000
    asset, kind, cost_text, gain_text = kinds[3]
    cost = Decimal(cost_text)
    assert (asset, kind) == ("USDC", "disposal")
    assert abs(Fraction(cost) - Fraction(3000 * 1000, 2990)) < Fraction(1, 10**60)
    assert Fraction(Decimal(gain_text)) == 1000 - Fraction(cost)
