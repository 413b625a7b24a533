"""The demo's synthetic history (pure): price paths and ~90 days of hourly snapshots, prices and a
few deposits and withdrawals, derived from the wallets' real current holdings."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from chainfolio.core.domain import Category
from chainfolio.storage import flows as flow_store
from chainfolio.storage import prices as price_store
from chainfolio.storage import timeseries
from chainfolio.storage.holdings import StoredHolding

HISTORY_DAYS = 90
PRICE_SOURCE = "demo-backfill"


@dataclass(frozen=True, slots=True)
class Position:
    """One current holding as the back-fill sees it: a value driven by one price."""

    chain_id: int
    chain: str
    wallet_id: uuid.UUID | None
    symbol: str
    contract: str
    decimals: int
    category: str
    driver: str
    """"ETH", "BTC" or "" (stable: the value does not move)."""
    feed: str
    """The price symbol this holding is valued with ("ETH" for WETH, "BTC" for WBTC …)."""
    value: float
    """Current signed USD value (loans negative)."""
    price: float
    """Current USD price of one whole unit."""

    @property
    def unit_priced(self) -> bool:
        """Whether one unit of the holding is one unit of its driver (or it is stable)."""
        return not self.driver or self.feed == self.driver


@dataclass(frozen=True, slots=True)
class SyntheticHistory:
    """Hourly snapshots, prices and cash flows that agree with each other and with now."""

    snapshots: list[timeseries.Snapshot]
    prices: list[price_store.PricePoint]
    flows: list[flow_store.CashFlow]


def price_paths(
    now_prices: dict[str, float], hours: int, *, seed: int = 1
) -> dict[str, np.ndarray]:
    """Hourly paths ending at `now_prices` ("ETH", "BTC"): correlated log-normal walks.

    The walk has a rally, a drawdown and a recovery, so drawdown and returns are visible.
    """
    rng = np.random.default_rng(seed)
    z_eth = rng.standard_normal(hours)
    z_btc = 0.8 * z_eth + 0.6 * rng.standard_normal(hours)
    phase = np.linspace(0, 2 * math.pi, hours)
    trend = 0.0005 * np.sin(phase) + 0.0001  # per-hour drift: up, down, up again
    paths: dict[str, np.ndarray] = {}
    # ~42 % and ~33 % annual volatility; seed 1 gives ETH +13 %, BTC +15 %, a 21 % drawdown.
    for key, z, vol in (("ETH", z_eth, 0.0045), ("BTC", z_btc, 0.0035)):
        steps = trend + vol * z
        # log P[i] = log P[-1] - sum of the steps after i: the path ends exactly at today.
        tail = np.concatenate([np.cumsum(steps[::-1])[::-1][1:], [0.0]])
        paths[key] = now_prices.get(key, 1.0) * np.exp(-tail)
    return paths


def _flow_plan(positions: Sequence[Position]) -> list[tuple[int, Position, float]]:
    """(days ago, position, unit change) for a few deposits and withdrawals."""
    wallet = [
        p
        for p in positions
        if p.category == Category.WALLET.value and p.value > 0 and p.unit_priced and p.price > 0
    ]

    def biggest(pred: Callable[[Position], bool]) -> Position | None:
        found = sorted((p for p in wallet if pred(p)), key=lambda p: -p.value)
        return found[0] if found else None

    plan: list[tuple[int, Position, float]] = []
    native = sorted((p for p in wallet if p.contract == "native"), key=lambda p: -p.value)
    usdc = biggest(lambda p: p.symbol == "USDC")
    wbtc = biggest(lambda p: p.symbol == "WBTC")
    if native:
        plan.append((70, native[0], 0.35))
    if usdc is not None:
        plan.append((48, usdc, 0.40))
    if wbtc is not None:
        plan.append((27, wbtc, -0.30))
    if len(native) > 1:
        plan.append((9, native[1], -0.20))
    return plan


def synthetic_history(
    positions: Sequence[Position],
    *,
    user_id: uuid.UUID,
    now: datetime,
    days: int = HISTORY_DAYS,
    seed: int = 1,
) -> SyntheticHistory:
    """Hourly snapshots for `days` before the current hour, consistent with `positions`.

    A position's units are its value over its price today; before a planned deposit it had
    fewer units, before a withdrawal more; its value at any hour is units times that hour's
    price. Money is rounded to cents here: this is made-up data, computed in floats.
    """
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    times = [hour - timedelta(hours=hours - i) for i in range(hours)]
    now_prices = {p.feed: p.price for p in positions if p.driver and p.feed == p.driver}
    now_prices.setdefault("ETH", 3000.0)
    now_prices.setdefault("BTC", 65000.0)
    paths = price_paths(now_prices, hours + 1, seed=seed)  # last point is now
    units = np.array([p.value / (now_prices[p.driver] if p.driver else 1.0) for p in positions])
    unit_paths = np.repeat(units[:, None], hours, axis=1)
    flows: list[flow_store.CashFlow] = []
    index = {id(p): i for i, p in enumerate(positions)}
    for n, (days_ago, position, share) in enumerate(_flow_plan(positions)):
        at = hour - timedelta(days=days_ago) + timedelta(minutes=30)
        row = index[id(position)]
        delta = units[row] * share
        before = [i for i, t in enumerate(times) if t < at]
        unit_paths[row, before] -= delta
        step = max(before, default=0)
        price = paths[position.driver][step] if position.driver else position.price
        # Driven positions count units of the driver (one ETH, one WBTC); stable ones count USD.
        whole = delta if position.driver else delta / position.price
        value = delta * price if position.driver else delta
        flows.append(
            flow_store.CashFlow(
                user_id=user_id,
                chain_id=position.chain_id,
                time=at,
                symbol=position.symbol,
                contract=position.contract,
                amount=int(Decimal(repr(float(whole))) * 10**position.decimals),
                decimals=position.decimals,
                value_usd=_cents(value),
                tx_hash="0x" + hashlib.sha256(f"chainfolio-demo-flow-{n}".encode()).hexdigest(),
                log_index=n,
                wallet_id=position.wallet_id,
            )
        )
    drivers = np.array(
        [paths[p.driver][:hours] if p.driver else np.ones(hours) for p in positions]
    ).reshape(len(positions), hours)
    values = unit_paths * drivers
    snapshots = []
    for i, moment in enumerate(times):
        by_chain: dict[str, float] = defaultdict(float)
        by_asset: dict[str, float] = defaultdict(float)
        by_category: dict[str, float] = defaultdict(float)
        for row, p in enumerate(positions):
            v = float(values[row, i])
            by_chain[p.chain] += v
            by_asset[p.symbol] += v
            by_category[p.category] += v
        snapshots.append(
            timeseries.Snapshot(
                user_id,
                moment,
                _cents(float(values[:, i].sum())),
                {k: _cents(v) for k, v in by_chain.items()},
                {k: _cents(v) for k, v in by_asset.items()},
                {k: _cents(v) for k, v in by_category.items()},
            )
        )
    prices = [
        price_store.PricePoint(moment, key, _cents(float(path[i]), places=6), PRICE_SOURCE)
        for key, path in paths.items()
        for i, moment in enumerate(times)
    ]
    stable = {p.symbol: p.price for p in positions if not p.driver and p.price}
    prices += [
        price_store.PricePoint(moment, symbol, _cents(price, places=6), PRICE_SOURCE)
        for symbol, price in stable.items()
        for moment in times
    ]
    return SyntheticHistory(snapshots, prices, flows)


def _cents(value: float, *, places: int = 2) -> Decimal:
    return Decimal(repr(round(float(value), places)))


def positions_of(holdings: Sequence[StoredHolding]) -> list[Position]:
    """Back-fill positions from stored holdings; unpriced ones are left out, as in totals."""
    result = []
    for stored in holdings:
        h = stored.holding
        value = h.value_usd
        if value is None or h.price is None:
            continue
        feed = h.price.symbol.upper()
        symbol = h.symbol.upper()
        if feed in ("ETH", "BTC"):
            driver = feed
        elif "ETH" in symbol or "ETH" in feed or h.category is Category.NFT:
            driver = "ETH"  # vault shares, the NFT floor: valued in ETH
        elif "BTC" in symbol:
            driver = "BTC"
        else:
            driver = ""
        result.append(
            Position(
                chain_id=h.chain_id,
                chain=stored.chain,
                wallet_id=stored.wallet_id,
                symbol=h.symbol,
                contract=h.contract,
                decimals=h.decimals,
                category=h.category.value,
                driver=driver,
                feed=feed,
                value=float(value),
                price=float(h.price.usd),
            )
        )
    return result
