"""Risk of a return series: volatility, Sharpe, Sortino, drawdown, and comparison to a benchmark.

Every function takes per-interval returns (fractions) and, where it annualises, an explicit
`periods_per_year` (see `annualisation_factor`). Too few returns, or a zero spread, give None:
a ratio is never NaN or infinite. A spread is zero when it is below `SPREAD_TOLERANCE` of the
mean absolute return: a riskless series computed in floating point has a spread of rounding
noise, and a ratio divided by it is noise too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chainfolio.analytics.errors import NotEnoughData
from chainfolio.analytics.returns import SECONDS_PER_YEAR, log_growth
from chainfolio.analytics.validation import FloatArray, finite_or_none, float_vector

SPREAD_TOLERANCE = 1e-9
"""A standard deviation at most this fraction of the mean absolute value counts as zero."""


@dataclass(frozen=True, slots=True)
class Drawdown:
    """Deepest fall of the growth index from a running peak; depth <= 0, indices are points."""

    depth: float
    peak_index: int | None
    trough_index: int | None
    recovery_index: int | None


@dataclass(frozen=True, slots=True)
class IntervalExtremes:
    """Best and worst single-interval return and their positions in the returns array."""

    best_return: float
    best_index: int
    worst_return: float
    worst_index: int


@dataclass(frozen=True, slots=True)
class BenchmarkComparison:
    """Portfolio against a benchmark over the same intervals; annualised where it says so."""

    beta: float | None
    alpha: float | None
    correlation: float | None
    tracking_error: float | None
    information_ratio: float | None
    excess_return: float | None


def annualisation_factor(*, times: npt.ArrayLike) -> float:
    """Periods per year implied by the mean interval length of `times` (POSIX seconds)."""
    time_array = float_vector(name="times", data=times)
    if time_array.size < 2:
        raise NotEnoughData(f"need at least 2 times, got {time_array.size}")
    span = float(time_array[-1] - time_array[0])
    if span <= 0:
        raise ValueError("times must be increasing")
    return SECONDS_PER_YEAR * (time_array.size - 1) / span


def spread(values: npt.ArrayLike, *, scale: float | None = None) -> float:
    """Sample standard deviation (ddof=1); 0 when at most `SPREAD_TOLERANCE` of `scale`.

    `scale` is the size of the numbers the values were computed from (default: their mean
    absolute value); a difference of two equal series is rounding noise against its inputs.
    """
    array = float_vector(name="values", data=values)
    if array.size < 2:
        return 0.0
    deviation = float(np.std(array, ddof=1))
    size = float(np.mean(np.abs(array))) if scale is None else scale
    return 0.0 if deviation <= SPREAD_TOLERANCE * size else deviation


def volatility(*, returns: npt.ArrayLike, periods_per_year: float) -> float | None:
    """Annualised standard deviation (sample, ddof=1) of the interval returns."""
    rates = float_vector(name="returns", data=returns)
    _check_periods(periods_per_year)
    if rates.size < 2:
        return None
    return finite_or_none(spread(rates) * math.sqrt(periods_per_year))


def sharpe_ratio(
    *, returns: npt.ArrayLike, periods_per_year: float, risk_free_rate: float = 0.0
) -> float | None:
    """Annualised Sharpe ratio; `risk_free_rate` is annual and compounded down to one period."""
    rates = float_vector(name="returns", data=returns)
    _check_periods(periods_per_year)
    if rates.size < 2:
        return None
    excess = rates - _per_period(risk_free_rate, periods_per_year, name="risk_free_rate")
    excess_spread = spread(excess, scale=float(np.mean(np.abs(rates))) + abs(risk_free_rate))
    if excess_spread == 0:
        return None
    return finite_or_none(float(np.mean(excess)) / excess_spread * math.sqrt(periods_per_year))


def sortino_ratio(
    *, returns: npt.ArrayLike, periods_per_year: float, target_return: float = 0.0
) -> float | None:
    """Annualised Sortino ratio against an annual minimum acceptable return.

    The API passes the risk-free rate as the target unless the caller names one (`mar`).
    """
    rates = float_vector(name="returns", data=returns)
    _check_periods(periods_per_year)
    if rates.size < 2:
        return None
    target = _per_period(target_return, periods_per_year, name="target_return")
    shortfall = np.minimum(rates - target, 0.0)
    # Downside deviation divides by all intervals, not only the losing ones (Sortino & Price).
    downside = math.sqrt(float(np.mean(shortfall**2)))
    if downside <= SPREAD_TOLERANCE * float(np.mean(np.abs(rates))):
        return None
    return finite_or_none((float(np.mean(rates)) - target) / downside * math.sqrt(periods_per_year))


def max_drawdown(*, returns: npt.ArrayLike) -> Drawdown:
    """Largest peak-to-trough fall of the growth index built from `returns` (flow-neutral)."""
    logs = log_growth(returns=returns)
    running_peak = np.maximum.accumulate(logs)
    # In log space the index never overflows; exp(<= 0) is always in [0, 1].
    depths = np.expm1(logs - running_peak)
    trough = int(np.argmin(depths))
    depth = float(depths[trough])
    if depth >= 0:
        return Drawdown(depth=0.0, peak_index=None, trough_index=None, recovery_index=None)
    peak = trough - int(np.argmax(logs[trough::-1]))
    recovered = np.flatnonzero(logs[trough:] >= logs[peak])
    return Drawdown(
        depth=depth,
        peak_index=peak,
        trough_index=trough,
        recovery_index=trough + int(recovered[0]) if recovered.size else None,
    )


def interval_extremes(*, returns: npt.ArrayLike) -> IntervalExtremes | None:
    """Best and worst interval return (first occurrence on ties); None for no returns."""
    rates = float_vector(name="returns", data=returns)
    if rates.size == 0:
        return None
    best, worst = int(np.argmax(rates)), int(np.argmin(rates))
    return IntervalExtremes(
        best_return=float(rates[best]),
        best_index=best,
        worst_return=float(rates[worst]),
        worst_index=worst,
    )


def price_returns(*, prices: npt.ArrayLike) -> FloatArray:
    """Interval returns of a price or index series such as a benchmark; prices must be > 0."""
    price_array = float_vector(name="prices", data=prices)
    if np.any(price_array <= 0):
        raise ValueError("benchmark prices must be positive")
    ratios: FloatArray = price_array[1:] / price_array[:-1] - 1.0
    return ratios


def benchmark_comparison(
    *,
    returns: npt.ArrayLike,
    benchmark_returns: npt.ArrayLike,
    periods_per_year: float,
    risk_free_rate: float = 0.0,
) -> BenchmarkComparison:
    """Beta, Jensen's alpha, correlation, tracking error, information ratio, excess return.

    Alpha is annualised geometrically: (1 + alpha per period) ** periods_per_year - 1.
    """
    rates = float_vector(name="returns", data=returns)
    bench = float_vector(name="benchmark_returns", data=benchmark_returns)
    if rates.size != bench.size:
        raise ValueError(
            f"returns and benchmark_returns differ in length ({rates.size} != {bench.size})"
        )
    _check_periods(periods_per_year)
    if rates.size < 2:
        return BenchmarkComparison(None, None, None, None, None, None)
    risk_free = _per_period(risk_free_rate, periods_per_year, name="risk_free_rate")
    covariance = np.cov(rates, bench, ddof=1)
    bench_variance, own_variance = float(covariance[1, 1]), float(covariance[0, 0])
    bench_moves, own_moves = spread(bench) > 0, spread(rates) > 0
    beta = float(covariance[0, 1]) / bench_variance if bench_moves else None
    alpha = None
    if beta is not None:
        alpha_per_period = float(np.mean(rates - risk_free)) - beta * float(
            np.mean(bench - risk_free)
        )
        if alpha_per_period > -1:
            with np.errstate(over="ignore"):
                alpha = finite_or_none(np.expm1(periods_per_year * math.log1p(alpha_per_period)))
    correlation = None
    if bench_moves and own_moves:
        correlation = float(
            np.clip(covariance[0, 1] / math.sqrt(bench_variance * own_variance), -1.0, 1.0)
        )
    active = rates - bench
    active_spread = spread(
        active, scale=float(np.mean(np.abs(rates))) + float(np.mean(np.abs(bench)))
    )
    tracking_error = finite_or_none(active_spread * math.sqrt(periods_per_year))
    information_ratio = None
    if active_spread > 0:
        information_ratio = finite_or_none(
            float(np.mean(active)) / active_spread * math.sqrt(periods_per_year)
        )
    with np.errstate(over="ignore", invalid="ignore"):
        excess = np.expm1(log_growth(returns=rates)[-1]) - np.expm1(log_growth(returns=bench)[-1])
    return BenchmarkComparison(
        beta=finite_or_none(beta) if beta is not None else None,
        alpha=alpha,
        correlation=correlation,
        tracking_error=tracking_error,
        information_ratio=information_ratio,
        excess_return=finite_or_none(excess),
    )


def _check_periods(periods_per_year: float) -> None:
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year must be a positive number, got {periods_per_year}")


def _per_period(annual_rate: float, periods_per_year: float, *, name: str) -> float:
    if not (math.isfinite(annual_rate) and annual_rate > -1):
        raise ValueError(f"{name} must be a finite annual rate above -1, got {annual_rate}")
    return math.expm1(math.log1p(annual_rate) / periods_per_year)
