"""GraphQL `Performance`: a period's money figures, returns, risk and attribution."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type
class AssetContribution:
    asset: str
    gain: float
    gain_exact: str = strawberry.field(description="The gain as an exact decimal string.")
    share_of_gain: float | None


@strawberry.type(description="Why a metric is null.")
class NullReason:
    metric: str
    reason: str


@strawberry.type(description="Performance over a period. Rates are percentages.")
class Performance:
    period: str
    interval: str
    start: str
    end: str
    start_value: float
    end_value: float
    deposits: float
    withdrawals: float
    net_flows: float
    absolute_gain: float
    start_value_exact: str = strawberry.field(description="Exact decimal string.")
    end_value_exact: str = strawberry.field(description="Exact decimal string.")
    deposits_exact: str = strawberry.field(description="Exact decimal string.")
    withdrawals_exact: str = strawberry.field(description="Exact decimal string.")
    net_flows_exact: str = strawberry.field(description="Exact decimal string.")
    absolute_gain_exact: str = strawberry.field(description="Exact decimal string.")
    percentage_gain: float | None
    roi: float | None
    twr: float | None
    twr_annualised: float | None
    mwr: float | None
    mwr_annualised: float | None
    volatility: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float | None
    max_drawdown_peak: str | None
    max_drawdown_trough: str | None
    best_interval: float | None
    best_interval_end: str | None
    worst_interval: float | None
    worst_interval_end: str | None
    unvalued_flows: int
    valuations: int = strawberry.field(description="Valuations the returns were linked over.")
    started_later: bool = strawberry.field(
        description="No valuation at or before the period's start: it starts at the first one."
    )
    end_is_live: bool = strawberry.field(
        description="The end value is the live holdings' total at request time."
    )
    null_reasons: list[NullReason]
    attribution: list[AssetContribution]

    @classmethod
    def of(cls, fields: dict[str, Any]) -> Performance:
        """From the resolver's field mapping (the same one REST returns)."""
        nested = ("attribution", "nullReasons")
        values = {_snake(k): v for k, v in fields.items() if k not in nested}
        contributions = [
            AssetContribution(
                asset=c["asset"],
                gain=c["gain"],
                gain_exact=c["gainExact"],
                share_of_gain=c["shareOfGain"],
            )
            for c in fields["attribution"]
        ]
        reasons = [NullReason(metric=k, reason=v) for k, v in fields["nullReasons"].items()]
        return cls(**values, null_reasons=reasons, attribution=contributions)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
