"""The portfolio against a benchmark (a symbol or a basket): indices rebased to 100 and risk.

The portfolio's growth is linked over every stored valuation, flows at their own time, from
the value as of the window start to the live valuation (the TWR of `performance`, whatever the
interval). Each bucket's sample (`analytics.bucket_samples`) is read from it, and the
benchmark is priced as of that sample's own time: both sides at the same instant. A basket is
rebalanced back to its weights at every sample. Statistics use the complete steps of the grid.
docs/METRICS.md gives the conventions.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio import analytics
from chainfolio.analytics import BenchmarkComparison
from chainfolio.core.errors import InsufficientData, InvalidInput
from chainfolio.core.periods import (
    INTERVALS,
    check_points,
    default_interval,
    parse_interval,
    parse_period,
)
from chainfolio.resolvers.performance import PeriodSeries, clean, percent, period_series
from chainfolio.storage import market
from chainfolio.storage.prices import prices_as_of
from chainfolio.storage.timeseries import BUCKET_ORIGIN, first_snapshot_time

MAX_BASKET = 20
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_INDEX_DIGITS = 6
_DAY = timedelta(days=1)
_RATIO_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A benchmark: symbols with weights in percent summing to 100 (one symbol: 100)."""

    components: tuple[tuple[str, Decimal], ...]

    @property
    def name(self) -> str:
        """Normalised spelling: `ETH`, or `ETH:60,BTC:40`."""
        if len(self.components) == 1:
            return self.components[0][0]
        return ",".join(f"{s}:{format(w.normalize(), 'f')}" for s, w in self.components)


def parse_benchmark(value: str) -> Benchmark:
    """`ETH`, or a basket `ETH:60,BTC:40` (percent weights summing to 100); 400 otherwise."""
    text = value.strip()
    if text.lower().startswith("wallets:"):
        raise InvalidInput(
            "wallet-group benchmarks are not supported: snapshots are kept per user, not per "
            "wallet; use a symbol or a basket such as ETH:60,BTC:40",
            code="INVALID_BENCHMARK",
        )
    parts = [p.strip() for p in text.split(",")]
    if not text or len(parts) > MAX_BASKET:
        raise InvalidInput(
            f"benchmark must be a symbol or a basket of at most {MAX_BASKET} SYMBOL:WEIGHT "
            f"parts, got {value!r}",
            code="INVALID_BENCHMARK",
        )
    components: list[tuple[str, Decimal]] = []
    for part in parts:
        symbol, sep, weight_text = part.partition(":")
        symbol = symbol.strip()
        if not _SYMBOL.fullmatch(symbol) or (len(parts) > 1 and not sep):
            raise InvalidInput(
                f"invalid benchmark part {part!r}: want SYMBOL or SYMBOL:WEIGHT",
                code="INVALID_BENCHMARK",
            )
        weight = Decimal(100)
        if sep:
            try:
                weight = Decimal(weight_text.strip())
            except InvalidOperation:
                weight = Decimal("NaN")
            if not weight.is_finite() or not Decimal(0) < weight <= 100:
                raise InvalidInput(
                    f"invalid weight in {part!r}: want a percentage in (0, 100]",
                    code="INVALID_BENCHMARK",
                )
        components.append((symbol, weight))
    symbols = [s for s, _ in components]
    if len(set(symbols)) != len(symbols):
        raise InvalidInput(f"benchmark {value!r} names a symbol twice", code="INVALID_BENCHMARK")
    total = sum((w for _, w in components), Decimal(0))
    if total != 100:
        raise InvalidInput(f"basket weights must sum to 100, not {total}", code="INVALID_BENCHMARK")
    return Benchmark(tuple(components))


@dataclass(frozen=True, slots=True)
class ComparisonView:
    """Both indices on one time axis (None: no benchmark price there) and the statistics."""

    benchmark: str
    period: str
    interval: str
    start: datetime
    end: datetime
    timestamps: list[datetime]
    portfolio: list[float | None]
    benchmark_values: list[float | None]
    portfolio_return: float | None
    benchmark_return: float | None
    intervals: int
    stats: BenchmarkComparison
    live_end: bool
    started_later: bool


async def _resolve_symbols(db: AsyncConnection, benchmark: Benchmark) -> Benchmark:
    """The benchmark with each symbol as stored (`eth` finds `ETH`); unknown ones are a 400."""
    wanted = [s for s, _ in benchmark.components]
    known = await market.known_symbols(db, symbols=sorted({*wanted, *(s.upper() for s in wanted)}))
    resolved: list[tuple[str, Decimal]] = []
    for symbol, weight in benchmark.components:
        if symbol in known:
            resolved.append((symbol, weight))
        elif symbol.upper() in known:
            resolved.append((symbol.upper(), weight))
        else:
            raise InvalidInput(
                f"unknown benchmark {symbol!r}: no price of it is stored",
                code="UNKNOWN_BENCHMARK",
            )
    return Benchmark(tuple(resolved))


def benchmark_index(
    benchmark: Benchmark, prices: Mapping[str, Sequence[Decimal | None]]
) -> list[float | None]:
    """Benchmark growth (1 at its first priced sample) at each sample where every component
    has a price; None elsewhere.

    A basket's return over a step is the weighted sum of its components' returns over that
    step: it is rebalanced back to its weights at every sample.
    """
    symbols = [s for s, _ in benchmark.components]
    count = len(prices[symbols[0]])
    priced = [k for k in range(count) if all(prices[s][k] is not None for s in symbols)]
    index: list[float | None] = [None] * count
    if not priced:
        return index
    weights = np.array([float(w) / 100 for _, w in benchmark.components])
    matrix = np.array([[float(prices[s][k] or 0) for s in symbols] for k in priced])
    step_returns = (matrix[1:] / matrix[:-1] - 1.0) @ weights
    growth = analytics.rebased_index(returns=step_returns, base=1.0)
    for k, value in zip(priced, growth, strict=True):
        index[k] = float(value)
    return index


async def resolve_comparison(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    period: str,
    interval: str | None,
    benchmark: str,
    now: datetime,
    retention_days: int,
    risk_free_rate: float,
) -> ComparisonView:
    """The portfolio against `benchmark` over `period`, sampled at `interval`.

    The portfolio's growth is linked over every valuation, from the one as of the window start
    to the live one (as `performance`); the chart reads it at each bucket's sample and the
    benchmark at that sample's own time (its last price at or before it).
    """
    window = parse_period(period, now=now)
    interval_name = default_interval(window) if interval is None else parse_interval(interval)[0]
    step = INTERVALS[interval_name]
    parsed = parse_benchmark(benchmark)
    first = await first_snapshot_time(db, user_id=user_id) if window.period == "all" else None
    check_points(window, step, first_data=first)
    parsed = await _resolve_symbols(db, parsed)
    raw_since = now - timedelta(days=retention_days)
    if window.start < raw_since and step < _DAY:
        # Before the raw retention only each day's last valuation is kept: a finer grid would
        # hold no complete step there, and one grid serves the whole period.
        interval_name, step = "1d", _DAY
    series = await period_series(db, user_id=user_id, window=window, raw_since=raw_since)
    if series.count < 2:
        raise InsufficientData(
            f"not enough data to compare with {parsed.name} over {window.period}: "
            f"{series.count} valuation(s) in the period; a return needs two"
        )
    samples = analytics.bucket_samples(
        times=series.times, origin=BUCKET_ORIGIN.timestamp(), step=step.total_seconds()
    )
    moments = [series.moment(int(p)) for p in samples.points]
    prices = {
        symbol: await prices_as_of(db, symbol=symbol, moments=moments, lookback=step + _DAY)
        for symbol, _ in parsed.components
    }
    # CPU-bound over every sample (0.6 s for the benchmark index at 8,640; lists of 8,640
    # floats and times besides): off the event loop, so /healthz and every other request keep
    # being served while it runs (the GIL is handed back every switch interval, 5 ms)
    return await asyncio.to_thread(
        _comparison,
        _Inputs(parsed, window.period, interval_name, step, risk_free_rate),
        series,
        samples,
        prices,
    )


@dataclass(frozen=True, slots=True)
class _Inputs:
    benchmark: Benchmark
    period: str
    interval: str
    step: timedelta
    risk_free_rate: float


def _comparison(
    inputs: _Inputs,
    series: PeriodSeries,
    samples: analytics.BucketSamples,
    prices: dict[str, list[Decimal | None]],
) -> ComparisonView:
    """The comparison from the series and the benchmark's prices at the samples (no I/O)."""
    parsed, step = inputs.benchmark, inputs.step
    values = series.values
    growth = analytics.rebased_index(
        returns=analytics.interval_returns(
            times=series.times,
            values=values,
            flow_times=series.flow_times(),
            flow_amounts=series.flow_amounts(),
        ).returns,
        base=1.0,
    )
    bench = benchmark_index(parsed, prices)
    own = [float(growth[p]) for p in samples.points]
    common = [k for k, b in enumerate(bench) if b is not None]
    if len(common) < 2:
        raise InsufficientData(
            f"not enough data to compare with {parsed.name} over {inputs.period}: "
            f"{len(common)} of {len(samples.points)} sample(s) have a benchmark price at or "
            "before them"
        )
    first_k, last_k = common[0], common[-1]
    # Steps that count: complete on the grid, priced at both ends, capital at risk at the start.
    steps = [
        k
        for k in range(first_k, last_k)
        if samples.complete[k]
        and bench[k] is not None
        and bench[k + 1] is not None
        and values[samples.points[k]] > 0
        and own[k] > 0
    ]
    own_steps = np.array([own[k + 1] / own[k] - 1.0 for k in steps])
    bench_steps = np.array([(bench[k + 1] or 0) / (bench[k] or 1) - 1.0 for k in steps])
    stats = analytics.benchmark_comparison(
        returns=own_steps,
        benchmark_returns=bench_steps,
        periods_per_year=analytics.SECONDS_PER_YEAR / step.total_seconds(),
        risk_free_rate=inputs.risk_free_rate,
    )
    own_base, bench_base = own[first_k], bench[first_k] or 1.0
    axis = range(first_k, last_k + 1)
    return ComparisonView(
        benchmark=parsed.name,
        period=inputs.period,
        interval=inputs.interval,
        start=series.moment(0),
        end=series.moment(series.count - 1),
        timestamps=[datetime.fromtimestamp(float(samples.buckets[k]), UTC) for k in axis],
        portfolio=[_rebased(own[k] / own_base if own_base > 0 else None) for k in axis],
        benchmark_values=[
            _rebased(None if bench[k] is None else (bench[k] or 0) / bench_base) for k in axis
        ],
        portfolio_return=_growth(own[last_k] / own_base) if own_base > 0 else None,
        benchmark_return=_growth((bench[last_k] or 0) / bench_base),
        intervals=len(steps),
        stats=stats,
        live_end=series.live_end,
        started_later=series.started_later,
    )


def _rebased(growth: float | None) -> float | None:
    if growth is None or not math.isfinite(growth):
        return None
    return clean(100 * growth, _INDEX_DIGITS)


def _growth(growth: float) -> float | None:
    return growth - 1 if math.isfinite(growth) else None


def _ratio(value: float | None) -> float | None:
    return clean(value, _RATIO_DIGITS)


@dataclass(frozen=True, slots=True)
class ComparisonStats:
    """The statistics as the API shows them: rates in percent (4 places), ratios (6 places)."""

    portfolio_return: float | None
    benchmark_return: float | None
    excess_return: float | None
    beta: float | None
    alpha: float | None
    correlation: float | None
    tracking_error: float | None
    information_ratio: float | None


def comparison_reasons(view: ComparisonView) -> dict[str, str]:
    """Why each null statistic is null, keyed by the API's field name."""
    s = view.stats
    if view.intervals < 2:
        few = f"{view.intervals} complete {view.interval} step(s); at least 2 are needed"
        values = {
            "beta": s.beta,
            "alpha": s.alpha,
            "correlation": s.correlation,
            "trackingError": s.tracking_error,
            "informationRatio": s.information_ratio,
        }
        return {name: few for name, value in values.items() if value is None}
    reasons: dict[str, str] = {}
    if s.beta is None:
        reasons["beta"] = "the benchmark's returns do not vary"
        reasons["alpha"] = "no beta"
    if s.correlation is None:
        reasons["correlation"] = "the portfolio's or the benchmark's returns do not vary"
    if s.information_ratio is None:
        reasons["informationRatio"] = "the portfolio tracks the benchmark exactly"
    return reasons


def comparison_stats(view: ComparisonView) -> ComparisonStats:
    """The statistics in the API's units, shared by REST and GraphQL."""
    s = view.stats
    own, other = view.portfolio_return, view.benchmark_return
    return ComparisonStats(
        portfolio_return=percent(own),
        benchmark_return=percent(other),
        excess_return=None if own is None or other is None else percent(own - other),
        beta=_ratio(s.beta),
        alpha=percent(s.alpha),
        correlation=_ratio(s.correlation),
        tracking_error=percent(s.tracking_error),
        information_ratio=_ratio(s.information_ratio),
    )
