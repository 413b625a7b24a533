"""The snapshots read back as a series: the last value per bucket for charts, every stored
valuation for the return metrics; raw rows from the retention edge on, the daily rollup before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.database import driver_connection
from chainfolio.storage.timeseries import (
    BUCKET_ORIGIN,
    DAY_SQL,
    EDGE_SQL,
    ORIGIN_SQL,
    breakdown_of,
    uses_timescale,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SeriesPoint(NamedTuple):
    """The last snapshot in one bucket.

    A NamedTuple rather than a frozen dataclass: as immutable and hashable, and built about
    twice as fast (a year of hourly points is 8,760 of them per history request).
    """

    bucket: datetime
    timestamp: datetime
    total_value: Decimal
    chain_breakdown: Mapping[str, Decimal] | None = None
    asset_breakdown: Mapping[str, Decimal] | None = None


async def bucketed_history(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    start: datetime,
    end: datetime,
    interval: timedelta,
    raw_since: datetime,
    breakdowns: bool = False,
) -> Sequence[SeriesPoint]:
    """Last value per `interval` bucket, for the buckets from the one holding `start` to `end`.

    A bucket is labelled by its start and holds its last snapshot at or before `end`; the first
    bucket counts from its own start, so it holds the value as of the window start when one
    was taken in it. Raw snapshots serve buckets from `raw_since` on (the retention edge);
    older buckets come from the daily rollup, so long periods keep working after raw rows are
    dropped (days the rollup has not folded in yet come from their raw rows, the same last
    snapshot per day). A bucket both sides reach (the one holding `raw_since`, at 1d or more)
    appears once, with the later snapshot.
    """
    bucket_fn = "time_bucket" if await uses_timescale(db) else "date_bin"
    extra = ", chain_breakdown, asset_breakdown" if breakdowns else ""
    origin = f"CAST('{BUCKET_ORIGIN.isoformat()}' AS timestamptz)"
    raw_bucket = f'{bucket_fn}(CAST($4 AS interval), "timestamp", {origin})'
    rollup_bucket = f"{bucket_fn}(CAST($5 AS interval), bucket, {origin})"
    rollup_interval = max(interval, timedelta(days=1))
    # $1 user, $2 start, $3 end, $4 interval, $5 rollup interval, $6 raw_since.
    # Per point: the bucket, the snapshot's time as microseconds after the bucket start (0 for
    # a snapshot taken on the bucket start) and the value. asyncpg decodes an int8 many times
    # faster than a second timestamptz; the datetimes rebuilt from it are the same (whole
    # microseconds: the cast rounds, exact even where extract() returns a double).
    # The value stays a binary numeric: asyncpg's Decimal keeps its form (10000 comes back as
    # Decimal('1E+4'), which `str` renders so); text would print 10000 and change the output.
    query = f"""
        SELECT DISTINCT ON (b) * FROM (
        (SELECT DISTINCT ON (b) {raw_bucket} AS b,
                CAST(extract(epoch FROM "timestamp" - {raw_bucket}) * 1000000 AS bigint) AS o,
                total_value{extra}
         FROM portfolio_snapshots
         WHERE user_id = $1 AND "timestamp" <= $3 AND "timestamp" >= greatest(
               {bucket_fn}(CAST($4 AS interval), CAST($2 AS timestamptz), {origin}), $6)
         ORDER BY b, "timestamp" DESC)
        UNION ALL
        (SELECT DISTINCT ON (b) {rollup_bucket} AS b,
                CAST(extract(epoch FROM last_timestamp - {rollup_bucket}) * 1000000 AS bigint),
                total_value{extra}
         FROM (SELECT bucket, last_timestamp, total_value{extra}
               FROM portfolio_snapshots_daily
               WHERE user_id = $1 AND bucket < {EDGE_SQL}
                 AND bucket >= {bucket_fn}(CAST($5 AS interval), CAST($2 AS timestamptz), {origin})
                 AND last_timestamp < $6 AND last_timestamp <= $3
               UNION ALL
               SELECT * FROM (
                   SELECT DISTINCT ON (1) date_bin('1 day', "timestamp", {origin}),
                          "timestamp", total_value{extra}
                   FROM portfolio_snapshots
                   WHERE user_id = $1 AND "timestamp" >= {EDGE_SQL}
                     AND "timestamp" >= date_bin('1 day', CAST($2 AS timestamptz), {origin})
                     AND "timestamp" < date_bin('1 day', least($3, $6), {origin}) + {DAY_SQL}
                   ORDER BY 1, "timestamp" DESC) AS unrolled (bucket, last_timestamp)
               WHERE bucket >= {bucket_fn}(CAST($5 AS interval), CAST($2 AS timestamptz), {origin})
                 AND last_timestamp < $6 AND last_timestamp <= $3
              ) AS daily
         ORDER BY b, last_timestamp DESC)) AS sides
        ORDER BY b, o DESC"""
    # Straight on the asyncpg connection (as `write_snapshots` does): no SQLAlchemy Row per
    # point. `uses_timescale` above went through SQLAlchemy, which begins the caller's
    # transaction (lazily, on its first statement), so this runs inside it.
    conn = await driver_connection(db)
    args = (user_id, start, end, interval, rollup_interval, raw_since)
    if not breakdowns:
        # One row of three arrays: asyncpg decodes each array into a list in C, where a year
        # of hourly points as 8,761 rows took a Record each and a SeriesPoint each after
        # (~10 ms of CPU; the bare query's own decoding is the floor, issue 17).
        arrays = f"""SELECT coalesce(array_agg(b ORDER BY b), '{{}}'),
                coalesce(array_agg(o ORDER BY b), '{{}}'),
                coalesce(array_agg(total_value ORDER BY b), '{{}}') FROM ({query}) AS points"""
        buckets, offsets, values = await conn.fetchrow(arrays, *args)
        return Series(buckets, offsets, values)
    records = await conn.fetch(query, *args)
    if len(records) > LONG_SERIES:
        # 10,000 points took 10-25 ms to convert: in a thread, the event loop keeps serving
        # (the GIL is handed back every switch interval, 5 ms) — issue 21
        return await asyncio.to_thread(_series_points, records, breakdowns=breakdowns)
    return _series_points(records, breakdowns=breakdowns)


LONG_SERIES = 2_000
"""Above this many rows a conversion runs in a thread, off the event loop (issue 21)."""


class Series(Sequence[SeriesPoint]):
    """Bucketed points held as the columns the database hands over: bucket starts, each
    snapshot's offset after its bucket start (microseconds) and values. A sequence of
    `SeriesPoint`s, each made when first asked for; `buckets` and `values` are read as they
    are (a history's compact arrays never build a point)."""

    __slots__ = ("_points", "buckets", "offsets", "values")

    def __init__(self, buckets: list[datetime], offsets: list[int], values: list[Decimal]) -> None:
        self.buckets = buckets
        self.offsets = offsets
        self.values = values
        self._points: list[SeriesPoint] | None = None

    @property
    def points(self) -> list[SeriesPoint]:
        """Every point, made once."""
        if self._points is None:
            self._points = [
                SeriesPoint(b, _at_offset(b, offset), value)
                for b, offset, value in zip(self.buckets, self.offsets, self.values, strict=True)
            ]
        return self._points

    def timestamp(self, index: int) -> datetime:
        """The time of the snapshot of point `index`, without making the points."""
        return _at_offset(self.buckets[index], self.offsets[index])

    def __len__(self) -> int:
        return len(self.buckets)

    @overload
    def __getitem__(self, index: int) -> SeriesPoint: ...

    @overload
    def __getitem__(self, index: slice) -> list[SeriesPoint]: ...

    def __getitem__(self, index: int | slice) -> SeriesPoint | list[SeriesPoint]:
        return self.points[index]

    def __iter__(self) -> Iterator[SeriesPoint]:
        return iter(self.points)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Series | list | tuple):
            return self.points == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the list it stands for

    def __repr__(self) -> str:
        return f"Series({self.points!r})"


def _series_points(records: Sequence[Any], *, breakdowns: bool) -> list[SeriesPoint]:
    if not breakdowns:
        return [SeriesPoint(b, _at_offset(b, offset), value) for b, offset, value in records]
    return [
        SeriesPoint(b, _at_offset(b, offset), value, breakdown_of(by_chain), breakdown_of(by_asset))
        for b, offset, value, by_chain, by_asset in records
    ]


class Valuation(NamedTuple):
    """The portfolio's total at one stored instant."""

    timestamp: datetime
    total_value: Decimal


@dataclass(frozen=True, slots=True, eq=False)
class ValuationArrays:
    """Stored valuations as arrays for the analytics: POSIX seconds (whole microseconds once
    rounded, `from_seconds`) and values as floats (exact decimals are read where money is
    shown)."""

    times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]


async def valuations_between(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    start: datetime,
    end: datetime,
    raw_since: datetime,
) -> ValuationArrays:
    """Every stored valuation with start < time <= end, oldest first, at full resolution.

    From `raw_since` on that is every raw snapshot; before it, each day's last snapshot (the
    daily rollup, or the raw rows of days it has not folded in yet) — the same seam as
    `bucketed_history`, so no instant appears twice. Two float8 per row: a year of hourly
    rows decodes several times faster as timestamptz and numeric, and `date_part` (a double)
    costs far less than `extract` (a numeric) in the server.
    """
    query = f"""
        SELECT date_part('epoch', "timestamp"), CAST(total_value AS float8) FROM (
            SELECT "timestamp", total_value FROM portfolio_snapshots
            WHERE user_id = $1 AND "timestamp" > $2 AND "timestamp" <= $3 AND "timestamp" >= $4
            UNION ALL
            SELECT last_timestamp, total_value FROM portfolio_snapshots_daily
            WHERE user_id = $1 AND bucket < {EDGE_SQL}
              AND bucket >= date_bin('1 day', $2, {ORIGIN_SQL})
              AND last_timestamp > $2 AND last_timestamp <= $3 AND last_timestamp < $4
            UNION ALL
            SELECT * FROM (
                SELECT DISTINCT ON (date_bin('1 day', "timestamp", {ORIGIN_SQL}))
                       "timestamp", total_value
                FROM portfolio_snapshots
                WHERE user_id = $1 AND "timestamp" >= {EDGE_SQL}
                  AND "timestamp" >= date_bin('1 day', $2, {ORIGIN_SQL})
                  AND "timestamp" < date_bin('1 day', least($3, $4), {ORIGIN_SQL}) + {DAY_SQL}
                ORDER BY date_bin('1 day', "timestamp", {ORIGIN_SQL}), "timestamp" DESC) AS unrolled
            WHERE "timestamp" > $2 AND "timestamp" <= $3 AND "timestamp" < $4
        ) AS stored ("timestamp", total_value)
        ORDER BY "timestamp"
        """
    conn = await driver_connection(db)
    records = await conn.fetch(query, user_id, start, end, raw_since)
    count = len(records)
    return ValuationArrays(
        times=np.fromiter((r[0] for r in records), dtype=np.float64, count=count),
        values=np.fromiter((r[1] for r in records), dtype=np.float64, count=count),
    )


def from_seconds(seconds: float) -> datetime:
    """A UTC datetime from POSIX seconds, at the whole microsecond a stored time is on."""
    return _EPOCH + timedelta(microseconds=round(seconds * 1_000_000))


def _at_offset(bucket: datetime, microseconds: int) -> datetime:
    return bucket + timedelta(microseconds=microseconds) if microseconds else bucket
