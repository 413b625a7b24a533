"""Portfolio snapshots, their daily rollup, prices and cash flows: the time-series side."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any, NamedTuple

import asyncpg
import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.migrations import ensure_snapshot_partitions, partition_name

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET_ORIGIN = datetime(2001, 1, 1, tzinfo=UTC)
"""Buckets align to this Monday midnight UTC, so weeks start on Monday and days at 00:00 UTC."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The user's portfolio at one instant (the seed's `portfolio_snapshots` row)."""

    user_id: uuid.UUID
    timestamp: datetime
    total_value: Decimal
    chain_breakdown: Mapping[str, Decimal] = field(default_factory=dict)
    asset_breakdown: Mapping[str, Decimal] = field(default_factory=dict)
    category_breakdown: Mapping[str, Decimal] = field(default_factory=dict)


def _json(mapping: Mapping[str, Decimal]) -> str:
    # Values as strings keep them exact (JSON numbers would round-trip through float): orjson
    # hands each Decimal to `str`, which is what a {k: str(v)} copy did, without the copy.
    return orjson.dumps(mapping if type(mapping) is dict else dict(mapping), default=str).decode()


def _breakdown(raw: Any) -> dict[str, Decimal]:
    data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return {k: Decimal(v) for k, v in (data or {}).items()}


async def _driver(db: AsyncConnection) -> Any:
    raw = await db.get_raw_connection()
    return raw.driver_connection


async def uses_timescale(db: AsyncConnection) -> bool:
    """Whether the schema was laid out for TimescaleDB."""
    value = await db.scalar(text("SELECT value FROM chainfolio_meta WHERE key = 'timescale'"))
    return bool(value == "true")


# The daily rollup (plain PostgreSQL) is complete for the days before its edge, the
# `rollup_until` meta value: writes below the edge fold their days in at once, the hourly
# bursts above it are folded in by `roll_up_days` (the retention job) before their partition
# is dropped, as TimescaleDB's continuous aggregate does. Reads take days before the edge
# from the rollup and later days from the raw rows. Writers hold this lock shared, the
# rollup exclusive, so a write either sees the moved edge or is folded in by the move.
_ROLLUP_LOCK = 0x63665255
_EDGE = (
    "coalesce((SELECT CAST(value AS timestamptz) FROM chainfolio_meta "
    "WHERE key = 'rollup_until'), 'infinity')"  # TimescaleDB: the aggregate holds every day
)
_DAY = "interval '24 hours'"  # not '1 day': a day of a non-UTC session may be 23 or 25 hours
_ORIGIN = f"CAST('{BUCKET_ORIGIN.isoformat()}' AS timestamptz)"
_SNAPSHOT_FIELDS = "total_value, chain_breakdown, asset_breakdown, category_breakdown"
_ROLL_UP = f"""
    INSERT INTO portfolio_snapshots_daily
        SELECT DISTINCT ON (s.user_id, bucket) s.user_id,
            date_bin('1 day', s."timestamp", {_ORIGIN}) AS bucket, s."timestamp",
            s.total_value, s.chain_breakdown, s.asset_breakdown, s.category_breakdown
        FROM {{source}}
        ORDER BY s.user_id, bucket, s."timestamp" DESC
    ON CONFLICT (user_id, bucket) DO UPDATE SET
        last_timestamp = excluded.last_timestamp, total_value = excluded.total_value,
        chain_breakdown = excluded.chain_breakdown, asset_breakdown = excluded.asset_breakdown,
        category_breakdown = excluded.category_breakdown
    WHERE excluded.last_timestamp >= portfolio_snapshots_daily.last_timestamp"""
_COLUMNS = (
    "user_id",
    "timestamp",
    "total_value",
    "chain_breakdown",
    "asset_breakdown",
    "category_breakdown",
)


_BY_USER = attrgetter("user_id.int")  # PostgreSQL orders uuids as their 128-bit integers


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _records(snapshots: Sequence[Snapshot]) -> Iterator[tuple[Any, ...]]:
    # A generator, not a list: COPY encodes and sends as it goes, so the server ingests one
    # chunk while the next is built (the machine has more than one core).
    for s in snapshots:
        yield (
            s.user_id,
            s.timestamp,
            s.total_value,
            _json(s.chain_breakdown),
            _json(s.asset_breakdown),
            _json(s.category_breakdown),
        )


async def write_snapshots(db: AsyncConnection, snapshots: Sequence[Snapshot]) -> int:
    """Bulk-write snapshots with COPY; a (user, timestamp) already stored is left as is.

    Returns the number of rows actually inserted (idempotent: writing twice inserts once).
    """
    if not snapshots:
        return 0
    timescale = await uses_timescale(db)
    stamps = {s.timestamp for s in snapshots}  # a burst has one: the per-row work stays small
    edge: datetime | None = None
    if not timescale:
        await db.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _ROLLUP_LOCK})
        # Asked each time rather than remembered: a partition created in a transaction that
        # was rolled back, or dropped by retention, is not there.
        utc = [t.astimezone(UTC) for t in stamps]
        months = {datetime(t.year, t.month, 1, tzinfo=UTC) for t in utc}
        row = (
            await db.execute(
                text(
                    f"""SELECT {_EDGE}, ARRAY(SELECT n FROM unnest(CAST(:n AS text[])) AS n
                                             WHERE to_regclass(n) IS NULL)"""
                ),
                {"n": [partition_name(m) for m in months]},
            )
        ).one()
        edge = row[0]
        missing = [m for m in months if partition_name(m) in row[1]]
        if missing:
            await ensure_snapshot_partitions(db, min(missing), max(missing))
    conn = await _driver(db)
    # Rows below the rollup's edge (a back-fill) fold their days in at once, from the staged
    # batch; a burst above it is left to `roll_up_days`.
    below = edge if edge is not None and min(stamps) < edge else None
    inserted = None if below else await _copy_new(conn, snapshots)
    if inserted is None:
        inserted = await _insert_missing(conn, snapshots, roll_up_before=below)
    return inserted


async def _copy_new(conn: Any, snapshots: Sequence[Snapshot]) -> int | None:
    """COPY straight into the table when no row is there yet; None when one was (or may be).

    A burst is almost always new, and then this skips a staging table and the ON CONFLICT
    insert. A replay is caught up front by probing a few of its keys; a mixed batch (or a
    second writer) fails the COPY on the unique index and rolls back to the savepoint.
    """
    probe = {
        (s.user_id, s.timestamp)
        for s in (snapshots[0], snapshots[len(snapshots) // 2], snapshots[-1])
    }
    if await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM portfolio_snapshots p
               JOIN unnest(CAST($1 AS uuid[]), CAST($2 AS timestamptz[])) AS k(u, t)
               ON p.user_id = k.u AND p."timestamp" = k.t)""",
        [u for u, _ in probe],
        [t for _, t in probe],
    ):
        return None
    await conn.execute("SAVEPOINT snapshot_copy")
    try:
        # In user order the unique index grows page by page instead of at random places
        # (A/B, 125 K rows, loaded machine: 2.06 s vs 2.96 s median, also into a partition
        # holding 24 bursts); the sort costs 0.08 s.
        status = await conn.copy_records_to_table(
            "portfolio_snapshots",
            records=_records(sorted(snapshots, key=_BY_USER)),
            columns=_COLUMNS,
        )
    except asyncpg.UniqueViolationError:
        await conn.execute("ROLLBACK TO SAVEPOINT snapshot_copy")
        return None
    await conn.execute("RELEASE SAVEPOINT snapshot_copy")
    return int(status.rsplit(" ", 1)[1])


async def _insert_missing(
    conn: Any, snapshots: Sequence[Snapshot], *, roll_up_before: datetime | None
) -> int:
    """Stage the batch and insert the rows not stored yet (ON CONFLICT DO NOTHING).

    With `roll_up_before`, the staged rows before it are folded into the daily rollup.
    """
    await conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS snapshot_stage (
            user_id uuid, "timestamp" timestamptz, total_value numeric,
            chain_breakdown jsonb, asset_breakdown jsonb, category_breakdown jsonb
        ) ON COMMIT DELETE ROWS"""
    )
    await conn.copy_records_to_table("snapshot_stage", records=_records(snapshots))
    inserted = await conn.fetchval(
        f"""WITH ins AS (
            INSERT INTO portfolio_snapshots (user_id, "timestamp", {_SNAPSHOT_FIELDS})
            SELECT * FROM snapshot_stage ON CONFLICT (user_id, "timestamp") DO NOTHING
            RETURNING 1)
        SELECT count(*) FROM ins"""
    )
    if roll_up_before is not None:
        await conn.execute(
            _ROLL_UP.format(source='snapshot_stage s WHERE s."timestamp" < $1'), roll_up_before
        )
    await conn.execute("TRUNCATE snapshot_stage")
    return int(inserted)


async def roll_up_days(db: AsyncConnection, *, before: datetime) -> int:
    """Fold the raw snapshots of the whole days before `before` into the daily rollup.

    The retention job calls this before dropping partitions; it moves the rollup's edge (never
    back) and returns the number of daily rows written. TimescaleDB: nothing to do.
    """
    if await uses_timescale(db):
        return 0
    await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ROLLUP_LOCK})
    edge: datetime = await db.scalar(text(f"SELECT {_EDGE}"))
    until = _day(before)
    if until <= edge:
        return 0
    conn = await _driver(db)
    status = await conn.execute(
        _ROLL_UP.format(
            source='portfolio_snapshots s WHERE s."timestamp" >= $1 AND s."timestamp" < $2'
        ),
        edge,
        until,
    )
    await conn.execute(
        "UPDATE chainfolio_meta SET value = $1 WHERE key = 'rollup_until'", until.isoformat()
    )
    return int(status.rsplit(" ", 1)[1])


async def first_snapshot_time(db: AsyncConnection, *, user_id: uuid.UUID) -> datetime | None:
    """When the user's oldest kept day ended: its last snapshot (the rollup outlives raw rows)."""
    value: datetime | None = await db.scalar(
        text(
            f"""SELECT coalesce(
                (SELECT min(last_timestamp) FROM portfolio_snapshots_daily
                 WHERE user_id = :u AND bucket < {_EDGE}),
                (SELECT max("timestamp") FROM portfolio_snapshots, (
                    SELECT date_bin('1 day', min("timestamp"), {_ORIGIN}) AS day
                    FROM portfolio_snapshots WHERE user_id = :u AND "timestamp" >= {_EDGE}
                 ) AS first
                 WHERE user_id = :u AND "timestamp" >= first.day
                   AND "timestamp" < first.day + {_DAY}))"""
        ),
        {"u": user_id},
    )
    return value


async def oldest_snapshot_time(db: AsyncConnection, *, user_id: uuid.UUID) -> datetime | None:
    """The time of the user's oldest kept snapshot row (a daily rollup row: its day)."""
    value: datetime | None = await db.scalar(
        text(
            """SELECT least(
                (SELECT min("timestamp") FROM portfolio_snapshots WHERE user_id = :u),
                (SELECT min(bucket) FROM portfolio_snapshots_daily WHERE user_id = :u))"""
        ),
        {"u": user_id},
    )
    return value


async def snapshot_at_or_before(
    db: AsyncConnection, *, user_id: uuid.UUID, moment: datetime
) -> Snapshot | None:
    """The newest snapshot taken at or before `moment` (raw table, then the daily rollup)."""
    row = (
        await db.execute(
            text(
                f"""SELECT "timestamp", {_SNAPSHOT_FIELDS}
                   FROM portfolio_snapshots WHERE user_id = :u AND "timestamp" <= :t
                     AND "timestamp" > CAST(:t AS timestamptz) - interval '2 days'
                   ORDER BY "timestamp" DESC LIMIT 1"""
            ),
            {"u": user_id, "t": moment},
        )
    ).first()
    if row is None:
        # Nothing in the last two days: the last snapshot of the newest day that ended by then.
        # Raw rows from the rollup's edge on stand for the days not folded in yet (the newest
        # of them is its day's last: nothing of that day is within two days of `moment`).
        row = (
            await db.execute(
                text(
                    f"""(SELECT "timestamp", {_SNAPSHOT_FIELDS} FROM portfolio_snapshots
                         WHERE user_id = :u AND "timestamp" <= :t AND "timestamp" >= {_EDGE}
                         ORDER BY "timestamp" DESC LIMIT 1)
                        UNION ALL
                        (SELECT last_timestamp, {_SNAPSHOT_FIELDS}
                         FROM portfolio_snapshots_daily
                         WHERE user_id = :u AND last_timestamp <= :t AND bucket < {_EDGE}
                         ORDER BY bucket DESC LIMIT 1)
                        ORDER BY 1 DESC LIMIT 1"""
                ),
                {"u": user_id, "t": moment},
            )
        ).first()
    if row is None:
        return None
    return Snapshot(
        user_id,
        row[0],
        Decimal(row[1]),
        _breakdown(row[2]),
        _breakdown(row[3]),
        _breakdown(row[4]),
    )


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
) -> list[SeriesPoint]:
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
               WHERE user_id = $1 AND bucket < {_EDGE}
                 AND bucket >= {bucket_fn}(CAST($5 AS interval), CAST($2 AS timestamptz), {origin})
                 AND last_timestamp < $6 AND last_timestamp <= $3
               UNION ALL
               SELECT * FROM (
                   SELECT DISTINCT ON (1) date_bin('1 day', "timestamp", {origin}),
                          "timestamp", total_value{extra}
                   FROM portfolio_snapshots
                   WHERE user_id = $1 AND "timestamp" >= {_EDGE}
                     AND "timestamp" >= date_bin('1 day', CAST($2 AS timestamptz), {origin})
                     AND "timestamp" < date_bin('1 day', least($3, $6), {origin}) + {_DAY}
                   ORDER BY 1, "timestamp" DESC) AS unrolled (bucket, last_timestamp)
               WHERE bucket >= {bucket_fn}(CAST($5 AS interval), CAST($2 AS timestamptz), {origin})
                 AND last_timestamp < $6 AND last_timestamp <= $3
              ) AS daily
         ORDER BY b, last_timestamp DESC)) AS sides
        ORDER BY b, o DESC"""
    # Straight on the asyncpg connection (as `write_snapshots` does): no SQLAlchemy Row per
    # point. `uses_timescale` above went through SQLAlchemy, which begins the caller's
    # transaction (lazily, on its first statement), so this runs inside it.
    conn = await _driver(db)
    records = await conn.fetch(query, user_id, start, end, interval, rollup_interval, raw_since)
    if len(records) > _LONG_SERIES:
        # 10,000 points took 10-25 ms to convert: in a thread, the event loop keeps serving
        # (the GIL is handed back every switch interval, 5 ms) — issue 21
        return await asyncio.to_thread(_series_points, records, breakdowns=breakdowns)
    return _series_points(records, breakdowns=breakdowns)


_LONG_SERIES = 2_000


def _series_points(records: Sequence[Any], *, breakdowns: bool) -> list[SeriesPoint]:
    if not breakdowns:
        return [SeriesPoint(b, _at_offset(b, offset), value) for b, offset, value in records]
    return [
        SeriesPoint(b, _at_offset(b, offset), value, _breakdown(by_chain), _breakdown(by_asset))
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
            WHERE user_id = $1 AND bucket < {_EDGE}
              AND bucket >= date_bin('1 day', $2, {_ORIGIN})
              AND last_timestamp > $2 AND last_timestamp <= $3 AND last_timestamp < $4
            UNION ALL
            SELECT * FROM (
                SELECT DISTINCT ON (date_bin('1 day', "timestamp", {_ORIGIN}))
                       "timestamp", total_value
                FROM portfolio_snapshots
                WHERE user_id = $1 AND "timestamp" >= {_EDGE}
                  AND "timestamp" >= date_bin('1 day', $2, {_ORIGIN})
                  AND "timestamp" < date_bin('1 day', least($3, $4), {_ORIGIN}) + {_DAY}
                ORDER BY date_bin('1 day', "timestamp", {_ORIGIN}), "timestamp" DESC) AS unrolled
            WHERE "timestamp" > $2 AND "timestamp" <= $3 AND "timestamp" < $4
        ) AS stored ("timestamp", total_value)
        ORDER BY "timestamp"
        """
    conn = await _driver(db)
    records = await conn.fetch(query, user_id, start, end, raw_since)
    count = len(records)
    return ValuationArrays(
        times=np.fromiter((r[0] for r in records), dtype=np.float64, count=count),
        values=np.fromiter((r[1] for r in records), dtype=np.float64, count=count),
    )


def from_seconds(seconds: float) -> datetime:
    """A UTC datetime from POSIX seconds, at the whole microsecond a stored time is on."""
    return _EPOCH + timedelta(microseconds=round(seconds * 1_000_000))


async def prices_as_of(
    db: AsyncConnection, *, symbol: str, moments: Sequence[datetime], lookback: timedelta
) -> list[Decimal | None]:
    """For each moment, the last positive price of `symbol` at or before it, within `lookback`
    (None: none that recent). Ties at one time resolve by source name."""
    if not moments:
        return []
    conn = await _driver(db)
    records = await conn.fetch(
        """SELECT p.price FROM unnest(CAST($1 AS timestamptz[])) WITH ORDINALITY AS w(m, i)
           LEFT JOIN LATERAL (
               SELECT price FROM prices
               WHERE symbol = $2 AND time <= w.m AND time > w.m - CAST($3 AS interval)
                 AND price > 0
               ORDER BY time DESC, source LIMIT 1) AS p ON true
           ORDER BY w.i""",
        list(moments),
        symbol,
        lookback,
    )
    return [None if r[0] is None else Decimal(r[0]) for r in records]


def _at_offset(bucket: datetime, microseconds: int) -> datetime:
    return bucket + timedelta(microseconds=microseconds) if microseconds else bucket


# --- prices ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A stored price observation."""

    time: datetime
    symbol: str
    price: Decimal
    source: str


async def write_prices(db: AsyncConnection, points: Sequence[PricePoint]) -> int:
    """Store price observations at minute precision: at most one row per symbol per minute.

    Returns the number of rows inserted (a symbol already stored for that minute is skipped).
    """
    if not points:
        return 0
    rows = {(_minute(p.time), p.symbol): p for p in points}
    result = await db.execute(
        text(
            """INSERT INTO prices (time, symbol, price, source)
               SELECT x.t, x.s, x.p, x.src
               FROM unnest(CAST(:t AS timestamptz[]), CAST(:s AS text[]),
                           CAST(:p AS numeric[]), CAST(:src AS text[])) AS x(t, s, p, src)
               WHERE NOT EXISTS (SELECT 1 FROM prices q WHERE q.symbol = x.s AND q.time = x.t)
               ON CONFLICT DO NOTHING"""
        ),
        {
            "t": [t for t, _ in rows],
            "s": [s for _, s in rows],
            "p": [p.price for p in rows.values()],
            "src": [p.source for p in rows.values()],
        },
    )
    return int(result.rowcount or 0)


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


async def prices_near(
    db: AsyncConnection, *, symbols: Collection[str], moment: datetime, window: timedelta
) -> dict[str, Decimal]:
    """Per symbol, the stored price closest to `moment` within ±`window` (absent: none)."""
    if not symbols:
        return {}
    rows = await db.execute(
        text(
            """SELECT DISTINCT ON (symbol) symbol, price FROM prices
               WHERE symbol = ANY(:s)
                 AND time >= CAST(:m AS timestamptz) - CAST(:w AS interval)
                 AND time <= CAST(:m AS timestamptz) + CAST(:w AS interval)
               ORDER BY symbol, abs(extract(epoch FROM time - CAST(:m AS timestamptz)))"""
        ),
        {"s": list(symbols), "m": moment, "w": window},
    )
    return {r[0]: Decimal(r[1]) for r in rows}


async def prices_nearest(
    db: AsyncConnection, wanted: Collection[tuple[str, datetime]], *, window: timedelta
) -> dict[tuple[str, datetime], tuple[datetime, Decimal]]:
    """For each (symbol, moment): the stored price closest to it within ±`window`, with its
    time (absent: none stored that close). One query for the whole batch."""
    # a history's 10,000 moments: sorting them and reading the rows took 10-30 ms; in
    # threads, the event loop keeps serving (issue 21)
    long = len(wanted) > _LONG_SERIES
    pairs = await asyncio.to_thread(_sorted_pairs, wanted) if long else _sorted_pairs(wanted)
    if not pairs:
        return {}
    rows = await db.execute(
        text(
            """SELECT w.symbol, w.moment, p.time, p.price
               FROM unnest(CAST(:s AS text[]), CAST(:m AS timestamptz[])) AS w(symbol, moment)
               CROSS JOIN LATERAL (
                   SELECT time, price FROM prices
                   WHERE symbol = w.symbol
                     AND time >= w.moment - CAST(:w AS interval)
                     AND time <= w.moment + CAST(:w AS interval)
                   ORDER BY abs(extract(epoch FROM time - w.moment)), time
                   LIMIT 1) AS p"""
        ),
        {"s": [p[0] for p in pairs], "m": [p[1] for p in pairs], "w": window},
    )
    return await asyncio.to_thread(_nearest, rows) if long else _nearest(rows)


def _sorted_pairs(wanted: Collection[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    return sorted(set(wanted))


def _nearest(rows: Iterable[Any]) -> dict[tuple[str, datetime], tuple[datetime, Decimal]]:
    return {(r[0], r[1]): (r[2], Decimal(r[3])) for r in rows}


# --- cash flows -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CashFlow:
    """An external deposit (amount > 0) or withdrawal (amount < 0) of a tracked wallet."""

    user_id: uuid.UUID
    chain_id: int
    time: datetime
    symbol: str
    contract: str
    amount: int
    decimals: int
    value_usd: Decimal | None
    tx_hash: str | None = None
    log_index: int = -1
    wallet_id: uuid.UUID | None = None
    block_number: int | None = None


async def write_cash_flows(db: AsyncConnection, flows: Sequence[CashFlow]) -> None:
    """Store detected flows; the same transfer log is stored once."""
    if not flows:
        return
    await db.execute(
        text(
            """INSERT INTO cash_flows (user_id, wallet_id, chain_id, time, symbol, contract,
                amount, decimals, value_usd, tx_hash, log_index, block_number)
               VALUES (:u, :w, :c, :t, :s, :ct, :a, :d, :v, :h, :li, :b)
               ON CONFLICT DO NOTHING"""
        ),
        [
            {
                "u": f.user_id,
                "w": f.wallet_id,
                "c": f.chain_id,
                "t": f.time,
                "s": f.symbol,
                "ct": f.contract,
                "a": f.amount,
                "d": f.decimals,
                "v": f.value_usd,
                "h": f.tx_hash,
                "li": f.log_index,
                "b": f.block_number,
            }
            for f in flows
        ],
    )


async def cash_flows_between(
    db: AsyncConnection, *, user_id: uuid.UUID, start: datetime, end: datetime
) -> list[CashFlow]:
    """The user's flows with start < time <= end, oldest first."""
    rows = await db.execute(
        text(
            """SELECT user_id, chain_id, time, symbol, contract, amount, decimals, value_usd,
                      tx_hash, log_index, wallet_id, block_number
               FROM cash_flows WHERE user_id = :u AND time > :s AND time <= :e
               ORDER BY time"""
        ),
        {"u": user_id, "s": start, "e": end},
    )
    return [
        CashFlow(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            int(r[5]),
            r[6],
            Decimal(r[7]) if r[7] is not None else None,
            r[8],
            r[9],
            r[10],
            r[11],
        )
        for r in rows
    ]


async def delete_cash_flows_after(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID], block_number: int
) -> int:
    """Forget the flows of `wallet_ids` above `block_number` (a reorg orphaned them)."""
    if not wallet_ids:
        return 0
    result = await db.execute(
        text("DELETE FROM cash_flows WHERE wallet_id = ANY(:w) AND block_number > :b"),
        {"w": list(wallet_ids), "b": block_number},
    )
    return int(result.rowcount or 0)


# --- transfer scan cursors ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferCursor:
    """The last block whose transfers were scanned for one wallet."""

    wallet_id: uuid.UUID
    chain_id: int
    block_number: int
    block_hash: str | None


async def transfer_cursors(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, TransferCursor]:
    """The stored cursors of `wallet_ids` (a wallet never scanned has none)."""
    if not wallet_ids:
        return {}
    rows = await db.execute(
        text(
            "SELECT wallet_id, chain_id, block_number, block_hash FROM transfer_cursors "
            "WHERE wallet_id = ANY(:w)"
        ),
        {"w": list(wallet_ids)},
    )
    return {r[0]: TransferCursor(r[0], r[1], int(r[2]), r[3]) for r in rows}


async def save_transfer_cursors(db: AsyncConnection, cursors: Sequence[TransferCursor]) -> None:
    """Upsert cursors (a wallet deleted meanwhile is skipped)."""
    if not cursors:
        return
    await db.execute(
        text(
            """INSERT INTO transfer_cursors (wallet_id, chain_id, block_number, block_hash)
               SELECT x.w, x.c, x.b, x.h
               FROM unnest(CAST(:w AS uuid[]), CAST(:c AS integer[]), CAST(:b AS bigint[]),
                           CAST(:h AS text[])) AS x(w, c, b, h)
               JOIN wallets ON wallets.id = x.w
               ON CONFLICT (wallet_id) DO UPDATE SET block_number = excluded.block_number,
                   block_hash = excluded.block_hash, updated_at = now()"""
        ),
        {
            "w": [c.wallet_id for c in cursors],
            "c": [c.chain_id for c in cursors],
            "b": [c.block_number for c in cursors],
            "h": [c.block_hash for c in cursors],
        },
    )


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """A block of a chain taken as final (the confirmation depth below the head the worker last
    scanned to): while the node still has it, the node serves the chain scanned before."""

    chain_id: int
    block_number: int
    block_hash: str


async def chain_anchors(
    db: AsyncConnection, *, chain_ids: Collection[int]
) -> dict[int, ChainAnchor]:
    """The stored anchor of each of `chain_ids` (a chain never scanned has none)."""
    if not chain_ids:
        return {}
    rows = await db.execute(
        text("SELECT key, value FROM chainfolio_meta WHERE key = ANY(:k)"),
        {"k": [f"chain_anchor:{c}" for c in chain_ids]},
    )
    anchors = {}
    for key, value in rows:
        chain_id = int(key.removeprefix("chain_anchor:"))
        number, block_hash = value.split(":", 1)
        anchors[chain_id] = ChainAnchor(chain_id, int(number), block_hash)
    return anchors


async def save_chain_anchors(db: AsyncConnection, anchors: Sequence[ChainAnchor]) -> None:
    """Store each of `anchors` as its chain's (one per chain, shared by every worker)."""
    if not anchors:
        return
    await db.execute(
        text(
            "INSERT INTO chainfolio_meta (key, value) "
            "SELECT * FROM unnest(CAST(:k AS text[]), CAST(:v AS text[])) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ),
        {
            "k": [f"chain_anchor:{a.chain_id}" for a in anchors],
            "v": [f"{a.block_number}:{a.block_hash}" for a in anchors],
        },
    )


async def latest_snapshot_times(
    db: AsyncConnection, *, user_ids: Collection[uuid.UUID], since: datetime
) -> dict[uuid.UUID, datetime]:
    """Per user, the newest raw snapshot taken after `since` (users without one are absent)."""
    if not user_ids:
        return {}
    rows = await db.execute(
        text(
            """SELECT user_id, max("timestamp") FROM portfolio_snapshots
               WHERE user_id = ANY(:u) AND "timestamp" > :s GROUP BY user_id"""
        ),
        {"u": list(user_ids), "s": since},
    )
    return {r[0]: r[1] for r in rows}
