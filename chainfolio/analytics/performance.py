"""Every metric of one period in one call, and attribution of the gain to assets or chains.

A summary never holds NaN or Infinity: a metric that cannot be computed is None. Fewer than
two valuations raise `NotEnoughData`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chainfolio.analytics.errors import NotEnoughData
from chainfolio.analytics.returns import interval_returns, mwr, simple_gain, twr
from chainfolio.analytics.risk import (
    BenchmarkComparison,
    annualisation_factor,
    benchmark_comparison,
    interval_extremes,
    max_drawdown,
    price_returns,
    sharpe_ratio,
    sortino_ratio,
    volatility,
)
from chainfolio.analytics.validation import (
    Amount,
    cash_flows,
    finite_number,
    finite_or_none,
    float_vector,
    valuation_series,
)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One key's share of the period's gain; rates are fractions, None when undefined."""

    key: str
    start_value: float
    end_value: float
    net_flows: float
    gain: float
    share_of_gain: float | None
    contribution_rate: float | None
    return_rate: float | None


@dataclass(frozen=True, slots=True)
class Attribution:
    """Gain per key (largest first); contribution rates add up to total_gain / average_capital."""

    total_gain: float
    average_capital: float
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True, slots=True)
class PerformanceSummary:
    """Every metric of one period; times are POSIX seconds, rates fractions (0.1 = 10 %)."""

    start_time: float
    end_time: float
    start_value: float
    end_value: float
    deposits: float
    withdrawals: float
    net_flows: float
    absolute_gain: float
    gain_rate: float | None
    roi: float | None
    twr: float | None
    twr_annualised: float | None
    mwr: float | None
    mwr_annualised: float | None
    volatility: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float
    drawdown_peak_time: float | None
    drawdown_trough_time: float | None
    drawdown_recovery_time: float | None
    best_interval_return: float | None
    best_interval_end_time: float | None
    worst_interval_return: float | None
    worst_interval_end_time: float | None
    periods_per_year: float
    intervals: int
    skipped_intervals: int
    benchmark: BenchmarkComparison | None
    attribution: Attribution | None


def summarize(
    *,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flow_times: npt.ArrayLike,
    flow_amounts: npt.ArrayLike,
    risk_free_rate: float = 0.0,
    target_return: float = 0.0,
    min_capital: float = 0.0,
    benchmark_values: npt.ArrayLike | None = None,
    start_values_by_key: Mapping[str, Amount] | None = None,
    end_values_by_key: Mapping[str, Amount] | None = None,
    flows_by_key: Mapping[str, Amount] | None = None,
) -> PerformanceSummary:
    """Gain, returns, risk, drawdown, extremes, optional benchmark and attribution of a period."""
    time_array, value_array = valuation_series(times=times, values=values)
    flow_time_array, amount_array = cash_flows(flow_times=flow_times, flow_amounts=flow_amounts)
    series = {
        "times": time_array,
        "values": value_array,
        "flow_times": flow_time_array,
        "flow_amounts": amount_array,
    }
    gain = simple_gain(**series)
    intervals = interval_returns(**series, min_capital=min_capital)
    try:
        time_weighted = twr(**series, min_capital=min_capital)
    except NotEnoughData:
        time_weighted = None
    money_weighted = mwr(**series)
    periods = annualisation_factor(times=time_array)
    at_risk = np.flatnonzero(intervals.valid)
    risk_returns = intervals.returns[at_risk]
    drawdown = max_drawdown(returns=intervals.returns)
    extremes = interval_extremes(returns=risk_returns)

    def time_at(point: int | None) -> float | None:
        return None if point is None else float(time_array[point])

    benchmark = None
    if benchmark_values is not None:
        bench_prices = float_vector(name="benchmark_values", data=benchmark_values)
        if bench_prices.size != time_array.size:
            raise ValueError("benchmark_values must have one price per valuation time")
        benchmark = benchmark_comparison(
            returns=risk_returns,
            benchmark_returns=price_returns(prices=bench_prices)[at_risk],
            periods_per_year=periods,
            risk_free_rate=risk_free_rate,
        )
    contributions = None
    if start_values_by_key is not None or end_values_by_key is not None:
        contributions = attribution(
            start_values=start_values_by_key or {},
            end_values=end_values_by_key or {},
            flows=flows_by_key,
            average_capital=gain.average_capital,
        )
    return PerformanceSummary(
        start_time=float(time_array[0]),
        end_time=float(time_array[-1]),
        start_value=gain.start_value,
        end_value=gain.end_value,
        deposits=gain.deposits,
        withdrawals=gain.withdrawals,
        net_flows=gain.net_flows,
        absolute_gain=gain.absolute_gain,
        gain_rate=gain.gain_rate,
        roi=gain.roi,
        twr=time_weighted.period_rate if time_weighted else None,
        twr_annualised=time_weighted.annualised_rate if time_weighted else None,
        mwr=money_weighted.period_rate if money_weighted else None,
        mwr_annualised=money_weighted.annualised_rate if money_weighted else None,
        volatility=volatility(returns=risk_returns, periods_per_year=periods),
        sharpe_ratio=sharpe_ratio(
            returns=risk_returns, periods_per_year=periods, risk_free_rate=risk_free_rate
        ),
        sortino_ratio=sortino_ratio(
            returns=risk_returns, periods_per_year=periods, target_return=target_return
        ),
        max_drawdown=drawdown.depth,
        drawdown_peak_time=time_at(drawdown.peak_index),
        drawdown_trough_time=time_at(drawdown.trough_index),
        drawdown_recovery_time=time_at(drawdown.recovery_index),
        best_interval_return=extremes.best_return if extremes else None,
        best_interval_end_time=time_at(int(at_risk[extremes.best_index]) + 1) if extremes else None,
        worst_interval_return=extremes.worst_return if extremes else None,
        worst_interval_end_time=time_at(int(at_risk[extremes.worst_index]) + 1)
        if extremes
        else None,
        periods_per_year=periods,
        intervals=int(intervals.returns.size),
        skipped_intervals=intervals.skipped,
        benchmark=benchmark,
        attribution=contributions,
    )


def attribution(
    *,
    start_values: Mapping[str, Amount],
    end_values: Mapping[str, Amount],
    flows: Mapping[str, Amount] | None = None,
    average_capital: float | None = None,
) -> Attribution:
    """Each key's gain (end - start - flows) and its contribution to the portfolio's return.

    Per-key flows include moves between keys (a swap is a withdrawal from one key and a deposit
    into the other), so trading never shows up as gain. Without `average_capital` the simple
    Dietz denominator (start + half the net flows) is used.
    """
    flow_map = flows or {}
    keys = sorted({*start_values, *end_values, *flow_map})
    start = {
        key: finite_number(start_values.get(key, 0.0), name=f"start of {key!r}") for key in keys
    }
    end = {key: finite_number(end_values.get(key, 0.0), name=f"end of {key!r}") for key in keys}
    moved = {key: finite_number(flow_map.get(key, 0.0), name=f"flows of {key!r}") for key in keys}
    gains = {key: end[key] - start[key] - moved[key] for key in keys}
    total_gain = math.fsum(gains.values())
    if average_capital is None:
        average_capital = math.fsum(start.values()) + 0.5 * math.fsum(moved.values())
    elif not math.isfinite(average_capital):
        raise ValueError("average_capital must be finite")
    contributions = [
        Contribution(
            key=key,
            start_value=start[key],
            end_value=end[key],
            net_flows=moved[key],
            gain=gains[key],
            share_of_gain=finite_or_none(gains[key] / total_gain) if total_gain != 0 else None,
            contribution_rate=_ratio(gains[key], average_capital),
            return_rate=_ratio(gains[key], start[key] + 0.5 * moved[key]),
        )
        for key in keys
    ]
    contributions.sort(key=lambda item: -item.gain)
    return Attribution(
        total_gain=total_gain,
        average_capital=average_capital,
        contributions=tuple(contributions),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator when the denominator is positive and the result finite."""
    return finite_or_none(numerator / denominator) if denominator > 0 else None
