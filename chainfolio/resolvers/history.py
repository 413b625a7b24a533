"""Portfolio value over time, bucketed in the database, with gaps reported as gaps."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.periods import check_points, parse_interval, parse_period
from chainfolio.storage.history import SeriesPoint, bucketed_history
from chainfolio.storage.timeseries import first_snapshot_time


@dataclass(frozen=True, slots=True)
class HistoryView:
    """A bucketed series: one point per bucket that has data, and the buckets that have none."""

    period: str
    interval: str
    start: datetime
    end: datetime
    points: list[SeriesPoint]
    gaps: list[datetime]

    @property
    def timestamps(self) -> list[datetime]:
        """Bucket starts of the points, for the compact form."""
        return [p.bucket for p in self.points]

    @property
    def values(self) -> list[Decimal]:
        """Values of the points, parallel to `timestamps`."""
        return [p.total_value for p in self.points]


def find_gaps(buckets: list[datetime], step: timedelta) -> list[datetime]:
    """Bucket starts missing between the first and the last point (never interpolated)."""
    gaps: list[datetime] = []
    for previous, current in pairwise(buckets):
        expected = previous + step
        while expected < current and len(gaps) < 10_000:
            gaps.append(expected)
            expected += step
    return gaps


async def resolve_history(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    period: str,
    interval: str,
    now: datetime,
    retention_days: int,
    breakdowns: bool = False,
) -> HistoryView:
    """The user's value series for `period` at `interval` (400 on a bad or too fine choice)."""
    window = parse_period(period, now=now)
    interval_name, step = parse_interval(interval)
    first = await first_snapshot_time(db, user_id=user_id) if window.period == "all" else None
    check_points(window, step, first_data=first)
    raw_since = now - timedelta(days=retention_days)
    points = await bucketed_history(
        db,
        user_id=user_id,
        start=window.start,
        end=window.end,
        interval=step,
        raw_since=raw_since,
        breakdowns=breakdowns,
    )
    # Rollup buckets (older than retention) are a day at least: gaps are judged per source.
    raw = [p.bucket for p in points if p.timestamp >= raw_since]
    rolled = [p.bucket for p in points if p.timestamp < raw_since]
    gaps = find_gaps(rolled, max(step, timedelta(days=1))) + find_gaps(raw, step)
    return HistoryView(window.period, interval_name, window.start, window.end, points, gaps)
