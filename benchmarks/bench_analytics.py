"""Time `summarize` on one year of hourly valuations against a plain-Python loop baseline.

Run: python benchmarks/bench_analytics.py [--repeat N]

The baseline computes only TWR and max drawdown with Python loops over the same data (the
part of `summarize` that touches every point); `summarize` computes every metric, a benchmark
comparison and the MWR root on top — risk on the daily grid of complete steps, as
`performance(1y)` does. Both results are checked against each other first.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chainfolio.analytics import PerformanceSummary, summarize

HOURS_PER_YEAR = 8760


@dataclass(frozen=True)
class Year:
    times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    flow_times: npt.NDArray[np.float64]
    flow_amounts: npt.NDArray[np.float64]
    benchmark: npt.NDArray[np.float64]


def make_series(seed: int = 7) -> Year:
    """Hourly geometric random walk with 24 deposits and withdrawals and an index benchmark."""
    rng = np.random.default_rng(seed)
    times = 1_700_000_000.0 + 3600.0 * np.arange(HOURS_PER_YEAR, dtype=np.float64)
    shocks = rng.normal(0.00002, 0.006, HOURS_PER_YEAR - 1)
    flow_times = np.sort(rng.uniform(times[0], times[-1], 24))
    flow_amounts = np.where(rng.random(24) < 0.5, -1.0, 1.0) * rng.uniform(500.0, 5000.0, 24)
    values = np.empty(HOURS_PER_YEAR)
    values[0] = 50_000.0
    position = np.searchsorted(times, flow_times, side="left")
    flow_at = np.bincount(position, weights=flow_amounts, minlength=HOURS_PER_YEAR)
    for i in range(1, HOURS_PER_YEAR):
        values[i] = values[i - 1] * (1.0 + shocks[i - 1]) + flow_at[i]
    benchmark = 2000.0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(0.0, 0.005, HOURS_PER_YEAR - 1)]))
    return Year(times, values, flow_times, flow_amounts, benchmark)


def run_summary(year: Year) -> PerformanceSummary:
    return summarize(
        times=year.times,
        values=year.values,
        flow_times=year.flow_times,
        flow_amounts=year.flow_amounts,
        benchmark_values=year.benchmark,
        risk_free_rate=0.04,
        risk_step=86_400.0,  # performance(1y): risk on the daily grid, returns hourly
        origin=978_307_200.0,
    )


def loop_twr_and_drawdown(
    times: Sequence[float],
    values: Sequence[float],
    flow_times: Sequence[float],
    flow_amounts: Sequence[float],
) -> tuple[float, float]:
    """Baseline: the same flow convention, TWR chaining and drawdown in plain Python."""
    flows = sorted(zip(flow_times, flow_amounts, strict=True))
    next_flow = 0
    while next_flow < len(flows) and flows[next_flow][0] <= times[0]:
        next_flow += 1
    growth, peak, worst = 1.0, 1.0, 0.0
    for i in range(1, len(times)):
        flow = 0.0
        while next_flow < len(flows) and flows[next_flow][0] <= times[i]:
            flow += flows[next_flow][1]
            next_flow += 1
        if values[i - 1] > 0:
            growth *= max((values[i] - flow) / values[i - 1], 0.0)
        peak = max(peak, growth)
        worst = min(worst, growth / peak - 1.0)
    return growth - 1.0, worst


def best_of(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best and median wall time of `repeat` runs, in milliseconds."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) * 1e3)
    return min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    year = make_series()
    # The baseline gets Python lists, as a loop implementation would hold them.
    lists = (
        year.times.tolist(),
        year.values.tolist(),
        year.flow_times.tolist(),
        year.flow_amounts.tolist(),
    )

    summary = run_summary(year)
    loop_twr, loop_drawdown = loop_twr_and_drawdown(*lists)
    assert summary.twr is not None
    assert summary.max_drawdown is not None
    assert math.isclose(summary.twr, loop_twr, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(summary.max_drawdown, loop_drawdown, rel_tol=1e-9, abs_tol=1e-12)

    fast_best, fast_median = best_of(lambda: run_summary(year), args.repeat)
    loop_best, loop_median = best_of(lambda: loop_twr_and_drawdown(*lists), args.repeat)
    print(f"points: {HOURS_PER_YEAR} hourly valuations, 24 flows, benchmark series")
    print(
        f"summarize (every metric):        best {fast_best:8.3f} ms  median {fast_median:8.3f} ms"
    )
    print(
        f"baseline loop (TWR + drawdown):  best {loop_best:8.3f} ms  median {loop_median:8.3f} ms"
    )
    print(
        f"baseline / summarize:            best {loop_best / fast_best:6.2f}x    "
        f"median {loop_median / fast_median:6.2f}x"
    )
    print(
        f"twr {summary.twr:+.4%}  mwr {summary.mwr or math.nan:+.4%}  "
        f"vol {summary.volatility or math.nan:.4f}  sharpe {summary.sharpe_ratio or math.nan:.3f}  "
        f"max drawdown {summary.max_drawdown or math.nan:.4%}"
    )


if __name__ == "__main__":
    main()
