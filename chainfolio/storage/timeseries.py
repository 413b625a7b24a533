"""Portfolio snapshots and their daily rollup: writing them, rolling them up, reading one back.

The series read in buckets is `storage.history`; prices are `storage.prices`, cash flows and
their scan cursors `storage.flows`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.database import driver_connection
from chainfolio.storage.migrations import ensure_snapshot_partitions, partition_name

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


def breakdown_of(raw: Any) -> dict[str, Decimal]:
    data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return {k: Decimal(v) for k, v in (data or {}).items()}


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
EDGE_SQL = (
    "coalesce((SELECT CAST(value AS timestamptz) FROM chainfolio_meta "
    "WHERE key = 'rollup_until'), 'infinity')"  # TimescaleDB: the aggregate holds every day
)
DAY_SQL = "interval '24 hours'"  # not '1 day': a day of a non-UTC session may be 23 or 25 hours
ORIGIN_SQL = f"CAST('{BUCKET_ORIGIN.isoformat()}' AS timestamptz)"
_SNAPSHOT_FIELDS = "total_value, chain_breakdown, asset_breakdown, category_breakdown"
_ROLL_UP = f"""
    INSERT INTO portfolio_snapshots_daily
        SELECT DISTINCT ON (s.user_id, bucket) s.user_id,
            date_bin('1 day', s."timestamp", {ORIGIN_SQL}) AS bucket, s."timestamp",
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
                    f"""SELECT {EDGE_SQL}, ARRAY(SELECT n FROM unnest(CAST(:n AS text[])) AS n
                                             WHERE to_regclass(n) IS NULL)"""
                ),
                {"n": [partition_name(m) for m in months]},
            )
        ).one()
        edge = row[0]
        missing = [m for m in months if partition_name(m) in row[1]]
        if missing:
            await ensure_snapshot_partitions(db, min(missing), max(missing))
    conn = await driver_connection(db)
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
    edge: datetime = await db.scalar(text(f"SELECT {EDGE_SQL}"))
    until = _day(before)
    if until <= edge:
        return 0
    conn = await driver_connection(db)
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
                 WHERE user_id = :u AND bucket < {EDGE_SQL}),
                (SELECT max("timestamp") FROM portfolio_snapshots, (
                    SELECT date_bin('1 day', min("timestamp"), {ORIGIN_SQL}) AS day
                    FROM portfolio_snapshots WHERE user_id = :u AND "timestamp" >= {EDGE_SQL}
                 ) AS first
                 WHERE user_id = :u AND "timestamp" >= first.day
                   AND "timestamp" < first.day + {DAY_SQL}))"""
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
                         WHERE user_id = :u AND "timestamp" <= :t AND "timestamp" >= {EDGE_SQL}
                         ORDER BY "timestamp" DESC LIMIT 1)
                        UNION ALL
                        (SELECT last_timestamp, {_SNAPSHOT_FIELDS}
                         FROM portfolio_snapshots_daily
                         WHERE user_id = :u AND last_timestamp <= :t AND bucket < {EDGE_SQL}
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
        breakdown_of(row[2]),
        breakdown_of(row[3]),
        breakdown_of(row[4]),
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
