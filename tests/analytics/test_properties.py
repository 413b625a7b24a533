"""Properties the issue asks of the returns (hypothesis): TWR does not depend on the chart's
sampling or on a flow that earns the portfolio's own return, a deposit is never a gain, and
the beta of a rebalanced mix of the benchmark and cash is its weight."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainfolio.analytics import (
    bucket_samples,
    interval_returns,
    rebased_index,
    summarize,
    twr,
)

HOUR = 3600.0


@st.composite
def positive_series(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    """Hourly-ish valuations, all positive, with gaps of up to a few hours."""
    n = draw(st.integers(3, 60))
    steps = draw(st.lists(st.integers(1, 5), min_size=n - 1, max_size=n - 1))
    times = [1_700_000_000.0]
    for step in steps:
        times.append(times[-1] + step * HOUR)
    values = draw(st.lists(st.integers(100, 10_000_000), min_size=n, max_size=n))
    return times, [v / 100 for v in values]


@settings(max_examples=200, deadline=None)
@given(series=positive_series(), step_hours=st.sampled_from([1, 4, 24, 168]))
def test_twr_does_not_depend_on_the_sampling_interval(
    series: tuple[list[float], list[float]], step_hours: int
) -> None:
    times, values = series
    index = rebased_index(
        returns=interval_returns(
            times=times, values=values, flow_times=[], flow_amounts=[]
        ).returns,
        base=1.0,
    )
    samples = bucket_samples(times=times, origin=978_307_200.0, step=step_hours * HOUR)
    sampled = index[samples.points[-1]] / index[samples.points[0]] - 1
    full = twr(times=times, values=values, flow_times=[], flow_amounts=[]).period_rate
    assert full is not None
    assert sampled == pytest.approx(full, rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(series=positive_series(), data=st.data())
def test_a_flow_earning_the_portfolios_return_leaves_twr_unchanged(
    series: tuple[list[float], list[float]], data: st.DataObject
) -> None:
    """A deposit at valuation k buys units at that point: every later value grows by the same
    factor. The unit value, hence the TWR, does not move."""
    times, values = series
    k = data.draw(st.integers(1, len(times) - 1))
    deposit = data.draw(st.integers(1, 1_000_000)) / 100
    factor = 1 + deposit / values[k]
    grown = values[:k] + [v * factor for v in values[k:]]
    before = twr(times=times, values=values, flow_times=[], flow_amounts=[]).period_rate
    after = twr(times=times, values=grown, flow_times=[times[k]], flow_amounts=[deposit])
    assert before is not None
    assert after.period_rate == pytest.approx(before, rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(series=positive_series(), data=st.data())
def test_a_deposit_is_never_a_gain(
    series: tuple[list[float], list[float]], data: st.DataObject
) -> None:
    """A deposit held as cash from a random instant on adds itself to every later value and to
    nothing else: the gain is the same with it as without."""
    times, values = series
    when = data.draw(st.floats(times[0] + 1, times[-1]))
    deposit = data.draw(st.integers(1, 1_000_000)) / 100
    with_cash = [v + deposit if t >= when else v for t, v in zip(times, values, strict=True)]
    plain = summarize(times=times, values=values, flow_times=[], flow_amounts=[])
    funded = summarize(times=times, values=with_cash, flow_times=[when], flow_amounts=[deposit])
    assert funded.absolute_gain == pytest.approx(plain.absolute_gain, abs=1e-6)
    assert funded.deposits == deposit


@settings(max_examples=200, deadline=None)
@given(
    weight=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(10, 200),
)
def test_beta_of_a_benchmark_and_cash_mix_is_its_weight(weight: float, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    bench = 2000 * np.cumprod(np.concatenate(([1.0], 1 + rng.normal(0, 0.02, n))))
    steps = bench[1:] / bench[:-1] - 1
    values = 10_000 * np.cumprod(np.concatenate(([1.0], 1 + weight * steps)))
    times = np.arange(n + 1) * HOUR
    summary = summarize(
        times=times, values=values, flow_times=[], flow_amounts=[], benchmark_values=bench
    )
    assert summary.benchmark is not None
    assert summary.benchmark.beta == pytest.approx(weight, abs=1e-6)
    assert summary.benchmark.correlation == pytest.approx(1.0, abs=1e-6)
    assert math.isclose(summary.twr or 0, values[-1] / values[0] - 1, rel_tol=1e-9)
