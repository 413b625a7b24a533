"""The portfolio against a benchmark (a symbol or a basket): indices rebased to 100 and risk.

Both sides are bucketed alike: the portfolio's last snapshot and the benchmark's last price in
each bucket. The portfolio index chains flow-neutral interval returns over its own points
(deposits and withdrawals are never performance); a basket's index is rebalanced back to its
weights at every one of its points. Statistics compare the two indices over the buckets where
both have a value. docs/METRICS.md gives the conventions.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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
from chainfolio.resolvers.performance import percent
from chainfolio.storage import market
from chainfolio.storage.market import BucketPrice
from chainfolio.storage.timeseries import (
    SeriesPoint,
    bucketed_history,
    cash_flows_between,
    first_snapshot_time,
)

MAX_BASKET = 20
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_INDEX_DIGITS = 6
_RATIO_DIGITS = 6
_TRACKING_NOISE = 1e-10


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
    """Both indices on one time axis (None: no value in that bucket) and the statistics."""

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
    benchmark: Benchmark, prices: Mapping[str, Sequence[BucketPrice]]
) -> dict[datetime, float]:
    """Benchmark growth (1 at its first point) at each bucket where every component is priced.

    A basket's return over a step is the weighted sum of its components' returns over that
    step: it is rebalanced back to its weights at every point.
    """
    by_symbol = {
        s: {p.bucket: float(p.price) for p in prices.get(s, ())} for s, _ in benchmark.components
    }
    common = sorted(set.intersection(*(set(series) for series in by_symbol.values())))
    if not common:
        return {}
    weights = np.array([float(w) / 100 for _, w in benchmark.components])
    matrix = np.array([[by_symbol[s][b] for s, _ in benchmark.components] for b in common])
    step_returns = (matrix[1:] / matrix[:-1] - 1.0) @ weights
    index = analytics.rebased_index(returns=step_returns, base=1.0)
    return dict(zip(common, (float(v) for v in index), strict=True))


async def portfolio_index(
    db: AsyncConnection, *, user_id: uuid.UUID, points: Sequence[SeriesPoint]
) -> dict[datetime, float]:
    """Flow-neutral growth of the portfolio (1 at the first point) at each of its buckets."""
    if len(points) < 2:
        return {p.bucket: 1.0 for p in points}
    flows = await cash_flows_between(
        db, user_id=user_id, start=points[0].timestamp, end=points[-1].timestamp
    )
    valued = [f for f in flows if f.value_usd is not None]
    returns = analytics.interval_returns(
        times=np.array([p.timestamp.timestamp() for p in points]),
        values=np.array([float(p.total_value) for p in points]),
        flow_times=np.array([f.time.timestamp() for f in valued]),
        flow_amounts=np.array([float(f.value_usd or 0) for f in valued]),
    ).returns
    index = analytics.rebased_index(returns=returns, base=1.0)
    return dict(zip((p.bucket for p in points), (float(v) for v in index), strict=True))


def _step_returns(index: Sequence[float]) -> np.ndarray:
    """Returns between consecutive index values; a step from 0 (nothing at risk) is 0."""
    values = np.asarray(index, dtype=np.float64)
    previous, current = values[:-1], values[1:]
    return np.divide(current, previous, out=np.ones_like(current), where=previous > 0) - 1.0


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
    """The portfolio against `benchmark` over `period`, bucketed at `interval`."""
    window = parse_period(period, now=now)
    interval_name = default_interval(window) if interval is None else parse_interval(interval)[0]
    step = INTERVALS[interval_name]
    parsed = parse_benchmark(benchmark)
    first = await first_snapshot_time(db, user_id=user_id) if window.period == "all" else None
    check_points(window, step, first_data=first)
    parsed = await _resolve_symbols(db, parsed)
    raw_since = now - timedelta(days=retention_days)
    points = await bucketed_history(
        db, user_id=user_id, start=window.start, end=window.end, interval=step, raw_since=raw_since
    )
    prices = await market.bucketed_prices(
        db,
        symbols=[s for s, _ in parsed.components],
        start=window.start,
        end=window.end,
        interval=step,
        raw_since=raw_since,
    )
    # CPU-bound over every bucket (0.6 s at 8,640): off the event loop, so /healthz and every
    # other request keep being served while it runs
    bench = await asyncio.to_thread(benchmark_index, parsed, prices)
    common = sorted({p.bucket for p in points} & bench.keys())
    if len(common) < 2:
        raise InsufficientData(
            f"not enough data to compare with {parsed.name} over {window.period}: "
            f"{len(common)} bucket(s) hold both a portfolio value and a benchmark price"
        )
    first_bucket, last_bucket = common[0], common[-1]
    own = await portfolio_index(
        db,
        user_id=user_id,
        points=[p for p in points if first_bucket <= p.bucket <= last_bucket],
    )
    bench = {
        b: v / bench[first_bucket] for b, v in bench.items() if first_bucket <= b <= last_bucket
    }
    own_steps = _step_returns([own[b] for b in common])
    bench_steps = _step_returns([bench[b] for b in common])
    times = [b.timestamp() for b in common]
    stats = analytics.benchmark_comparison(
        returns=own_steps,
        benchmark_returns=bench_steps,
        periods_per_year=analytics.annualisation_factor(times=times),
        risk_free_rate=risk_free_rate,
    )
    if stats.tracking_error is not None and stats.tracking_error < _TRACKING_NOISE:
        # Identical indices differ only by float rounding: no active risk, no ratio of noise.
        stats = replace(stats, tracking_error=0.0, information_ratio=None)
    axis = sorted(own.keys() | bench.keys())
    return ComparisonView(
        benchmark=parsed.name,
        period=window.period,
        interval=interval_name,
        start=window.start,
        end=window.end,
        timestamps=axis,
        portfolio=[_rebased(own.get(b)) for b in axis],
        benchmark_values=[_rebased(bench.get(b)) for b in axis],
        portfolio_return=_growth(own[last_bucket]),
        benchmark_return=_growth(bench[last_bucket]),
        intervals=len(common) - 1,
        stats=stats,
    )


def _rebased(growth: float | None) -> float | None:
    if growth is None or not math.isfinite(growth):
        return None
    return round(100 * growth, _INDEX_DIGITS)


def _growth(growth: float) -> float | None:
    return growth - 1 if math.isfinite(growth) else None


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, _RATIO_DIGITS)


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


def comparison_stats(view: ComparisonView) -> ComparisonStats:
    """The statistics in the API's units, shared by REST and GraphQL."""
    s = view.stats
    return ComparisonStats(
        portfolio_return=percent(view.portfolio_return),
        benchmark_return=percent(view.benchmark_return),
        excess_return=percent(s.excess_return),
        beta=_ratio(s.beta),
        alpha=percent(s.alpha),
        correlation=_ratio(s.correlation),
        tracking_error=percent(s.tracking_error),
        information_ratio=_ratio(s.information_ratio),
    )
