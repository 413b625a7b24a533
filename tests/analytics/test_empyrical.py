"""The risk figures against empyrical-reloaded (an independent library, Quantopian's
conventions): volatility, Sharpe, Sortino with a target, drawdown, beta and the geometrically
annualised alpha."""

from __future__ import annotations

import empyrical
import numpy as np
import pytest

from chainfolio.analytics import summarize


@pytest.mark.parametrize("seed", range(4))
def test_summary_matches_empyrical(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 24 * 60
    bench_returns = rng.normal(0.0001, 0.01, n)
    own_returns = 0.00002 + 0.7 * bench_returns + rng.normal(0, 0.004, n)
    times = 1_700_000_000.0 + 3600.0 * np.arange(n + 1)
    values = 50_000 * np.cumprod(np.concatenate(([1.0], 1 + own_returns)))
    bench = 2_000 * np.cumprod(np.concatenate(([1.0], 1 + bench_returns)))
    risk_free, target = 0.04, 0.1
    summary = summarize(
        times=times,
        values=values,
        flow_times=[],
        flow_amounts=[],
        benchmark_values=bench,
        risk_free_rate=risk_free,
        target_return=target,
    )
    periods = 8760.0
    rf = (1 + risk_free) ** (1 / periods) - 1
    tau = (1 + target) ** (1 / periods) - 1
    assert summary.periods_per_year == pytest.approx(periods)
    assert summary.volatility == pytest.approx(
        empyrical.annual_volatility(own_returns, annualization=periods), rel=1e-9
    )
    assert summary.sharpe_ratio == pytest.approx(
        empyrical.sharpe_ratio(own_returns, risk_free=rf, annualization=periods), rel=1e-9
    )
    assert summary.sortino_ratio == pytest.approx(
        empyrical.sortino_ratio(own_returns, required_return=tau, annualization=periods),
        rel=1e-9,
    )
    assert summary.max_drawdown == pytest.approx(empyrical.max_drawdown(own_returns), rel=1e-9)
    assert summary.twr == pytest.approx(empyrical.cum_returns_final(own_returns), rel=1e-9)
    assert summary.benchmark is not None
    assert summary.benchmark.beta == pytest.approx(
        empyrical.beta(own_returns, bench_returns, risk_free=rf), rel=1e-9
    )
    assert summary.benchmark.alpha == pytest.approx(
        empyrical.alpha(own_returns, bench_returns, risk_free=rf, annualization=periods),
        rel=1e-7,
    )
