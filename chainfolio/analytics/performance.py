"""Every metric of one period in one call (attribution of the gain is `analytics.attribution`).

A summary never holds NaN or Infinity: a metric that cannot be computed is None, with a
reason. One valuation gives the figures that exist; none raises `NotEnoughData`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from chainfolio.analytics.attribution import Attribution, attribution
from chainfolio.analytics.errors import NotEnoughData
from chainfolio.analytics.returns import (
    SECONDS_PER_YEAR,
    IntervalReturns,
    interval_returns,
    mwr,
    rebased_index,
    simple_gain,
    twr,
)
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
from chainfolio.analytics.sampling import bucket_samples
from chainfolio.analytics.validation import (
    Amount,
    FloatArray,
    cash_flows,
    float_vector,
    valuation_series,
)


@dataclass(frozen=True, slots=True)
class PerformanceSummary:
    """Every metric of one period; times are POSIX seconds, rates fractions (0.1 = 10 %).

    `reasons` says, for each metric that is None, why it could not be computed.
    """

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
    max_drawdown: float | None
    drawdown_peak_time: float | None
    drawdown_trough_time: float | None
    drawdown_recovery_time: float | None
    best_interval_return: float | None
    best_interval_end_time: float | None
    worst_interval_return: float | None
    worst_interval_end_time: float | None
    periods_per_year: float | None
    intervals: int
    skipped_intervals: int
    benchmark: BenchmarkComparison | None
    attribution: Attribution | None
    valuations: int = 0
    reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class _RiskSeries:
    """The returns risk figures are computed on, where each ends, and how many per year."""

    returns: FloatArray
    end_points: npt.NDArray[np.intp]
    periods_per_year: float | None
    benchmark_returns: FloatArray | None
    skipped: int


def summarize(
    *,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flow_times: npt.ArrayLike,
    flow_amounts: npt.ArrayLike,
    risk_free_rate: float = 0.0,
    target_return: float | None = None,
    min_capital: float = 0.0,
    risk_step: float | None = None,
    origin: float = 0.0,
    benchmark_values: npt.ArrayLike | None = None,
    start_values_by_key: Mapping[str, Amount] | None = None,
    end_values_by_key: Mapping[str, Amount] | None = None,
    flows_by_key: Mapping[str, Amount] | None = None,
) -> PerformanceSummary:
    """Gain, returns, risk, drawdown, extremes, optional benchmark and attribution of a period.

    Returns (TWR, MWR, gain, drawdown) use every valuation given. Risk figures use every
    interval between valuations, or with `risk_step` (seconds) the complete steps of a regular
    grid of that step from `origin` (`bucket_samples`). The Sortino target is `target_return`,
    else the risk-free rate. One valuation gives the value and a zero gain, None elsewhere.
    """
    time_array = float_vector(name="times", data=times)
    if time_array.size == 1:
        value_array = float_vector(name="values", data=values)
        if value_array.size != 1:
            raise ValueError(f"times and values differ in length (1 != {value_array.size})")
        return _single_valuation(
            time=float(time_array[0]),
            value=float(value_array[0]),
            start_values_by_key=start_values_by_key,
            end_values_by_key=end_values_by_key,
        )
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
    bench_prices = None
    if benchmark_values is not None:
        bench_prices = float_vector(name="benchmark_values", data=benchmark_values)
        if bench_prices.size != time_array.size:
            raise ValueError("benchmark_values must have one price per valuation time")
    risk = _risk_series(
        times=time_array,
        values=value_array,
        intervals=intervals,
        min_capital=min_capital,
        risk_step=risk_step,
        origin=origin,
        bench_prices=bench_prices,
    )
    drawdown = max_drawdown(returns=intervals.returns)
    extremes = interval_extremes(returns=risk.returns)

    def time_at(point: int | None) -> float | None:
        return None if point is None else float(time_array[point])

    periods = risk.periods_per_year
    target = risk_free_rate if target_return is None else target_return
    enough = periods is not None and risk.returns.size >= 2
    volatility_value = sharpe = sortino = None
    benchmark = None
    if enough and periods is not None:
        volatility_value = volatility(returns=risk.returns, periods_per_year=periods)
        sharpe = sharpe_ratio(
            returns=risk.returns, periods_per_year=periods, risk_free_rate=risk_free_rate
        )
        sortino = sortino_ratio(
            returns=risk.returns, periods_per_year=periods, target_return=target
        )
        if risk.benchmark_returns is not None:
            benchmark = benchmark_comparison(
                returns=risk.returns,
                benchmark_returns=risk.benchmark_returns,
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
    reasons = _reasons(
        returns=risk.returns.size,
        enough=enough,
        time_weighted=time_weighted is not None,
        money_weighted=money_weighted is not None,
        volatility_value=volatility_value,
        sharpe=sharpe,
        sortino=sortino,
        gain_rate=gain.gain_rate,
        roi=gain.roi,
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
        volatility=volatility_value,
        sharpe_ratio=sharpe,
        sortino_ratio=sortino,
        max_drawdown=drawdown.depth,
        drawdown_peak_time=time_at(drawdown.peak_index),
        drawdown_trough_time=time_at(drawdown.trough_index),
        drawdown_recovery_time=time_at(drawdown.recovery_index),
        best_interval_return=extremes.best_return if extremes else None,
        best_interval_end_time=time_at(int(risk.end_points[extremes.best_index]))
        if extremes
        else None,
        worst_interval_return=extremes.worst_return if extremes else None,
        worst_interval_end_time=time_at(int(risk.end_points[extremes.worst_index]))
        if extremes
        else None,
        periods_per_year=periods if periods is not None else None,
        intervals=int(risk.returns.size + risk.skipped),
        skipped_intervals=risk.skipped,
        benchmark=benchmark,
        attribution=contributions,
        valuations=int(time_array.size),
        reasons=reasons,
    )


def _risk_series(
    *,
    times: FloatArray,
    values: FloatArray,
    intervals: IntervalReturns,
    min_capital: float,
    risk_step: float | None,
    origin: float,
    bench_prices: FloatArray | None,
) -> _RiskSeries:
    """Risk returns: every interval with capital at risk, or the complete steps of a grid."""
    if risk_step is None:
        at_risk = np.flatnonzero(intervals.valid)
        bench = None
        if bench_prices is not None:
            bench = price_returns(prices=bench_prices)[at_risk]
        return _RiskSeries(
            returns=intervals.returns[at_risk],
            end_points=(at_risk + 1).astype(np.intp),
            periods_per_year=annualisation_factor(times=times),
            benchmark_returns=bench,
            skipped=intervals.skipped,
        )
    samples = bucket_samples(times=times, origin=origin, step=risk_step)
    index = rebased_index(returns=intervals.returns, base=1.0)
    begin, finish = samples.points[:-1], samples.points[1:]
    # A step counts when it is complete and started with capital at risk.
    counted = samples.complete & (values[begin] > min_capital) & (index[begin] > 0)
    begin, finish = begin[counted], finish[counted]
    bench = None
    if bench_prices is not None:
        bench = bench_prices[finish] / bench_prices[begin] - 1.0
    return _RiskSeries(
        returns=index[finish] / index[begin] - 1.0,
        end_points=finish,
        periods_per_year=SECONDS_PER_YEAR / risk_step,
        benchmark_returns=bench,
        skipped=int(samples.complete.size - begin.size),
    )


def _reasons(
    *,
    returns: int,
    enough: bool,
    time_weighted: bool,
    money_weighted: bool,
    volatility_value: float | None,
    sharpe: float | None,
    sortino: float | None,
    gain_rate: float | None,
    roi: float | None,
) -> dict[str, str]:
    """Why each metric that is None could not be computed."""
    reasons: dict[str, str] = {}
    if not time_weighted:
        reasons["twr"] = "no interval started with capital at risk"
    if not money_weighted:
        reasons["mwr"] = "the cash flows have no internal rate of return"
    if gain_rate is None:
        reasons["gain_rate"] = "no average capital invested"
    if roi is None:
        reasons["roi"] = "no capital committed"
    if not enough:
        few = f"{returns} complete return interval(s); at least 2 are needed"
        for name in ("volatility", "sharpe_ratio", "sortino_ratio"):
            reasons[name] = few
        return reasons
    if volatility_value is None:
        reasons["volatility"] = "not finite"
    if sharpe is None:
        reasons["sharpe_ratio"] = "the returns in excess of the risk-free rate do not vary"
    if sortino is None:
        reasons["sortino_ratio"] = "no return fell below the target"
    return reasons


def _single_valuation(
    *,
    time: float,
    value: float,
    start_values_by_key: Mapping[str, Amount] | None,
    end_values_by_key: Mapping[str, Amount] | None,
) -> PerformanceSummary:
    """The figures one valuation gives: its value and a zero gain; every rate is None."""
    why = "one valuation in the period: a return needs two"
    contributions = None
    if start_values_by_key is not None or end_values_by_key is not None:
        contributions = attribution(
            start_values=start_values_by_key or {}, end_values=end_values_by_key or {}
        )
    rates = (
        "gain_rate",
        "roi",
        "twr",
        "twr_annualised",
        "mwr",
        "mwr_annualised",
        "volatility",
        "sharpe_ratio",
        "sortino_ratio",
        "max_drawdown",
        "best_interval",
        "worst_interval",
    )
    return PerformanceSummary(
        start_time=time,
        end_time=time,
        start_value=value,
        end_value=value,
        deposits=0.0,
        withdrawals=0.0,
        net_flows=0.0,
        absolute_gain=0.0,
        gain_rate=None,
        roi=None,
        twr=None,
        twr_annualised=None,
        mwr=None,
        mwr_annualised=None,
        volatility=None,
        sharpe_ratio=None,
        sortino_ratio=None,
        max_drawdown=None,
        drawdown_peak_time=None,
        drawdown_trough_time=None,
        drawdown_recovery_time=None,
        best_interval_return=None,
        best_interval_end_time=None,
        worst_interval_return=None,
        worst_interval_end_time=None,
        periods_per_year=None,
        intervals=0,
        skipped_intervals=0,
        benchmark=None,
        attribution=contributions,
        valuations=1,
        reasons=dict.fromkeys(rates, why),
    )
