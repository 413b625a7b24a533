"""GraphQL type of the portfolio-versus-benchmark comparison."""

from __future__ import annotations

from datetime import datetime

import strawberry

from chainfolio.resolvers.compare import ComparisonView, comparison_reasons, comparison_stats
from chainfolio.schema.performance import NullReason
from chainfolio.schema.series import DateTimeSeries, NullableFloatSeries


@strawberry.type(
    description="The portfolio's flow-neutral growth against a benchmark, both rebased to 100 "
    "at the first bucket where both have a value; null marks a bucket without a benchmark "
    "price. Rates are percent; alpha and tracking error are annualised. The portfolio side "
    "runs from the value as of the period's start to the live valuation."
)
class Comparison:
    benchmark: str
    period: str
    interval: str
    start: datetime
    end: datetime
    timestamps: DateTimeSeries
    portfolio: NullableFloatSeries
    benchmark_values: NullableFloatSeries
    portfolio_return: float | None
    benchmark_return: float | None
    excess_return: float | None = strawberry.field(
        description="portfolioReturn - benchmarkReturn, percentage points."
    )
    beta: float | None
    alpha: float | None
    correlation: float | None
    tracking_error: float | None
    information_ratio: float | None
    intervals: int = strawberry.field(description="Intervals the statistics were computed on.")
    end_is_live: bool = strawberry.field(
        description="The last point is the live holdings' total at request time."
    )
    started_later: bool = strawberry.field(
        description="No valuation at or before the period's start: it starts at the first one."
    )
    null_reasons: list[NullReason]

    @classmethod
    def of(cls, view: ComparisonView) -> Comparison:
        """From the resolver's view."""
        stats = comparison_stats(view)
        return cls(
            benchmark=view.benchmark,
            period=view.period,
            interval=view.interval,
            start=view.start,
            end=view.end,
            timestamps=DateTimeSeries(view.timestamps),
            portfolio=NullableFloatSeries(view.portfolio),
            benchmark_values=NullableFloatSeries(view.benchmark_values),
            portfolio_return=stats.portfolio_return,
            benchmark_return=stats.benchmark_return,
            excess_return=stats.excess_return,
            beta=stats.beta,
            alpha=stats.alpha,
            correlation=stats.correlation,
            tracking_error=stats.tracking_error,
            information_ratio=stats.information_ratio,
            intervals=view.intervals,
            end_is_live=view.live_end,
            started_later=view.started_later,
            null_reasons=[
                NullReason(metric=k, reason=v) for k, v in comparison_reasons(view).items()
            ],
        )
