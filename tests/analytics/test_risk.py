"""Risk metrics against plain-Python loops, np.cov and scipy.stats.linregress."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from chainfolio.analytics import (
    annualisation_factor,
    benchmark_comparison,
    interval_extremes,
    interval_returns,
    max_drawdown,
    price_returns,
    rebased_index,
    sharpe_ratio,
    sortino_ratio,
    volatility,
)
from tests.analytics.reference import drawdown_loop, mean, per_period, sample_std

HOUR = 3600.0
returns_strategy = st.lists(st.floats(-0.99, 2.0), min_size=0, max_size=60)


def random_returns(seed: int, n: int, scale: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0002, scale) for _ in range(n)]


def test_annualisation_factor_follows_the_interval_length() -> None:
    hourly = [i * HOUR for i in range(8760)]
    assert annualisation_factor(times=hourly) == pytest.approx(8760 * 8759 / 8759)
    assert annualisation_factor(times=[0.0, 86_400.0, 2 * 86_400.0]) == pytest.approx(365.0)
    # A missing snapshot lengthens the mean interval: 3 intervals over 4 hours.
    assert annualisation_factor(times=[0.0, HOUR, 3 * HOUR, 4 * HOUR]) == pytest.approx(
        8760 * 3 / 4
    )


@pytest.mark.parametrize("seed", range(5))
def test_volatility_sharpe_sortino_match_loops(seed: int) -> None:
    rates = random_returns(seed, 500)
    periods = 8760.0
    assert volatility(returns=rates, periods_per_year=periods) == pytest.approx(
        sample_std(rates) * math.sqrt(periods), rel=1e-10
    )
    rf = per_period(0.04, periods)
    excess = [r - rf for r in rates]
    expected_sharpe = mean(excess) / sample_std(excess) * math.sqrt(periods)
    assert sharpe_ratio(
        returns=rates, periods_per_year=periods, risk_free_rate=0.04
    ) == pytest.approx(expected_sharpe, rel=1e-9)
    target = per_period(0.02, periods)
    downside = math.sqrt(sum(min(r - target, 0.0) ** 2 for r in rates) / len(rates))
    expected_sortino = (mean(rates) - target) / downside * math.sqrt(periods)
    assert sortino_ratio(
        returns=rates, periods_per_year=periods, target_return=0.02
    ) == pytest.approx(expected_sortino, rel=1e-9)


def test_ratios_are_none_when_undefined() -> None:
    flat = [0.01] * 10
    assert volatility(returns=[0.1], periods_per_year=365) is None
    assert volatility(returns=flat, periods_per_year=365) == pytest.approx(0.0, abs=1e-15)
    assert sharpe_ratio(returns=[0.0] * 10, periods_per_year=365) is None
    assert sharpe_ratio(returns=[0.1], periods_per_year=365) is None
    # No interval below the target: the downside deviation is 0, the ratio undefined.
    assert sortino_ratio(returns=flat, periods_per_year=365) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"periods_per_year": 0.0}, "periods_per_year"),
        ({"periods_per_year": 365.0, "risk_free_rate": -1.0}, "risk_free_rate"),
        ({"periods_per_year": math.inf}, "periods_per_year"),
    ],
)
def test_invalid_parameters_raise(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sharpe_ratio(returns=[0.1, 0.2], **kwargs)


def test_drawdown_hand_case() -> None:
    # Index: 1, 1.1, 0.55, 0.66, 1.32 -> falls 50 % from point 1 to 2, recovers at point 4.
    drawdown = max_drawdown(returns=[0.1, -0.5, 0.2, 1.0])
    assert drawdown.depth == pytest.approx(-0.5)
    assert (drawdown.peak_index, drawdown.trough_index, drawdown.recovery_index) == (1, 2, 4)
    unrecovered = max_drawdown(returns=[0.1, -0.5, 0.2])
    assert unrecovered.recovery_index is None


def test_no_drawdown_when_the_index_never_falls() -> None:
    drawdown = max_drawdown(returns=[0.0, 0.1, 0.0])
    assert drawdown.depth == 0.0
    assert drawdown.peak_index is None
    assert max_drawdown(returns=[]).depth == 0.0


def test_withdrawal_is_not_a_drawdown() -> None:
    intervals = interval_returns(
        times=[0.0, HOUR, 2 * HOUR],
        values=[1000.0, 100.0, 101.0],
        flow_times=[HOUR],
        flow_amounts=[-900.0],
    )
    assert max_drawdown(returns=intervals.returns).depth == 0.0


def test_total_loss_is_a_full_drawdown() -> None:
    drawdown = max_drawdown(returns=[0.5, -1.0, 0.0])
    assert drawdown.depth == -1.0
    assert (drawdown.peak_index, drawdown.trough_index) == (1, 2)


@settings(max_examples=300, deadline=None)
@given(returns_strategy)
def test_drawdown_matches_a_loop(rates: list[float]) -> None:
    navs = [1.0]
    for rate in rates:
        navs.append(navs[-1] * (1 + rate))
    expected = drawdown_loop(navs)
    drawdown = max_drawdown(returns=rates)
    assert drawdown.depth == pytest.approx(expected.depth, rel=1e-9, abs=1e-12)
    if expected.depth < -1e-9:
        peak, trough = drawdown.peak_index, drawdown.trough_index
        assert peak is not None
        assert trough is not None
        # Equal drawdowns may be told apart by rounding alone, so check what the indices
        # describe rather than which of the tied pairs they name.
        assert peak < trough
        assert navs[trough] / navs[peak] - 1 == pytest.approx(expected.depth, rel=1e-9, abs=1e-12)
        assert navs[peak] == pytest.approx(max(navs[: trough + 1]), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-0.5, 0.5), min_size=2, max_size=60), st.floats(1.0, 10_000.0))
def test_vol_and_sharpe_match_loops_on_random_series(rates: list[float], periods: float) -> None:
    vol = volatility(returns=rates, periods_per_year=periods)
    assert vol == pytest.approx(sample_std(rates) * math.sqrt(periods), rel=1e-9, abs=1e-12)
    spread = sample_std(rates)
    sharpe = sharpe_ratio(returns=rates, periods_per_year=periods)
    if spread > 1e-9:
        assert sharpe == pytest.approx(mean(rates) / spread * math.sqrt(periods), rel=1e-7)


def test_extremes() -> None:
    extremes = interval_extremes(returns=[0.01, -0.2, 0.3, 0.3, -0.2])
    assert extremes is not None
    assert (extremes.best_return, extremes.best_index) == (0.3, 2)
    assert (extremes.worst_return, extremes.worst_index) == (-0.2, 1)
    assert interval_extremes(returns=[]) is None


def test_rebased_benchmark_prices_start_at_100() -> None:
    prices = [2000.0, 2100.0, 1900.0, 2500.0]
    index = rebased_index(returns=price_returns(prices=prices))
    assert index.tolist() == pytest.approx([100 * p / prices[0] for p in prices])
    with pytest.raises(ValueError, match="positive"):
        price_returns(prices=[1.0, 0.0])


@pytest.mark.parametrize("seed", range(5))
def test_benchmark_comparison_matches_linregress_and_loops(seed: int) -> None:
    rng = random.Random(seed)
    bench = [rng.gauss(0.0003, 0.02) for _ in range(400)]
    own = [0.0001 + 1.3 * b + rng.gauss(0, 0.01) for b in bench]
    periods, rf_annual = 365.0, 0.03
    result = benchmark_comparison(
        returns=own, benchmark_returns=bench, periods_per_year=periods, risk_free_rate=rf_annual
    )
    fit = stats.linregress(bench, own)
    assert result.beta == pytest.approx(fit.slope, rel=1e-9)
    assert result.correlation == pytest.approx(fit.rvalue, rel=1e-9)
    assert result.beta == pytest.approx(np.cov(own, bench)[0, 1] / np.var(bench, ddof=1))
    rf = per_period(rf_annual, periods)
    excess_fit = stats.linregress([b - rf for b in bench], [r - rf for r in own])
    # Jensen's alpha per period is the regression intercept, compounded over a year.
    assert result.alpha == pytest.approx((1 + excess_fit.intercept) ** periods - 1, rel=1e-8)
    active = [r - b for r, b in zip(own, bench, strict=True)]
    assert result.tracking_error == pytest.approx(sample_std(active) * math.sqrt(periods), rel=1e-9)
    assert result.information_ratio == pytest.approx(
        mean(active) / sample_std(active) * math.sqrt(periods), rel=1e-9
    )
    own_total, bench_total = 1.0, 1.0
    for r, b in zip(own, bench, strict=True):
        own_total *= 1 + r
        bench_total *= 1 + b
    assert result.excess_return == pytest.approx(own_total - bench_total, rel=1e-9)


def test_benchmark_comparison_degenerate_cases() -> None:
    flat = benchmark_comparison(
        returns=[0.01, 0.02, 0.03], benchmark_returns=[0.01, 0.01, 0.01], periods_per_year=365
    )
    assert flat.beta is None
    assert flat.alpha is None
    assert flat.correlation is None
    assert flat.tracking_error is not None
    same = benchmark_comparison(
        returns=[0.01, 0.02], benchmark_returns=[0.01, 0.02], periods_per_year=365
    )
    assert same.information_ratio is None
    assert same.tracking_error == 0.0
    assert same.beta == pytest.approx(1.0)
    short = benchmark_comparison(returns=[0.1], benchmark_returns=[0.2], periods_per_year=365)
    assert short.beta is None
    assert short.excess_return is None
    with pytest.raises(ValueError, match="differ in length"):
        benchmark_comparison(returns=[0.1, 0.2], benchmark_returns=[0.2], periods_per_year=365)
