"""The demo's synthetic history is consistent: totals, breakdowns, prices and flows agree."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chainfolio.demo.history import Position, price_paths, synthetic_history

NOW = datetime(2026, 3, 1, 12, 34, tzinfo=UTC)
USER = uuid.uuid4()
POSITIONS = [
    Position(1, "devnet-1", None, "ETH", "native", 18, "WALLET", "ETH", "ETH", 30_000.0, 3_000.0),
    Position(1, "devnet-1", None, "USDC", "0xA", 6, "WALLET", "", "USDC", 20_000.0, 1.0),
    Position(
        137, "devnet-137", None, "WBTC", "0xB", 8, "WALLET", "BTC", "BTC", 130_000.0, 65_000.0
    ),
    Position(
        137, "devnet-137", None, "ETH", "native", 18, "WALLET", "ETH", "ETH", 9_000.0, 3_000.0
    ),
    Position(137, "devnet-137", None, "WETH", "0xC", 18, "LOAN", "ETH", "ETH", -6_000.0, 3_000.0),
]


def test_paths_end_at_todays_prices() -> None:
    paths = price_paths({"ETH": 3000.0, "BTC": 65000.0}, 500)
    assert paths["ETH"][-1] == pytest.approx(3000.0)
    assert paths["BTC"][-1] == pytest.approx(65000.0)
    assert (paths["ETH"] > 0).all()


def test_history_is_hourly_and_adds_up() -> None:
    history = synthetic_history(POSITIONS, user_id=USER, now=NOW, days=90)
    times = [s.timestamp for s in history.snapshots]
    assert len(times) == 90 * 24
    assert times[-1] == NOW.replace(minute=0) - timedelta(hours=1)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))
    for s in history.snapshots[::97]:
        assert abs(sum(s.asset_breakdown.values()) - s.total_value) <= Decimal("0.05")
        assert abs(sum(s.chain_breakdown.values()) - s.total_value) <= Decimal("0.05")
        assert s.category_breakdown["LOAN"] < 0
    # The last back-filled hour is one hourly price step away from today's value.
    today = sum(p.value for p in POSITIONS)
    assert float(history.snapshots[-1].total_value) == pytest.approx(today, rel=0.05)


def test_flows_change_the_units_held_before_them() -> None:
    history = synthetic_history(POSITIONS, user_id=USER, now=NOW, days=90)
    flows = sorted(history.flows, key=lambda f: f.time)
    assert [f.symbol for f in flows] == ["ETH", "USDC", "WBTC", "ETH"]
    assert [f.value_usd is not None and f.value_usd > 0 for f in flows] == [
        True,
        True,
        False,
        False,
    ]
    usdc = flows[1]
    assert usdc.amount == 8_000 * 10**6  # 40 % of today's 20,000 USDC arrived then
    assert usdc.value_usd == Decimal("8000.0")
    before = max(
        (s for s in history.snapshots if s.timestamp < usdc.time), key=lambda s: s.timestamp
    )
    after = min(
        (s for s in history.snapshots if s.timestamp > usdc.time), key=lambda s: s.timestamp
    )
    assert before.asset_breakdown["USDC"] == Decimal("12000.0")
    assert after.asset_breakdown["USDC"] == Decimal("20000.0")
    eth = flows[0]  # 35 % of chain 1's 10 ETH, valued at that hour's price
    assert eth.amount == 35 * 10**17
    assert len({f.tx_hash for f in flows}) == 4


def test_history_is_deterministic() -> None:
    one = synthetic_history(POSITIONS, user_id=USER, now=NOW, days=10)
    two = synthetic_history(POSITIONS, user_id=USER, now=NOW, days=10)
    assert one == two
