"""Portfolio-versus-benchmark comparison through GraphQL and REST, on seeded snapshots, cash
flows and prices, checked against an independent computation (plain loops, numpy.polyfit,
scipy.stats)."""

from __future__ import annotations

import itertools
import math
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import stats as scipy_stats
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.storage.accounts import ensure_user
from chainfolio.storage.flows import CashFlow, write_cash_flows
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from tests.api.conftest import Auth

DAYS = 15
DAY0 = (datetime.now(UTC) - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0)
TIMES = [DAY0 + timedelta(days=k) for k in range(DAYS)]
YEAR_S = 365 * 86_400.0

COMPARE_FIELDS = """benchmark period interval start end timestamps portfolio benchmarkValues
    portfolioReturn benchmarkReturn excessReturn beta alpha correlation trackingError
    informationRatio intervals"""


def _prices(seed: int, start: float) -> list[float]:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.04, DAYS - 1)
    return [round(start * math.exp(x), 2) for x in np.concatenate(([0.0], np.cumsum(steps)))]


async def _seed(
    engine: AsyncEngine,
    *,
    values: dict[int, float],
    flows: list[tuple[datetime, float]],
    prices: dict[str, dict[int, float]],
) -> str:
    subject = f"cmp-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        await write_snapshots(
            db,
            [
                Snapshot(user_id, TIMES[k], Decimal(repr(v)), {}, {}, {})
                for k, v in sorted(values.items())
            ],
        )
        await write_cash_flows(
            db,
            [
                CashFlow(
                    user_id, 1, t, "ETH", "native", 1, 18, Decimal(repr(usd)), f"0x{i:064x}", i
                )
                for i, (t, usd) in enumerate(flows)
            ],
        )
        await write_prices(
            db,
            [
                PricePoint(TIMES[k], symbol, Decimal(repr(p)), "test")
                for symbol, series in prices.items()
                for k, p in series.items()
            ],
        )
    return subject


async def _compare(
    client: httpx.AsyncClient, auth: Auth, subject: str, args: str
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": f"{{ compare({args}) {{ {COMPARE_FIELDS} }} }}"},
        headers=auth(subject),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _symbol(name: str) -> str:
    # Symbols unique to the test: the session database is shared by every test.
    return f"{name}{uuid.uuid4().hex[:6].upper()}"


def _index(returns: list[float]) -> list[float]:
    index = [1.0]
    for r in returns:
        index.append(index[-1] * (1 + r))
    return index


async def test_deposit_is_not_outperformance(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    """A portfolio that only holds the benchmark, with 5 ETH deposited on day 7, tracks it."""
    eth = _symbol("XETH")
    price = _prices(1, 2000.0)
    units = {k: 10 if k < 7 else 15 for k in range(DAYS)}
    values = {k: units[k] * price[k] for k in range(DAYS)}
    deposit = (TIMES[7] - timedelta(minutes=1), 5 * price[7])
    subject = await _seed(
        engine, values=values, flows=[deposit], prices={eth: dict(enumerate(price))}
    )
    body = await _compare(
        client, auth, subject, f'period: "30d", interval: "1d", benchmark: "{eth}"'
    )
    data = body["data"]["compare"]
    assert data["benchmark"] == eth
    assert data["intervals"] == DAYS - 1
    assert data["portfolio"] == pytest.approx(data["benchmarkValues"], abs=1e-6)
    assert data["benchmarkValues"][-1] == pytest.approx(100 * price[-1] / price[0], abs=1e-6)
    # The value grew by half again through the deposit; none of it is performance.
    assert values[DAYS - 1] / values[0] - 1 > 0.3 + price[-1] / price[0] - 1
    assert data["excessReturn"] == pytest.approx(0, abs=1e-4)
    assert data["portfolioReturn"] == pytest.approx(data["benchmarkReturn"], abs=1e-4)
    assert data["beta"] == pytest.approx(1, abs=1e-6)
    assert data["correlation"] == pytest.approx(1, abs=1e-6)
    assert data["alpha"] == pytest.approx(0, abs=1e-4)
    assert data["trackingError"] == 0
    assert data["informationRatio"] is None


def _expected(
    *,
    values: dict[int, float],
    flows: list[tuple[datetime, float]],
    bench: dict[int, float],
) -> dict[str, Any]:
    """The comparison worked out independently from textbook definitions: flows dated at the
    next valuation by a loop, unit values chained by hand, the benchmark priced as of each
    valuation (its last price within the lookback of one step plus a day), statistics over
    the one-day steps between valuations a day apart, beta by least squares (numpy.polyfit),
    correlation by scipy.stats.pearsonr, alpha compounded over 365 daily periods."""
    own_days = sorted(values)
    unit = {own_days[0]: 1.0}
    for a, b in itertools.pairwise(own_days):
        flow = sum(usd for t, usd in flows if TIMES[a] < t <= TIMES[b])
        unit[b] = unit[a] * (values[b] - flow) / values[a]

    def priced(day: int) -> float | None:
        for back in (day, day - 1):  # lookback: one day step + one day, end exclusive
            if back in bench:
                return bench[back]
        return None

    as_of = {k: priced(k) for k in own_days}
    axis = [k for k in own_days if as_of[k] is not None]
    axis = [k for k in own_days if axis[0] <= k <= axis[-1]]
    first, last = axis[0], axis[-1]
    steps = [(a, b) for a, b in itertools.pairwise(axis) if b - a == 1]
    r = [unit[b] / unit[a] - 1 for a, b in steps]
    m = [(as_of[b] or 0) / (as_of[a] or 1) - 1 for a, b in steps]
    per_year = 365.0
    beta = float(np.polyfit(m, r, 1)[0])
    alpha_daily = statistics.fmean(r) - beta * statistics.fmean(m)
    active = [x - y for x, y in zip(r, m, strict=True)]
    spread = statistics.stdev(active)
    own_total = unit[last] / unit[first] - 1
    bench_total = (as_of[last] or 0) / (as_of[first] or 1) - 1
    return {
        "days": axis,
        "portfolio": {k: 100 * unit[k] / unit[first] for k in axis},
        "benchmark": {k: 100 * (as_of[k] or 0) / (as_of[first] or 1) for k in axis},
        "portfolioReturn": 100 * own_total,
        "benchmarkReturn": 100 * bench_total,
        "excessReturn": 100 * (own_total - bench_total),
        "beta": beta,
        "alpha": 100 * ((1 + alpha_daily) ** per_year - 1),
        "correlation": float(scipy_stats.pearsonr(r, m).statistic),
        "trackingError": 100 * spread * math.sqrt(per_year),
        "informationRatio": statistics.fmean(active) / spread * math.sqrt(per_year),
        "intervals": len(steps),
    }


def _check(data: dict[str, Any], expected: dict[str, Any]) -> None:
    days = expected["days"]
    # GraphQL writes +00:00, REST a Z: both are the bucket starts.
    assert [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in data["timestamps"]] == [
        TIMES[k] for k in days
    ]
    for k, own, bench in zip(days, data["portfolio"], data["benchmarkValues"], strict=True):
        if k in expected["portfolio"]:
            assert own == pytest.approx(expected["portfolio"][k], abs=1e-6), k
        else:
            assert own is None, k
        if k in expected["benchmark"]:
            assert bench == pytest.approx(expected["benchmark"][k], abs=1e-6), k
        else:
            assert bench is None, k
    for key in ("portfolioReturn", "benchmarkReturn", "excessReturn", "alpha", "trackingError"):
        assert data[key] == pytest.approx(expected[key], abs=1e-4), key  # percent, 4 places
    for key in ("beta", "correlation", "informationRatio"):
        assert data[key] == pytest.approx(expected[key], abs=2e-6), key
    assert data["intervals"] == expected["intervals"]


async def test_statistics_with_flows_and_gaps(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    eth = _symbol("XETH")
    price = _prices(2, 2500.0)
    rng = np.random.default_rng(3)
    growth = np.cumprod(np.concatenate(([1.0], 1 + rng.normal(0.002, 0.03, DAYS - 1))))
    # Own path: 10,000 growing by `growth`, plus a 4,000 deposit before day 6 and a 2,500
    # withdrawal before day 11, each valued as it lands. No snapshot on day 4, no price on day 9.
    capital = [10_000.0 + (4_000 if k >= 6 else 0) - (2_500 if k >= 11 else 0) for k in range(DAYS)]
    values = {k: round(capital[k] * float(growth[k]), 2) for k in range(DAYS) if k != 4}
    flows = [
        (TIMES[6] - timedelta(hours=2), round(4_000 * float(growth[6]), 2)),
        (TIMES[11] - timedelta(hours=3), round(-2_500 * float(growth[11]), 2)),
    ]
    bench = {k: p for k, p in enumerate(price) if k != 9}
    subject = await _seed(engine, values=values, flows=flows, prices={eth: bench})
    expected = _expected(values=values, flows=flows, bench=bench)

    body = await _compare(
        client, auth, subject, f'period: "30d", interval: "1d", benchmark: "{eth.lower()}"'
    )
    data = body["data"]["compare"]
    assert data["benchmark"] == eth  # found as stored, whatever the case asked
    assert data["period"] == "30d"
    assert data["interval"] == "1d"
    _check(data, expected)
    # The flows are neutral: the growth index equals the unit growth (4 and 9 excepted).
    assert data["portfolio"][-1] == pytest.approx(100 * growth[-1] / growth[0], abs=1e-3)

    rest = await client.get(
        "/v1/portfolio/compare",
        params={"period": "30d", "interval": "1d", "benchmark": eth},
        headers=auth(subject),
    )
    assert rest.status_code == 200, rest.text
    envelope = rest.json()
    assert envelope["success"] is True
    _check(envelope["data"], expected)

    # Without an interval the period's default (4h for 30 days) applies. The returns are linked
    # over every valuation whatever the interval, so they do not change; daily valuations hold
    # no complete 4-hour step, so there are no statistics, and the answer says why.
    default = (await _compare(client, auth, subject, f'benchmark: "{eth}"'))["data"]["compare"]
    assert default["interval"] == "4h"
    assert default["portfolioReturn"] == data["portfolioReturn"]
    assert default["benchmarkReturn"] == data["benchmarkReturn"]
    assert default["intervals"] == 0
    assert default["beta"] is None


async def test_basket_benchmark_rebalanced_each_interval(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    eth, btc = _symbol("XETH"), _symbol("XBTC")
    eth_price, btc_price = _prices(4, 3000.0), _prices(5, 60_000.0)
    values = {k: 1_000 + 10.0 * k + (k % 3) * 7.5 for k in range(DAYS)}
    btc_series = {k: p for k, p in enumerate(btc_price) if k != 2}  # no BTC price on day 2
    subject = await _seed(
        engine,
        values=values,
        flows=[],
        prices={eth: dict(enumerate(eth_price)), btc: btc_series},
    )
    # Each leg is priced as of each valuation (BTC on day 2: day 1's price); each step is
    # 60 % ETH's return + 40 % BTC's.
    btc_as_of = [btc_series.get(k, btc_series.get(k - 1, 0.0)) for k in range(DAYS)]
    index = _index(
        [
            0.6 * (eth_price[b] / eth_price[a] - 1) + 0.4 * (btc_as_of[b] / btc_as_of[a] - 1)
            for a, b in itertools.pairwise(range(DAYS))
        ]
    )
    basket = dict(enumerate(index))
    expected = _expected(values=values, flows=[], bench=basket)

    body = await _compare(
        client, auth, subject, f'period: "30d", interval: "1d", benchmark: "{eth}:60, {btc}:40"'
    )
    data = body["data"]["compare"]
    assert data["benchmark"] == f"{eth}:60,{btc}:40"
    _check(data, expected)
    # A basket held without rebalancing would differ: the test would notice a buy-and-hold.
    held = 0.6 * eth_price[-1] / eth_price[0] + 0.4 * btc_price[-1] / btc_price[0]
    assert abs(100 * held - data["benchmarkValues"][-1]) > 1e-3


@pytest.mark.parametrize(
    ("args", "code", "status"),
    [
        ('benchmark: "NOPE{tag}"', "UNKNOWN_BENCHMARK", 400),
        ('benchmark: "{eth}:60,{eth}:40"', "INVALID_BENCHMARK", 400),
        ('benchmark: "{eth}:60,NOPE:30"', "INVALID_BENCHMARK", 400),
        ('benchmark: "{eth}:sixty"', "INVALID_BENCHMARK", 400),
        ('benchmark: "wallets:cold"', "INVALID_BENCHMARK", 400),
        ('benchmark: "$$$"', "INVALID_BENCHMARK", 400),
        ('benchmark: "{eth}", period: "7x"', "INVALID_PERIOD", 400),
        ('benchmark: "{eth}", interval: "2h"', "INVALID_INTERVAL", 400),
        ('benchmark: "{eth}", period: "1y", interval: "5m"', "TOO_MANY_POINTS", 400),
        ('benchmark: "{eth}", period: "24h"', "INSUFFICIENT_DATA", 422),
    ],
)
async def test_errors(
    client: httpx.AsyncClient,
    auth: Auth,
    engine: AsyncEngine,
    args: str,
    code: str,
    status: int,
) -> None:
    eth = _symbol("XETH")
    subject = await _seed(
        engine,
        values={k: 100.0 + k for k in range(DAYS)},
        flows=[],
        prices={eth: {k: 10.0 + k for k in range(DAYS)}},
    )
    filled = args.format(eth=eth, tag=uuid.uuid4().hex[:6])
    body = await _compare(client, auth, subject, filled)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code
    params = {
        key.strip(): value.strip().strip('"')
        for key, value in (part.split(":", 1) for part in _split_args(filled))
    }
    response = await client.get("/v1/portfolio/compare", params=params, headers=auth(subject))
    assert response.status_code == status, response.text
    assert response.json() == {
        "success": False,
        "error": {"code": code, "message": response.json()["error"]["message"]},
    }


def _split_args(args: str) -> list[str]:
    """`benchmark: "A:1,B:2", period: "7x"` -> ['benchmark: "A:1,B:2"', 'period: "7x"']."""
    parts, current, quoted = [], "", False
    for char in args:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


async def test_no_history_is_insufficient_data(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    eth = _symbol("XETH")
    await _seed(engine, values={}, flows=[], prices={eth: {0: 1.0, 1: 2.0}})
    stranger = f"nohistory-{uuid.uuid4().hex[:6]}"
    response = await client.get(
        "/v1/portfolio/compare", params={"benchmark": eth}, headers=auth(stranger)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INSUFFICIENT_DATA"


async def test_history_older_than_retention_compares_daily(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    """Hourly snapshots and prices 100 days ago: the portfolio side comes from the daily rollup
    (last snapshot of each day), so the comparison is daily, and the benchmark is priced as of
    each of those snapshots (each day's last price)."""
    eth = _symbol("XETH")
    start = (datetime.now(UTC) - timedelta(days=100)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    hours = [start + timedelta(hours=h) for h in range(4 * 24)]
    rng = np.random.default_rng(6)
    price = [round(2000 * math.exp(x), 2) for x in np.cumsum(rng.normal(0, 0.01, len(hours)))]
    value = [2 * p + 1000 for p in price]
    subject = f"cmp-old-{uuid.uuid4().hex[:6]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        await write_snapshots(
            db,
            [
                Snapshot(user_id, t, Decimal(repr(v)), {}, {}, {})
                for t, v in zip(hours, value, strict=True)
            ],
        )
        await write_prices(
            db,
            [
                PricePoint(t, eth, Decimal(repr(p)), "test")
                for t, p in zip(hours, price, strict=True)
            ],
        )
    body = await _compare(
        client, auth, subject, f'period: "1y", interval: "1h", benchmark: "{eth}"'
    )
    data = body["data"]["compare"]
    assert data["interval"] == "1d"
    days = [start + timedelta(days=d) for d in range(4)]
    assert [datetime.fromisoformat(t) for t in data["timestamps"]] == days
    last = [24 * d + 23 for d in range(4)]  # each day's last hour
    r = [value[b] / value[a] - 1 for a, b in itertools.pairwise(last)]
    m = [price[b] / price[a] - 1 for a, b in itertools.pairwise(last)]
    assert data["benchmarkValues"] == pytest.approx(
        [100 * price[i] / price[last[0]] for i in last], abs=1e-6
    )
    assert data["portfolio"] == pytest.approx(
        [100 * value[i] / value[last[0]] for i in last], abs=1e-6
    )
    assert data["beta"] == pytest.approx(float(np.polyfit(m, r, 1)[0]), abs=2e-6)
    assert data["intervals"] == 3


@pytest.mark.parametrize("interval", ["1h", "4h"])
async def test_benchmark_sampled_at_the_portfolios_instants(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine, interval: str
) -> None:
    """Issue 11: exactly 5 ETH + 8,000 USDC, hourly :00 snapshots, a price every minute. The
    benchmark used to be its bucket's last price (59 minutes after the snapshot): beta 0.075,
    correlation 0.17 at 1h. Priced as of each snapshot, the portfolio is its ETH weight."""
    eth = _symbol("XETH")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    minutes = [hour - timedelta(minutes=m) for m in range(3 * 24 * 60, -1, -1)]
    rng = np.random.default_rng(21)
    path = 3000 * np.exp(np.cumsum(rng.normal(0, 0.002, len(minutes))))
    price = {t: Decimal(f"{p:.2f}") for t, p in zip(minutes, path, strict=True)}
    stamps = [t for t in minutes if t.minute == 0]
    subject = f"cmp-sync-{uuid.uuid4().hex[:6]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        await write_snapshots(
            db, [Snapshot(user_id, t, 5 * price[t] + 8000, {}, {}, {}) for t in stamps]
        )
        await write_prices(db, [PricePoint(t, eth, p, "test") for t, p in price.items()])
    body = await _compare(
        client, auth, subject, f'period: "7d", interval: "{interval}", benchmark: "{eth}"'
    )
    data = body["data"]["compare"]
    # Reference, by hand: buckets of `every` hours from midnight UTC hold their last snapshot,
    # the first one the period's first; steps count between samples `every` hours apart.
    every = int(interval[0])
    last_in: dict[datetime, datetime] = {}
    for t in stamps:
        last_in[t.replace(hour=t.hour - t.hour % every)] = t
    grid = sorted(last_in.values())
    grid[0] = stamps[0]
    own = [float(5 * price[t] + 8000) for t in grid]
    bench = [float(price[t]) for t in grid]
    steps = [
        (a, b)
        for a, b in itertools.pairwise(range(len(grid)))
        if grid[b] - grid[a] == timedelta(hours=every)
    ]
    r = [own[b] / own[a] - 1 for a, b in steps]
    m = [bench[b] / bench[a] - 1 for a, b in steps]
    assert data["intervals"] == len(steps)
    assert data["beta"] == pytest.approx(float(np.polyfit(m, r, 1)[0]), abs=2e-6)
    assert data["correlation"] == pytest.approx(
        float(scipy_stats.pearsonr(r, m).statistic), abs=2e-6
    )
    assert data["correlation"] > 0.999
    weight = 5 * float(path.mean()) / (5 * float(path.mean()) + 8000)
    assert data["beta"] == pytest.approx(weight, abs=0.02)
