"""Performance through the API on seeded snapshots and cash flows, checked by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.core.domain import AssetKind, Category, Holding, Price
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.flows import CashFlow, write_cash_flows
from chainfolio.storage.holdings import replace_wallet_holdings
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from tests.api.conftest import Auth
from tests.worker.test_flows import Clock

DAY = (datetime.now(UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


async def _seed(engine: AsyncEngine) -> str:
    """1000 -> 1100 (+10 %), then a 500 deposit valued at once (1600), then +10 % (1760)."""
    subject = f"perf-{uuid.uuid4().hex[:6]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        values = [1000, 1100, 1600, 1760]
        await write_snapshots(
            db,
            [
                Snapshot(
                    user_id, DAY + timedelta(hours=4 * i), Decimal(v), {}, {"ETH": Decimal(v)}, {}
                )
                for i, v in enumerate(values)
            ],
        )
        await write_cash_flows(
            db,
            [
                CashFlow(
                    user_id,
                    1,
                    DAY + timedelta(hours=8) - timedelta(minutes=1),
                    "ETH",
                    "native",
                    500 * 10**18 // 3000,
                    18,
                    Decimal(500),
                    "0x" + "ab" * 32,
                    0,
                )
            ],
        )
    return subject


async def test_deposit_is_not_a_gain(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject = await _seed(engine)
    response = await client.get(
        "/v1/portfolio/performance", params={"period": "30d"}, headers=auth(subject)
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    # the seed's fields, all present
    for key in (
        "period",
        "startValue",
        "endValue",
        "absoluteGain",
        "percentageGain",
        "roi",
        "sharpeRatio",
    ):
        assert key in data
    assert data["period"] == "30d"
    assert data["startValue"] == 1000
    assert data["endValue"] == 1760
    assert data["netFlows"] == 500
    assert data["absoluteGain"] == pytest.approx(260)  # 1760 - 1000 - 500: the deposit is no gain
    assert data["twr"] == pytest.approx((1.1 * 1.0 * 1.1 - 1) * 100, abs=1e-6)
    assert data["maxDrawdown"] == 0

    graphql = await client.post(
        "/graphql",
        json={"query": '{ performance(period: "30d") { absoluteGain twr netFlows roi } }'},
        headers=auth(subject),
    )
    perf = graphql.json()["data"]["performance"]
    assert perf["absoluteGain"] == data["absoluteGain"]
    assert perf["twr"] == data["twr"]
    assert perf["roi"] == data["roi"]


async def test_no_history_is_a_clear_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get(
        "/v1/portfolio/performance",
        params={"period": "7d"},
        headers=auth(f"empty-{uuid.uuid4().hex[:6]}"),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INSUFFICIENT_DATA"
    bad = await client.get(
        "/v1/portfolio/performance", params={"period": "7x"}, headers=auth("someone")
    )
    assert bad.status_code == 400


# --- as-of starts, flows at their own time, the live end, degenerate data (issues 11, 22) ---

HOUR = timedelta(hours=1)


async def hold(
    db: AsyncConnection,
    user_id: uuid.UUID,
    *,
    at: datetime,
    assets: list[tuple[str, Decimal, Decimal]],
) -> None:
    """A new wallet of the user holding (symbol, whole units, USD price) as of `at`: the live
    holdings (ETH native, others as 18-decimal tokens)."""
    wallet = await add_wallet(
        db,
        user_id=user_id,
        chain_id=1,
        address="0x" + uuid.uuid4().hex[:20] * 2,
        label=None,
        max_wallets=10,
    )
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
                symbol=symbol,
                contract="native" if symbol == "ETH" else f"0x{symbol.lower():0>40}",
                kind=AssetKind.NATIVE if symbol == "ETH" else AssetKind.ERC20,
                category=Category.WALLET,
                decimals=18,
                amount=int(units * 10**18),
                price=Price(symbol, price, "test", at),
                block_number=1,
            )
            for symbol, units, price in assets
            if units
        ],
    )


async def _user(
    engine: AsyncEngine,
    *,
    snapshots: list[tuple[datetime, str]],
    flows: list[tuple[datetime, str]] = (),  # type: ignore[assignment]
    eth_held: int | None = None,
    eth_price: str = "2000",
    observed_at: datetime | None = None,
) -> str:
    """A user with snapshots (time, exact value), ETH flows (time, USD) and, optionally,
    `eth_held` whole ETH as current holdings priced at `eth_price`."""
    subject = f"perf-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        if snapshots:
            await write_snapshots(
                db,
                [
                    Snapshot(user_id, t, Decimal(v), {}, {"ETH": Decimal(v)}, {})
                    for t, v in snapshots
                ],
            )
        await write_cash_flows(
            db,
            [
                CashFlow(user_id, 1, t, "ETH", "native", 1, 18, Decimal(usd), f"0x{i:064x}", i)
                for i, (t, usd) in enumerate(flows)
            ],
        )
        if eth_held is not None:
            await hold(
                db,
                user_id,
                at=observed_at or datetime.now(UTC),
                assets=[("ETH", Decimal(eth_held), Decimal(eth_price))],
            )
    return subject


async def _performance(
    client: httpx.AsyncClient, auth: Auth, subject: str, **params: str
) -> httpx.Response:
    return await client.get("/v1/portfolio/performance", params=params, headers=auth(subject))


async def test_a_flow_counts_at_its_own_time_whatever_the_period(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Clock
) -> None:
    """Issue 11's case: 90d used to chain daily buckets and date the deposit at the end of its
    day (20 %); every period covering the same valuations gives 10 %."""
    today = api_clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    api_clock.now = today + timedelta(hours=6)
    day = timedelta(days=1)
    snapshots = [
        (today - 3 * day - HOUR, "100"),
        (today - 2 * day + 9 * HOUR, "100"),
        (today - 2 * day + 10 * HOUR, "200"),
        (today - day - HOUR, "220"),
        (today - HOUR, "220"),
    ]
    subject = await _user(engine, snapshots=snapshots, flows=[(today - 2 * day + 10 * HOUR, "100")])
    for period in ("7d", "30d", "90d", "1y", "all"):
        data = (await _performance(client, auth, subject, period=period)).json()["data"]
        assert data["twr"] == pytest.approx(10.0, abs=1e-9), period
        assert data["absoluteGainExact"] == "20", period
        assert data["startValueExact"] == "100", period
        assert data["valuations"] == 5, period


async def test_the_period_starts_as_of_its_start_and_1h_works_on_hourly_snapshots(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Clock
) -> None:
    hour = api_clock.now.replace(minute=0, second=0, microsecond=0)
    api_clock.now = hour + timedelta(minutes=23)
    # hourly :00 snapshots for 30 hours, value 1000 + h
    snapshots = [(hour - h * HOUR, str(1000 + 30 - h)) for h in range(30, -1, -1)]
    subject = await _user(engine, snapshots=snapshots)
    day = (await _performance(client, auth, subject, period="24h")).json()["data"]
    # 24 h before 12:23 is 12:23 yesterday: the value then is the 12:00 snapshot's
    assert datetime.fromisoformat(day["start"]) == hour - 24 * HOUR
    assert day["startValueExact"] == str(1000 + 30 - 24)
    assert day["endValueExact"] == "1030"
    assert day["valuations"] == 25
    assert day["startedLater"] is False
    assert day["endIsLive"] is False
    assert day["twr"] == pytest.approx((1030 / 1006 - 1) * 100, abs=1e-4)
    one = (await _performance(client, auth, subject, period="1h")).json()["data"]
    assert datetime.fromisoformat(one["start"]) == hour - HOUR
    assert one["twr"] == pytest.approx((1030 / 1029 - 1) * 100, abs=1e-4)
    assert one["volatility"] is None
    assert "complete return interval" in one["nullReasons"]["volatility"]
    # all: the oldest snapshot, not the last one of its week
    every = (await _performance(client, auth, subject, period="all")).json()["data"]
    assert every["startedLater"] is True
    assert every["startValueExact"] == "1000"


async def test_performance_and_compare_end_at_the_live_valuation(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Clock
) -> None:
    """Issue 22: at 12:23 the answer ends at the live total (the dashboard's), not at 12:00."""
    hour = api_clock.now.replace(minute=0, second=0, microsecond=0)
    api_clock.now = hour + timedelta(minutes=23)
    snapshots = [(hour - h * HOUR, str(20_000 + 10 * h)) for h in range(48, -1, -1)]
    subject = await _user(
        engine, snapshots=snapshots, eth_held=11, eth_price="2000.5", observed_at=api_clock.now
    )
    symbol = f"XETH{uuid.uuid4().hex[:6].upper()}"
    async with engine.begin() as db:
        await write_prices(
            db,
            [PricePoint(hour - h * HOUR, symbol, Decimal(2000 + h), "test") for h in range(-1, 49)],
        )
    portfolio = (await client.get("/v1/portfolio", headers=auth(subject))).json()["data"]
    data = (await _performance(client, auth, subject, period="24h")).json()["data"]
    assert data["endIsLive"] is True
    assert datetime.fromisoformat(data["end"]) == api_clock.now
    assert data["endValueExact"] == "22005.5"
    assert data["endValue"] == portfolio["totalValue"]
    assert data["twr"] == pytest.approx((22_005.5 / 20_240 - 1) * 100, abs=1e-4)
    graphql = await client.post(
        "/graphql",
        json={
            "query": '{ portfolio { totalValue } performance(period: "24h") { twr endValueExact '
            "endIsLive } "
            f'compare(period: "24h", interval: "1h", benchmark: "{symbol}") {{ portfolioReturn '
            "endIsLive } }"
        },
        headers=auth(subject),
    )
    body = graphql.json()["data"]
    assert body["performance"]["endValueExact"] == "22005.5"
    # the dashboard's total, to the cent and beyond
    assert Decimal(body["portfolio"]["totalValue"]) == Decimal(data["endValueExact"])
    assert body["compare"]["endIsLive"] is True
    assert body["compare"]["portfolioReturn"] == pytest.approx(data["twr"], abs=1e-4)


async def test_one_valuation_gives_what_exists_none_is_a_422_counting_valuations(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Clock
) -> None:
    hour = api_clock.now.replace(minute=0, second=0, microsecond=0)
    subject = await _user(engine, snapshots=[(hour - 2 * HOUR, "1234.56")])
    data = (await _performance(client, auth, subject, period="24h")).json()["data"]
    assert (data["startValueExact"], data["endValueExact"]) == ("1234.56", "1234.56")
    assert data["absoluteGain"] == 0
    assert data["valuations"] == 1
    assert data["twr"] is None
    assert data["nullReasons"]["twr"] == "one valuation in the period: a return needs two"
    # a new user: holdings, no snapshot yet — the live valuation alone
    new = await _user(engine, snapshots=[], eth_held=2, observed_at=api_clock.now)
    live = (await _performance(client, auth, new, period="24h")).json()["data"]
    assert (live["valuations"], live["endIsLive"], live["endValueExact"]) == (1, True, "4000")
    nothing = await _performance(client, auth, await _user(engine, snapshots=[]), period="24h")
    assert nothing.status_code == 422
    error = nothing.json()["error"]
    assert error["code"] == "INSUFFICIENT_DATA"
    assert "0 valuations" in error["message"]


async def test_a_riskless_series_has_no_spread_and_no_minus_zero(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Clock
) -> None:
    """Issue 11: a steadily growing series showed volatility 0.0 and Sharpe 1.05e9."""
    hour = api_clock.now.replace(minute=0, second=0, microsecond=0)
    api_clock.now = hour + timedelta(minutes=23)
    value = Decimal(10_000)
    snapshots = []
    for h in range(7 * 24 + 2, -1, -1):
        snapshots.append((hour - h * HOUR, str(value)))
        value *= Decimal("1.0001")
    subject = await _user(engine, snapshots=snapshots)
    response = await _performance(client, auth, subject, period="7d")
    data = response.json()["data"]
    assert data["volatility"] == 0
    assert data["sharpeRatio"] is None
    assert data["sortinoRatio"] is None
    assert "do not vary" in data["nullReasons"]["sharpeRatio"]
    assert "-0.0" not in response.text
    assert ":-0," not in response.text
    flat = await _user(engine, snapshots=[(hour - h * HOUR, "500") for h in range(30)])
    flat_response = await _performance(client, auth, flat, period="24h")
    assert flat_response.json()["data"]["twr"] == 0
    assert "-0.0" not in flat_response.text
    assert ":-0," not in flat_response.text


async def test_mar_annualise_and_exact_money(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, api_clock: Clock
) -> None:
    hour = api_clock.now.replace(minute=0, second=0, microsecond=0)
    api_clock.now = hour + timedelta(minutes=23)
    rng = np.random.default_rng(11)
    values = 1000 * np.cumprod(1 + rng.normal(0.0002, 0.01, 7 * 24 + 3))
    snapshots = [
        (hour - h * HOUR, f"{v:.6f}")
        for h, v in zip(range(7 * 24 + 2, -1, -1), values, strict=True)
    ]
    deposit = (hour - 30 * HOUR - timedelta(minutes=7), "0.1")
    withdrawal = (hour - 20 * HOUR + timedelta(minutes=3), "-0.2")
    subject = await _user(engine, snapshots=snapshots, flows=[deposit, withdrawal])
    plain_answer = (await _performance(client, auth, subject, period="7d")).json()["data"]
    assert plain_answer["twrAnnualised"] is None
    assert "annualise" in plain_answer["nullReasons"]["twrAnnualised"]
    start = Decimal(plain_answer["startValueExact"])
    end = Decimal(plain_answer["endValueExact"])
    assert plain_answer["netFlowsExact"] == "-0.1"
    assert Decimal(plain_answer["absoluteGainExact"]) == end - start - Decimal("-0.1")
    [asset] = plain_answer["attribution"]
    assert Decimal(asset["gainExact"]) == Decimal(plain_answer["absoluteGainExact"])
    annual = (await _performance(client, auth, subject, period="7d", annualise="true")).json()
    assert annual["data"]["twrAnnualised"] is not None
    high = (await _performance(client, auth, subject, period="7d", mar="0.5")).json()["data"]
    assert high["sortinoRatio"] < plain_answer["sortinoRatio"]
    for bad in ("-1", "x", "nan"):
        refused = await _performance(client, auth, subject, period="7d", mar=bad)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "INVALID_MAR"
