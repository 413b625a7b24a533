"""Flow-neutral returns: per-interval, time-weighted (TWR), money-weighted (MWR/IRR), simple gain.

Flow timing: an external flow at time f with t[i-1] < f <= t[i] is taken to happen at t[i],
just before the valuation v[i], so v[i] already contains it and the interval return is
r[i] = (v[i] - F[i]) / v[i-1] - 1. Flows at or before t[0] are already inside v[0] and flows
after t[-1] belong to a later period; both are ignored. docs/METRICS.md has every formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chainfolio.analytics.errors import NotEnoughData
from chainfolio.analytics.validation import (
    FloatArray,
    cash_flows,
    finite_or_none,
    float_vector,
    valuation_series,
)

SECONDS_PER_YEAR = 365 * 86_400.0
"""Crypto trades every day, so a year is 365 calendar days (hourly data: 8,760 periods)."""

_ROOT_GRID_POINTS = 481
_ROOT_GRID_LIMIT = 60.0
_ROOT_MAX_ITERATIONS = 200


@dataclass(frozen=True, slots=True, eq=False)
class IntervalReturns:
    """Per-interval flow-neutral returns; interval k runs from point k to point k + 1."""

    returns: FloatArray
    flows: FloatArray
    valid: npt.NDArray[np.bool_]

    @property
    def skipped(self) -> int:
        """Number of intervals that started without capital at risk (their return is 0)."""
        return int(self.valid.size - np.count_nonzero(self.valid))


@dataclass(frozen=True, slots=True)
class TimeWeightedReturn:
    """Chained flow-neutral return; rates are fractions (0.1 = 10 %), None when not finite."""

    period_rate: float | None
    annualised_rate: float | None
    intervals: int
    skipped_intervals: int


@dataclass(frozen=True, slots=True)
class MoneyWeightedReturn:
    """Internal rate of return over the period and per year; fractions."""

    period_rate: float
    annualised_rate: float | None


@dataclass(frozen=True, slots=True)
class SimpleGain:
    """Gain net of deposits and withdrawals; withdrawals are negative, rates are fractions."""

    start_value: float
    end_value: float
    deposits: float
    withdrawals: float
    net_flows: float
    absolute_gain: float
    average_capital: float
    gain_rate: float | None
    roi: float | None


def interval_returns(
    *,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flow_times: npt.ArrayLike,
    flow_amounts: npt.ArrayLike,
    min_capital: float = 0.0,
) -> IntervalReturns:
    """Flow-neutral return of each interval; intervals starting at value <= min_capital give 0."""
    time_array, value_array = valuation_series(times=times, values=values)
    flow_time_array, amount_array = cash_flows(flow_times=flow_times, flow_amounts=flow_amounts)
    if not (math.isfinite(min_capital) and min_capital >= 0):
        raise ValueError(f"min_capital must be a finite number >= 0, got {min_capital}")
    flows = _bin_flows(time_array, flow_time_array, amount_array)
    start = value_array[:-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = (value_array[1:] - flows) / start - 1.0
    # Nothing (or a net debt) at the start of an interval means no capital was at risk: the
    # interval is skipped and the chain resumes from the next positive valuation.
    valid = (start > min_capital) & np.isfinite(raw)
    # A loss larger than the capital (value turning into net debt) is a total loss for the
    # return chain; the extra debt stays visible in the values, not in the index.
    returns = np.where(valid, np.maximum(raw, -1.0), 0.0)
    return IntervalReturns(returns=returns, flows=flows, valid=valid)


def log_growth(*, returns: npt.ArrayLike) -> FloatArray:
    """Cumulative log growth ln(index) at every point, starting with 0 (may reach -inf)."""
    rates = float_vector(name="returns", data=returns)
    if np.any(rates < -1.0):
        raise ValueError("returns below -1 (-100 %) are impossible")
    with np.errstate(divide="ignore"):
        steps = np.log1p(rates)
    return np.concatenate(([0.0], np.cumsum(steps)))


def rebased_index(*, returns: npt.ArrayLike, base: float = 100.0) -> FloatArray:
    """Growth index of a return series starting at `base` (unit value / NAV when base is 1)."""
    with np.errstate(over="ignore"):
        return base * np.exp(log_growth(returns=returns))


def annualise(*, log_growth_total: float, span_seconds: float) -> float | None:
    """Annualised rate from total log growth over `span_seconds`; None if it overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        return finite_or_none(np.expm1(log_growth_total * SECONDS_PER_YEAR / span_seconds))


def twr(
    *,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flow_times: npt.ArrayLike,
    flow_amounts: npt.ArrayLike,
    min_capital: float = 0.0,
) -> TimeWeightedReturn:
    """Time-weighted return: the interval returns chained geometrically."""
    time_array = float_vector(name="times", data=times)
    intervals = interval_returns(
        times=time_array,
        values=values,
        flow_times=flow_times,
        flow_amounts=flow_amounts,
        min_capital=min_capital,
    )
    if not np.any(intervals.valid):
        raise NotEnoughData("no interval started with capital at risk")
    total = float(log_growth(returns=intervals.returns)[-1])
    with np.errstate(over="ignore"):
        period_rate = finite_or_none(np.expm1(total))
    return TimeWeightedReturn(
        period_rate=period_rate,
        annualised_rate=annualise(
            log_growth_total=total, span_seconds=float(time_array[-1] - time_array[0])
        ),
        intervals=int(intervals.returns.size),
        skipped_intervals=intervals.skipped,
    )


def mwr(
    *,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flow_times: npt.ArrayLike,
    flow_amounts: npt.ArrayLike,
) -> MoneyWeightedReturn | None:
    """Money-weighted return (IRR): start value invested, flows at their times, end value out."""
    time_array, value_array = valuation_series(times=times, values=values)
    flow_time_array, amount_array = cash_flows(flow_times=flow_times, flow_amounts=flow_amounts)
    start, end = float(time_array[0]), float(time_array[-1])
    inside = (flow_time_array > start) & (flow_time_array <= end)
    span = end - start
    # The investor's view: money put in is negative, money taken out (and the end value) positive.
    cash = np.concatenate(([-value_array[0]], -amount_array[inside], [value_array[-1]]))
    tau = np.concatenate(([0.0], (flow_time_array[inside] - start) / span, [1.0]))
    log_rate = _solve_log_rate(cash=cash, tau=tau)
    if log_rate is None:
        return None
    return MoneyWeightedReturn(
        period_rate=float(np.expm1(log_rate)),
        annualised_rate=annualise(log_growth_total=log_rate, span_seconds=span),
    )


def simple_gain(
    *,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flow_times: npt.ArrayLike,
    flow_amounts: npt.ArrayLike,
) -> SimpleGain:
    """Absolute gain, Modified Dietz gain rate and ROI; flows never count as gain."""
    time_array, value_array = valuation_series(times=times, values=values)
    flow_time_array, amount_array = cash_flows(flow_times=flow_times, flow_amounts=flow_amounts)
    start, end = float(time_array[0]), float(time_array[-1])
    inside = (flow_time_array > start) & (flow_time_array <= end)
    amounts = amount_array[inside]
    # Modified Dietz: each flow counts for the fraction of the period it was invested.
    weights = (end - flow_time_array[inside]) / (end - start)
    start_value, end_value = float(value_array[0]), float(value_array[-1])
    deposits = float(amounts[amounts > 0].sum())
    withdrawals = float(amounts[amounts < 0].sum())
    net_flows = deposits + withdrawals
    gain = end_value - start_value - net_flows
    average_capital = start_value + float(np.dot(weights, amounts))
    committed = start_value + deposits
    return SimpleGain(
        start_value=start_value,
        end_value=end_value,
        deposits=deposits,
        withdrawals=withdrawals,
        net_flows=net_flows,
        absolute_gain=gain,
        average_capital=average_capital,
        gain_rate=finite_or_none(gain / average_capital) if average_capital > 0 else None,
        roi=finite_or_none(gain / committed) if committed > 0 else None,
    )


def _bin_flows(times: FloatArray, flow_times: FloatArray, amounts: FloatArray) -> FloatArray:
    position = np.searchsorted(times, flow_times, side="left")
    inside = (position >= 1) & (position < times.size)
    binned: FloatArray = np.bincount(
        position[inside] - 1, weights=amounts[inside], minlength=max(times.size - 1, 0)
    ).astype(np.float64)
    return binned


def _solve_log_rate(*, cash: FloatArray, tau: FloatArray) -> float | None:
    """Root g of NPV(g) = sum(cash * exp(-g * tau)) nearest to 0; None when there is none.

    Solving for g = ln(1 + period rate) keeps the rate above -100 % by construction. A sinh
    grid over g in [-60, 60] (dense near 0) brackets every sign change; each bracket is solved
    by Newton's method that falls back to bisection, and the root of smallest |g| wins.
    """
    scale = float(np.max(np.abs(cash)))
    if scale == 0:
        return None
    unit_cash = cash / scale
    grid = np.sinh(
        np.linspace(-np.arcsinh(_ROOT_GRID_LIMIT), np.arcsinh(_ROOT_GRID_LIMIT), _ROOT_GRID_POINTS)
    )
    npv = np.exp(-np.outer(grid, tau)) @ unit_cash
    roots = [float(g) for g in grid[npv == 0.0]]
    signs = np.sign(npv)
    for k in np.flatnonzero(signs[:-1] * signs[1:] < 0):
        roots.append(_newton_bisect(cash=unit_cash, tau=tau, low=grid[k], high=grid[k + 1]))
    if not roots:
        return None
    return min(roots, key=abs)


def _newton_bisect(*, cash: FloatArray, tau: FloatArray, low: float, high: float) -> float:
    """Root inside [low, high] where NPV changes sign: Newton steps kept inside the bracket."""

    def npv(g: float) -> float:
        return float(np.dot(cash, np.exp(-g * tau)))

    def slope(g: float) -> float:
        return float(-np.dot(cash * tau, np.exp(-g * tau)))

    low_value, high_value = npv(low), npv(high)
    if math.copysign(1.0, low_value) == math.copysign(1.0, high_value):
        # The grid saw a sign change that this evaluation (another summation order) does not:
        # NPV at one end is zero up to rounding, and that end is the root. Bisecting anyway
        # walked to the other end (a 0 % IRR came out as 2 % when deposits at the end value's
        # time cancelled it to rounding).
        return low if abs(low_value) <= abs(high_value) else high
    low_sign = math.copysign(1.0, low_value)
    guess = 0.5 * (low + high)
    previous = math.inf
    for _ in range(_ROOT_MAX_ITERATIONS):
        value = npv(guess)
        if value == 0.0:
            return guess
        if math.copysign(1.0, value) == low_sign:
            low = guess
        else:
            high = guess
        derivative = slope(guess)
        step = guess - value / derivative if derivative != 0 else math.nan
        # Newton only while it stays inside the bracket and at least halves |NPV|.
        if not (low < step < high) or abs(value) > 0.5 * previous:
            step = 0.5 * (low + high)
        previous = abs(value)
        if abs(step - guess) <= 1e-15 * max(1.0, abs(guess)) or high - low <= 1e-15:
            return step
        guess = step
    return guess
