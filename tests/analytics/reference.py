"""Plain-Python reference computations (no numpy) that the analytics are checked against."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def assign_flows(
    times: Sequence[float], flow_times: Sequence[float], flow_amounts: Sequence[float]
) -> list[float]:
    """Flow assigned to each point: a flow in (t[i-1], t[i]] lands on point i."""
    flows = [0.0] * len(times)
    for when, amount in zip(flow_times, flow_amounts, strict=True):
        for i in range(1, len(times)):
            if times[i - 1] < when <= times[i]:
                flows[i] += amount
                break
    return flows


def nav_series(
    times: Sequence[float],
    values: Sequence[float],
    flow_times: Sequence[float],
    flow_amounts: Sequence[float],
) -> list[float]:
    """Unit-value (NAV per unit) accounting: deposits buy units at the NAV, withdrawals redeem."""
    flows = assign_flows(times, flow_times, flow_amounts)
    nav = 1.0
    units = values[0] if values[0] > 0 else 0.0
    navs = [nav]
    for i in range(1, len(values)):
        if units > 0 and nav > 0:
            nav = max((values[i] - flows[i]) / units, 0.0)
            units = units + flows[i] / nav if nav > 0 else 0.0
        else:
            # Money arriving while nothing was at risk buys units at the unchanged NAV.
            units = values[i] / nav if nav > 0 else 0.0
        if values[i] <= 0:
            units = 0.0
        navs.append(nav)
    return navs


@dataclass(frozen=True)
class LoopDrawdown:
    depth: float
    peak: int | None
    trough: int | None


def drawdown_loop(navs: Sequence[float]) -> LoopDrawdown:
    """Deepest fall from a running peak, found with one pass and no vector maths."""
    peak_value, peak_at = navs[0], 0
    worst, worst_peak, worst_trough = 0.0, None, None
    for i, nav in enumerate(navs):
        if nav >= peak_value:
            peak_value, peak_at = nav, i
        fall = nav / peak_value - 1.0
        if fall < worst:
            worst, worst_peak, worst_trough = fall, peak_at, i
    return LoopDrawdown(worst, worst_peak, worst_trough)


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def sample_std(xs: Sequence[float]) -> float:
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def per_period(annual: float, periods: float) -> float:
    return float((1.0 + annual) ** (1.0 / periods)) - 1.0


def irr_bisection(cash: Sequence[tuple[float, float]], low: float, high: float) -> float:
    """Annual IRR by plain bisection on the annual rate; cash is (years, amount) pairs."""

    def npv(rate: float) -> float:
        return math.fsum(amount * float((1.0 + rate) ** (-years)) for years, amount in cash)

    low_positive = npv(low) > 0
    assert low_positive != (npv(high) > 0), "no sign change in the bisection bracket"
    for _ in range(200):
        mid = 0.5 * (low + high)
        if (npv(mid) > 0) == low_positive:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
