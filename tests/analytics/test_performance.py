"""summarize() against the single-metric functions and loops, and attribution of the gain."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainfolio.analytics import (
    NotEnoughData,
    PerformanceSummary,
    attribution,
    benchmark_comparison,
    interval_returns,
    price_returns,
    summarize,
)
from tests.analytics.reference import (
    drawdown_loop,
    irr_bisection,
    mean,
    nav_series,
    per_period,
    sample_std,
)
from tests.analytics.strategies import Series, portfolio_cases

DAY = 86_400.0


def days(*points: float) -> list[float]:
    return [p * DAY for p in points]


def test_summary_of_a_period_with_a_deposit() -> None:
    times = days(0, 1, 2, 3, 4, 5)
    values = [100.0, 110.0, 99.0, 220.0, 231.0, 200.0]
    flow_times, flow_amounts = days(2.5), [100.0]
    summary = summarize(
        times=times,
        values=values,
        flow_times=flow_times,
        flow_amounts=flow_amounts,
        risk_free_rate=0.05,
    )
    assert (summary.start_value, summary.end_value) == (100.0, 200.0)
    assert (summary.deposits, summary.withdrawals, summary.net_flows) == (100.0, 0.0, 100.0)
    assert summary.absolute_gain == pytest.approx(0.0)
    navs = nav_series(times, values, flow_times, flow_amounts)
    assert summary.twr == pytest.approx(navs[-1] - 1)
    rates = [navs[i] / navs[i - 1] - 1 for i in range(1, len(navs))]
    assert rates == pytest.approx([0.1, -0.1, 120 / 99 - 1, 0.05, 200 / 231 - 1])
    assert summary.periods_per_year == pytest.approx(365.0)
    assert summary.volatility == pytest.approx(sample_std(rates) * math.sqrt(365))
    excess = [r - per_period(0.05, 365) for r in rates]
    assert summary.sharpe_ratio == pytest.approx(mean(excess) / sample_std(excess) * math.sqrt(365))
    cash = [(0.0, -100.0), (2.5 / 365, -100.0), (5 / 365, 200.0)]
    annual = irr_bisection(cash, low=-0.99, high=10.0)
    assert summary.mwr_annualised == pytest.approx(annual, rel=1e-7, abs=1e-10)
    drawdown = drawdown_loop(navs)
    assert summary.max_drawdown == pytest.approx(drawdown.depth)
    assert summary.max_drawdown == pytest.approx(200 / 231 - 1)
    assert (summary.drawdown_peak_time, summary.drawdown_trough_time) == (4 * DAY, 5 * DAY)
    assert summary.drawdown_recovery_time is None
    assert summary.best_interval_return == pytest.approx(120 / 99 - 1)
    assert summary.best_interval_end_time == 3 * DAY
    assert summary.worst_interval_return == pytest.approx(200 / 231 - 1)
    assert summary.worst_interval_end_time == 5 * DAY
    assert summary.benchmark is None
    assert summary.attribution is None


def test_best_and_worst_skip_intervals_without_capital() -> None:
    summary = summarize(
        times=days(0, 1, 2, 3, 4, 5),
        values=[100.0, 90.0, 0.0, 0.0, 50.0, 60.0],
        flow_times=days(2, 4),
        flow_amounts=[-90.0, 50.0],
    )
    assert summary.skipped_intervals == 2
    assert summary.best_interval_return == pytest.approx(0.2)
    assert summary.best_interval_end_time == 5 * DAY
    assert summary.worst_interval_return == pytest.approx(-0.1)
    assert summary.worst_interval_end_time == 1 * DAY
    assert summary.twr == pytest.approx(0.9 * 1.2 - 1)
    assert summary.max_drawdown == pytest.approx(-0.1)
    assert summary.drawdown_recovery_time == 5 * DAY


def test_nothing_at_risk_gives_none_not_nan() -> None:
    summary = summarize(times=days(0, 1, 2), values=[0.0, 0.0, 0.0], flow_times=[], flow_amounts=[])
    assert summary.twr is None
    assert summary.mwr is None
    assert summary.gain_rate is None
    assert summary.roi is None
    assert summary.volatility is None
    assert summary.sharpe_ratio is None
    assert summary.best_interval_return is None
    assert summary.max_drawdown == 0.0
    assert_no_nan_or_infinity(summary)


def test_one_valuation_gives_what_exists_and_none_raises() -> None:
    one = summarize(times=[0.0], values=[250.0], flow_times=[], flow_amounts=[])
    assert (one.start_value, one.end_value, one.absolute_gain) == (250.0, 250.0, 0.0)
    assert one.valuations == 1
    assert one.twr is None
    assert one.volatility is None
    assert one.reasons["twr"] == "one valuation in the period: a return needs two"
    assert_no_nan_or_infinity(one)
    with pytest.raises(NotEnoughData, match="got 0"):
        summarize(times=[], values=[], flow_times=[], flow_amounts=[])


def test_benchmark_is_compared_on_intervals_with_capital_at_risk() -> None:
    times = days(0, 1, 2, 3, 4, 5, 6)
    values = [100.0, 105.0, 0.0, 50.0, 52.0, 49.0, 55.0]
    flow_times, flow_amounts = days(2, 3), [-105.0, 50.0]
    bench = [10.0, 10.5, 10.2, 10.1, 10.6, 10.3, 11.0]
    summary = summarize(
        times=times,
        values=values,
        flow_times=flow_times,
        flow_amounts=flow_amounts,
        benchmark_values=bench,
    )
    intervals = interval_returns(
        times=times, values=values, flow_times=flow_times, flow_amounts=flow_amounts
    )
    expected = benchmark_comparison(
        returns=intervals.returns[intervals.valid],
        benchmark_returns=price_returns(prices=bench)[intervals.valid],
        periods_per_year=365.0,
    )
    assert summary.benchmark == expected
    with pytest.raises(ValueError, match="one price per valuation"):
        summarize(
            times=times,
            values=values,
            flow_times=flow_times,
            flow_amounts=flow_amounts,
            benchmark_values=bench[:-1],
        )


def test_attribution_counts_swaps_as_flows_not_gain() -> None:
    # 600 ETH + 400 USDC; a 100 USDC deposit on day 15; 200 of ETH swapped into USDC.
    summary = summarize(
        times=days(0, 15, 30),
        values=[1000.0, 1120.0, 1170.0],
        flow_times=days(15),
        flow_amounts=[100.0],
        start_values_by_key={"ETH": 600.0, "USDC": 400.0},
        end_values_by_key={"ETH": 450.0, "USDC": 720.0},
        flows_by_key={"ETH": -200.0, "USDC": 300.0},
    )
    assert summary.absolute_gain == pytest.approx(70.0)
    result = summary.attribution
    assert result is not None
    assert result.total_gain == pytest.approx(summary.absolute_gain)
    by_key = {c.key: c for c in result.contributions}
    assert by_key["ETH"].gain == pytest.approx(50.0)
    assert by_key["USDC"].gain == pytest.approx(20.0)
    assert [c.key for c in result.contributions] == ["ETH", "USDC"]
    assert by_key["ETH"].share_of_gain == pytest.approx(50 / 70)
    assert by_key["ETH"].return_rate == pytest.approx(50 / 500)
    assert by_key["USDC"].return_rate == pytest.approx(20 / 550)
    # Contributions add up to the portfolio's Modified Dietz gain rate.
    assert summary.gain_rate == pytest.approx(70 / 1050)
    assert math.fsum(c.contribution_rate or 0 for c in result.contributions) == pytest.approx(
        summary.gain_rate
    )


def test_attribution_without_portfolio_capital_uses_simple_dietz() -> None:
    result = attribution(
        start_values={"ethereum": 500.0, "polygon": 500.0},
        end_values={"ethereum": 600.0, "polygon": 450.0, "arbitrum": 100.0},
        flows={"arbitrum": 100.0},
    )
    assert result.average_capital == pytest.approx(1050.0)
    assert result.total_gain == pytest.approx(50.0)
    by_key = {c.key: c for c in result.contributions}
    assert by_key["arbitrum"].gain == 0.0
    assert by_key["polygon"].contribution_rate == pytest.approx(-50 / 1050)
    flat = attribution(start_values={"a": 1.0}, end_values={"a": 1.0})
    assert flat.contributions[0].share_of_gain is None


def assert_no_nan_or_infinity(summary: PerformanceSummary) -> None:
    def walk(value: object) -> None:
        if isinstance(value, float):
            assert math.isfinite(value), summary
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name))
        elif isinstance(value, tuple):
            for item in value:
                walk(item)

    walk(summary)


@settings(max_examples=100, deadline=None)
@given(portfolio_cases(), st.data())
def test_summaries_never_hold_nan_or_infinity(case: Series, data: st.DataObject) -> None:
    n = len(case["times"])
    bench = data.draw(st.lists(st.floats(0.01, 1e6), min_size=n, max_size=n))
    summary = summarize(
        **case,
        benchmark_values=bench,
        risk_free_rate=data.draw(st.floats(-0.5, 1.0)),
        target_return=data.draw(st.floats(-0.5, 1.0)),
        start_values_by_key={"a": case["values"][0]},
        end_values_by_key={"a": case["values"][-1], "b": 1.0},
    )
    assert_no_nan_or_infinity(summary)
    assert summary.max_drawdown <= 0
    assert summary.intervals == n - 1
    assert np.isfinite(summary.periods_per_year)
