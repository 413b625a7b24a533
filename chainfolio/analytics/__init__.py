"""Pure portfolio analytics: numpy arrays and mappings in, numbers out (no I/O, no clock).

May import: nothing of chainfolio outside `analytics`.
"""

from chainfolio.analytics.allocation import (
    Allocation,
    RebalancePlan,
    Trade,
    allocation,
    group_values,
    rebalance,
)
from chainfolio.analytics.attribution import Attribution, Contribution, attribution
from chainfolio.analytics.errors import NotEnoughData
from chainfolio.analytics.performance import PerformanceSummary, summarize
from chainfolio.analytics.returns import (
    SECONDS_PER_YEAR,
    IntervalReturns,
    MoneyWeightedReturn,
    SimpleGain,
    TimeWeightedReturn,
    annualise,
    interval_returns,
    log_growth,
    mwr,
    rebased_index,
    simple_gain,
    twr,
)
from chainfolio.analytics.risk import (
    BenchmarkComparison,
    Drawdown,
    IntervalExtremes,
    annualisation_factor,
    benchmark_comparison,
    interval_extremes,
    max_drawdown,
    price_returns,
    sharpe_ratio,
    sortino_ratio,
    volatility,
)
from chainfolio.analytics.sampling import BucketSamples, bucket_samples

__all__ = [
    "SECONDS_PER_YEAR",
    "Allocation",
    "Attribution",
    "BenchmarkComparison",
    "BucketSamples",
    "Contribution",
    "Drawdown",
    "IntervalExtremes",
    "IntervalReturns",
    "MoneyWeightedReturn",
    "NotEnoughData",
    "PerformanceSummary",
    "RebalancePlan",
    "SimpleGain",
    "TimeWeightedReturn",
    "Trade",
    "allocation",
    "annualisation_factor",
    "annualise",
    "attribution",
    "benchmark_comparison",
    "bucket_samples",
    "group_values",
    "interval_extremes",
    "interval_returns",
    "log_growth",
    "max_drawdown",
    "mwr",
    "price_returns",
    "rebalance",
    "rebased_index",
    "sharpe_ratio",
    "simple_gain",
    "sortino_ratio",
    "summarize",
    "twr",
    "volatility",
]
