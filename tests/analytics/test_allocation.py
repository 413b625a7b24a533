"""Allocation weights and rebalancing: hand-made plans and properties on random portfolios."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainfolio.analytics import (
    NotEnoughData,
    RebalancePlan,
    Trade,
    allocation,
    group_values,
    rebalance,
)

ETHEREUM, ARBITRUM, POLYGON = 1, 42161, 137


def test_weights_sum_to_100_and_loans_stay_negative() -> None:
    result = allocation(values_by_key={"ETH": Decimal("800"), "USDC": 400.0, "AAVE-debt": -200})
    assert result.net_total == 1000.0
    assert result.gross_assets == 1200.0
    assert result.liabilities == -200.0
    assert result.weights == pytest.approx({"ETH": 80.0, "USDC": 40.0, "AAVE-debt": -20.0})
    assert math.fsum(result.weights.values()) == pytest.approx(100.0)


@pytest.mark.parametrize("values", [{}, {"ETH": 100.0, "loan": -100.0}, {"loan": -5.0}])
def test_weights_of_a_non_positive_net_total_are_not_enough_data(
    values: Mapping[str, float],
) -> None:
    with pytest.raises(NotEnoughData):
        allocation(values_by_key=values)


def test_non_finite_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        allocation(values_by_key={"ETH": math.nan})


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.floats(-1e9, 1e9, allow_nan=False),
        min_size=1,
        max_size=12,
    )
)
def test_weights_always_sum_to_100(values: dict[str, float]) -> None:
    total = math.fsum(values.values())
    if total <= 1e-6 * max(abs(v) for v in values.values()):
        return
    weights = allocation(values_by_key=values).weights
    assert math.fsum(weights.values()) == pytest.approx(100.0, rel=1e-6)


def test_group_values() -> None:
    grouped = group_values(
        values_by_key={"USDC": 10.0, "DAI": Decimal("5"), "ETH": 20.0},
        groups={"stablecoins": ["USDC", "USDT", "DAI"]},
    )
    assert grouped == {"stablecoins": 15.0, "ETH": 20.0}
    with pytest.raises(ValueError, match="both"):
        group_values(values_by_key={"USDC": 1.0}, groups={"a": ["USDC"], "b": ["USDC"]})
    with pytest.raises(TypeError, match="not a str"):
        group_values(values_by_key={"USDC": 1.0}, groups={"a": "USDC"})


# --- rebalancing ----------------------------------------------------------------------------


def test_two_assets_out_of_band_trade_with_each_other() -> None:
    plan = rebalance(
        holdings={"ETH": 700.0, "USDC": 300.0}, targets={"ETH": 50, "USDC": 50}, band=0.05
    )
    assert plan.trades == (
        Trade("sell", "ETH", None, pytest.approx(200.0)),  # type: ignore[arg-type]
        Trade("buy", "USDC", None, pytest.approx(200.0)),  # type: ignore[arg-type]
    )
    assert plan.weights_after == pytest.approx({"ETH": 50.0, "USDC": 50.0})
    assert plan.within_band
    assert plan.turnover_usd == pytest.approx(200.0)
    assert plan.gas_usd_total is None


def test_inside_the_band_nothing_trades() -> None:
    plan = rebalance(
        holdings={"ETH": 520.0, "USDC": 480.0}, targets={"ETH": 0.5, "USDC": 0.5}, band=0.05
    )
    assert plan.trades == ()
    assert plan.weights_after == plan.weights_before
    assert plan.within_band


def test_one_outlier_recruits_the_fewest_in_band_partners() -> None:
    # A is 10 points over (out of a 6-point band); B and C are 5 under, inside the band.
    # A alone cannot move; adding B is enough: A and B share the spare 5 points equally.
    plan = rebalance(
        holdings={"A": 400.0, "B": 300.0, "C": 300.0},
        targets={"A": 0.30, "B": 0.35, "C": 0.35},
        band=0.06,
    )
    assert [(t.side, t.asset) for t in plan.trades] == [("sell", "A"), ("buy", "B")]
    assert plan.trades[0].usd == pytest.approx(75.0)
    assert plan.weights_after == pytest.approx({"A": 32.5, "B": 37.5, "C": 30.0})
    assert plan.within_band


def test_sells_take_the_largest_chain_first_and_gas_is_per_chain() -> None:
    plan = rebalance(
        holdings={
            "ETH": {ETHEREUM: 500.0, ARBITRUM: 300.0},
            "USDC": {POLYGON: 200.0},
        },
        targets={"ETH": 0.2, "USDC": 0.8},
        band=0.05,
        gas_usd_by_chain={ETHEREUM: 4.0, ARBITRUM: 0.1, POLYGON: 0.01},
    )
    assert [(t.side, t.asset, t.chain_id) for t in plan.trades] == [
        ("sell", "ETH", ETHEREUM),
        ("sell", "ETH", ARBITRUM),
        ("buy", "USDC", POLYGON),
    ]
    assert [t.usd for t in plan.trades] == pytest.approx([500.0, 100.0, 600.0])
    assert plan.gas_usd_by_chain == pytest.approx({ETHEREUM: 4.0, ARBITRUM: 0.1, POLYGON: 0.01})
    assert plan.gas_usd_total == pytest.approx(4.11)


def test_a_target_not_held_is_bought_on_the_chain_of_the_largest_sell() -> None:
    plan = rebalance(
        holdings={"ETH": {ARBITRUM: 1000.0}},
        targets={"ETH": 0.5, "WBTC": 0.5},
        band=0.01,
        gas_usd_by_chain={ARBITRUM: 0.2},
    )
    assert [(t.side, t.asset, t.chain_id) for t in plan.trades] == [
        ("sell", "ETH", ARBITRUM),
        ("buy", "WBTC", ARBITRUM),
    ]
    assert plan.gas_usd_total == pytest.approx(0.4)


def test_an_asset_without_target_is_sold() -> None:
    plan = rebalance(holdings={"ETH": 900.0, "PEPE": 100.0}, targets={"ETH": 1.0}, band=0.02)
    assert [(t.side, t.asset) for t in plan.trades] == [("sell", "PEPE"), ("buy", "ETH")]
    assert plan.targets == {"ETH": 100.0, "PEPE": 0.0}


def test_min_trade_drops_small_legs_and_shrinks_the_other_side() -> None:
    # Targets put 2 USD into DOGE; the minimum drops that buy and shrinks the ETH sale to match.
    plan = rebalance(
        holdings={"ETH": 700.0, "USDC": 300.0},
        targets={"ETH": 0.498, "USDC": 0.5, "DOGE": 0.002},
        band=0.0,
        min_trade_usd=10.0,
    )
    assert [(t.side, t.asset) for t in plan.trades] == [("sell", "ETH"), ("buy", "USDC")]
    assert [t.usd for t in plan.trades] == pytest.approx([200.0, 200.0])
    assert not plan.within_band  # DOGE stays at 0, 0.2 points under a zero-width band


def test_min_trade_larger_than_every_leg_means_no_trades() -> None:
    plan = rebalance(
        holdings={"ETH": 700.0, "USDC": 300.0},
        targets={"ETH": 0.5, "USDC": 0.5},
        band=0.01,
        min_trade_usd=1e6,
    )
    assert plan.trades == ()
    assert not plan.within_band


def test_groups_rebalance_at_group_level() -> None:
    plan = rebalance(
        holdings={"ETH": 600.0, "USDC": {ETHEREUM: 150.0}, "DAI": {POLYGON: 250.0}},
        targets={"ETH": 0.4, "stablecoins": 0.6},
        band=0.05,
        groups={"stablecoins": ["USDC", "USDT", "DAI"]},
    )
    assert plan.weights_before == pytest.approx({"ETH": 60.0, "stablecoins": 40.0})
    # The buy goes to the group's largest position (DAI on Polygon): one trade, not three.
    assert [(t.side, t.asset, t.chain_id) for t in plan.trades] == [
        ("sell", "ETH", None),
        ("buy", "DAI", POLYGON),
    ]
    assert plan.weights_after == pytest.approx({"ETH": 40.0, "stablecoins": 60.0})


def test_group_sell_takes_the_largest_member_first() -> None:
    plan = rebalance(
        holdings={"ETH": 100.0, "USDC": 500.0, "DAI": 400.0},
        targets={"ETH": 0.5, "stablecoins": 0.5},
        band=0.05,
        groups={"stablecoins": {"USDC", "DAI"}},
    )
    assert [(t.side, t.asset) for t in plan.trades] == [("sell", "USDC"), ("buy", "ETH")]
    assert plan.trades[0].usd == pytest.approx(400.0)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"ETH": 0.5, "USDC": 0.4}, "sum to 1 or to 100"),
        ({"ETH": 60, "USDC": 50}, "sum to 1 or to 100"),
        ({"ETH": 1.5, "USDC": -0.5}, "negative"),
        ({"ETH": math.nan}, "finite"),
        ({}, "empty"),
        ({"ETH": 0.5, "USDC": 0.5}, "belongs to group"),
    ],
)
def test_invalid_targets_are_rejected(targets: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rebalance(
            holdings={"ETH": 1.0, "USDC": 1.0},
            targets=targets,
            band=0.05,
            groups={"stables": ["USDC"]} if message == "belongs to group" else None,
        )


def test_percent_and_fraction_targets_agree() -> None:
    holdings = {"ETH": 700.0, "USDC": 200.0, "WBTC": 100.0}
    fractions = rebalance(
        holdings=holdings, targets={"ETH": 0.4, "USDC": 0.3, "WBTC": 0.3}, band=0.02
    )
    percents = rebalance(holdings=holdings, targets={"ETH": 40, "USDC": 30, "WBTC": 30}, band=0.02)
    assert fractions.trades == percents.trades


@pytest.mark.parametrize(
    ("band", "min_trade_usd", "message"),
    [(1.0, 0.0, "band"), (-0.1, 0.0, "band"), (0.05, -1.0, "min_trade_usd")],
)
def test_invalid_band_and_minimum(band: float, min_trade_usd: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rebalance(
            holdings={"ETH": 1.0}, targets={"ETH": 1.0}, band=band, min_trade_usd=min_trade_usd
        )


def test_loans_and_empty_portfolios_cannot_be_rebalanced() -> None:
    with pytest.raises(ValueError, match="loans"):
        rebalance(holdings={"ETH": 10.0, "debt": -5.0}, targets={"ETH": 1.0}, band=0.05)
    with pytest.raises(NotEnoughData):
        rebalance(holdings={"ETH": 0.0}, targets={"ETH": 1.0}, band=0.05)


# --- properties on random portfolios ----------------------------------------------------------

ASSETS = ["ETH", "WBTC", "USDC", "DAI", "LINK", "UNI", "ARB", "OP"]
CHAINS = [ETHEREUM, ARBITRUM, POLYGON]


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[dict[str, dict[int, float]], dict[str, float], float]:
    held = draw(st.lists(st.sampled_from(ASSETS), min_size=1, max_size=8, unique=True))
    holdings = {
        asset: draw(
            st.dictionaries(st.sampled_from(CHAINS), st.floats(0.0, 1e6), min_size=1, max_size=3)
        )
        for asset in held
    }
    if sum(sum(chains.values()) for chains in holdings.values()) <= 1.0:
        holdings[held[0]][ETHEREUM] = 1000.0
    targeted = draw(st.lists(st.sampled_from(ASSETS), min_size=1, max_size=8, unique=True))
    raw = [draw(st.floats(0.0, 1.0)) for _ in targeted]
    if sum(raw) == 0:
        raw[0] = 1.0
    targets = {asset: weight / sum(raw) for asset, weight in zip(targeted, raw, strict=True)}
    return holdings, targets, draw(st.floats(0.0, 0.3))


def apply_trades(
    holdings: Mapping[str, Mapping[int, float]], plan: RebalancePlan
) -> dict[str, float]:
    after = {asset: sum(chains.values()) for asset, chains in holdings.items()}
    for trade in plan.trades:
        sign = -1.0 if trade.side == "sell" else 1.0
        after[trade.asset] = after.get(trade.asset, 0.0) + sign * trade.usd
    return after


@settings(max_examples=150, deadline=None)
@given(portfolios())
def test_rebalance_lands_every_weight_inside_its_band(
    case: tuple[dict[str, dict[int, float]], dict[str, float], float],
) -> None:
    holdings, targets, band = case
    plan = rebalance(holdings=holdings, targets=targets, band=band)
    total = sum(sum(chains.values()) for chains in holdings.values())
    after = apply_trades(holdings, plan)
    assert plan.within_band
    for asset in {*after, *targets}:
        weight = after.get(asset, 0.0) / total
        assert abs(weight - targets.get(asset, 0.0)) <= band + 1e-9
        assert after.get(asset, 0.0) >= -1e-9 * total
    assert math.fsum(plan.weights_after.values()) == pytest.approx(100.0)
    sells = math.fsum(t.usd for t in plan.trades if t.side == "sell")
    buys = math.fsum(t.usd for t in plan.trades if t.side == "buy")
    assert sells == pytest.approx(buys, rel=1e-9, abs=1e-9 * total)
    for trade in plan.trades:
        assert trade.usd > 0
        if trade.side == "sell":
            assert trade.chain_id is not None
            assert trade.usd <= holdings[trade.asset][trade.chain_id] * (1 + 1e-9)
    before = {asset: sum(chains.values()) / total for asset, chains in holdings.items()}
    out_of_band = {
        asset
        for asset in {*before, *targets}
        if abs(before.get(asset, 0.0) - targets.get(asset, 0.0)) > band + 1e-9
    }
    if not out_of_band:
        assert plan.trades == ()
    # Every asset outside the band is traded (it has to move to get back in).
    traded = {t.asset for t in plan.trades}
    assert out_of_band <= traded
