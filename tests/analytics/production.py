"""Data shaped like the worker's: hourly :00 snapshots, a price every 30 s, flows at block times.

A portfolio of ETH and USDC. The ETH price follows a random walk sampled every 30 s (stored every
30 s over the last two days and every 10 minutes before, as a long-running install keeps it);
flows — deposits and withdrawals of either asset, and one exit to zero with a re-entry days
later — land at random 12 s block times and are valued at the price then; snapshots are taken
at each hour's :00 with the holdings and price of that instant, some hours missing (single
hours and a ten-hour outage). The history reaches `days` back, so with the default retention
its older part is read from the daily rollup. Amounts are exact decimals, as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

TICK = timedelta(seconds=30)
BLOCK = timedelta(seconds=12)
CENT = Decimal("0.000001")


@dataclass(frozen=True)
class Flow:
    """An external flow of one asset at a block time; `usd` is its signed value then."""

    time: datetime
    symbol: str
    usd: Decimal


@dataclass(frozen=True)
class ProductionData:
    """Everything a test writes for one user, and the holdings at `now` (the live end)."""

    now: datetime
    snapshots: list[tuple[datetime, Decimal]]
    prices: list[tuple[datetime, Decimal]]
    flows: list[Flow]
    eth_now: Decimal
    usdc_now: Decimal
    price_now: Decimal


def production_data(seed: int, *, now: datetime, days: int = 130) -> ProductionData:
    """A user's history over `days` before `now` (`now` may be mid-hour)."""
    rng = np.random.default_rng(seed)
    first_hour = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    ticks = int((now - first_hour) / TICK) + 1
    walk = 2500 * np.exp(np.cumsum(rng.normal(0.0, 0.0006, ticks)))
    price = [Decimal(f"{p:.2f}") for p in walk]

    def tick_of(moment: datetime) -> int:
        return int((moment - first_hour) / TICK)

    dense_from = now - timedelta(days=2)
    prices = [
        (first_hour + k * TICK, price[k])
        for k in range(ticks)
        if first_hour + k * TICK >= dense_from or k % 20 == 0
    ]
    # Flows: about one every four days at a block time, plus an exit to zero and a re-entry.
    span_blocks = int((now - first_hour) / BLOCK)
    flow_blocks = sorted(rng.choice(span_blocks, size=days // 4, replace=False))
    exit_block, entry_block = int(span_blocks * 0.45), int(span_blocks * 0.5)
    eth, usdc = Decimal(4), Decimal(5000)
    events: list[tuple[datetime, Decimal, Decimal]] = []  # (time, eth units, usdc units)
    for block in flow_blocks:
        moment = first_hour + int(block) * BLOCK
        if rng.random() < 0.5:
            units = Decimal(f"{rng.uniform(-1.0, 1.5):.4f}")
            events.append((moment, units, Decimal(0)))
        else:
            events.append((moment, Decimal(0), Decimal(f"{rng.uniform(-1500, 3000):.2f}")))
    events.append((first_hour + exit_block * BLOCK, Decimal("-inf"), Decimal("-inf")))
    events.append((first_hour + entry_block * BLOCK, Decimal(3), Decimal(2000)))
    events.sort(key=lambda e: e[0])
    flows: list[Flow] = []
    holdings: list[tuple[datetime, Decimal, Decimal]] = [(first_hour, eth, usdc)]
    for moment, eth_asked, usdc_asked in events:
        exit_all = eth_asked.is_infinite()  # the exit: everything out
        d_eth = -eth if exit_all else max(eth_asked, -eth)
        d_usdc = -usdc if exit_all else max(usdc_asked, -usdc)
        p = price[tick_of(moment)]
        if d_eth:
            flows.append(Flow(moment, "ETH", (d_eth * p).quantize(CENT)))
        if d_usdc:
            flows.append(Flow(moment, "USDC", d_usdc))
        eth, usdc = eth + d_eth, usdc + d_usdc
        holdings.append((moment, eth, usdc))
    hours = int((now - first_hour) / timedelta(hours=1)) + 1
    outage = rng.integers(24, hours - 24)
    snapshots = []
    state = 0
    for h in range(hours):
        moment = first_hour + timedelta(hours=h)
        if outage <= h < outage + 10 or (h > 0 and rng.random() < 0.02):
            continue
        while state + 1 < len(holdings) and holdings[state + 1][0] <= moment:
            state += 1
        _, e, u = holdings[state]
        snapshots.append((moment, (e * price[tick_of(moment)] + u).quantize(CENT)))
    return ProductionData(
        now=now,
        snapshots=snapshots,
        prices=prices,
        flows=flows,
        eth_now=eth,
        usdc_now=usdc,
        price_now=price[tick_of(now)],
    )
