"""GraphQL `History`: value over time, in points and in the compact series form."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from chainfolio.resolvers.history import HistoryView
from chainfolio.schema.series import DateTimeSeries, DecimalSeries


@strawberry.type
class HistoryPoint:
    timestamp: datetime
    value: Decimal


@strawberry.type(description="Value over time. `timestamps`/`values` are the compact form.")
class History:
    period: str
    interval: str
    start: datetime
    end: datetime
    timestamps: DateTimeSeries
    values: DecimalSeries
    gaps: list[datetime]

    @strawberry.field(
        description="One object per point (prefer the compact arrays for long series)."
    )
    def points(self) -> list[HistoryPoint]:
        return [
            HistoryPoint(timestamp=t, value=v)
            for t, v in zip(self.timestamps, self.values, strict=True)
        ]

    @classmethod
    def of(cls, view: HistoryView) -> History:
        """From the resolver's view."""
        return cls(
            period=view.period,
            interval=view.interval,
            start=view.start,
            end=view.end,
            timestamps=DateTimeSeries(view.timestamps),
            values=DecimalSeries(view.values),
            gaps=view.gaps,
        )
