"""`bucketed_history`: raw buckets from the retention edge on, the daily rollup before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.storage.timeseries import SeriesPoint, Snapshot, bucketed_history, write_snapshots

DAY = datetime(2026, 3, 5, tzinfo=UTC)
RAW_SINCE = DAY + timedelta(days=3)  # 03-08 00:00: older buckets come from the daily rollup
START = DAY + timedelta(hours=10, minutes=15)
END = DAY + timedelta(days=4, hours=11)

# (offset from DAY, total value as written: the stored scale must come back unchanged)
ROWS = [
    (timedelta(hours=10), "1.5"),  # before START: raw would drop it; its day's rollup is later
    (timedelta(hours=10, minutes=30), "2.250000"),
    (timedelta(hours=23), "3"),  # last of 03-05: the rollup row
    (timedelta(days=1, hours=1), "4.10"),
    (timedelta(days=3) - timedelta(seconds=1), "5"),  # just before the edge: rollup
    (timedelta(days=3), "6"),  # at the edge: raw
    (timedelta(days=3, minutes=20), "7.000"),  # same hour, newer: wins the 00:00 bucket
    (timedelta(days=3, hours=2, minutes=5), "8"),
    (timedelta(days=4, hours=12), "9"),  # after END
]


async def _seed(db: AsyncConnection) -> uuid.UUID:
    user_id = uuid.uuid4()
    await write_snapshots(
        db,
        [
            Snapshot(
                user_id,
                DAY + offset,
                Decimal(value),
                {"ethereum": Decimal(value)},
                {"ETH": Decimal(value) / 2, "USDC": Decimal(value) / 2},
                {},
            )
            for offset, value in ROWS
        ],
    )
    return user_id


def _at(days: int, hours: int = 0, minutes: int = 0, seconds: int = 0) -> datetime:
    return DAY + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


async def test_hourly_history_splits_rollup_and_raw_at_the_retention_edge(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as db:
        user_id = await _seed(db)
        points = await bucketed_history(
            db,
            user_id=user_id,
            start=START,
            end=END,
            interval=timedelta(hours=1),
            raw_since=RAW_SINCE,
        )
    # rollup buckets are a day at least; raw ones are the asked interval
    assert [(p.bucket, p.timestamp, str(p.total_value)) for p in points] == [
        (_at(0), _at(0, 23), "3"),
        (_at(1), _at(1, 1), "4.10"),
        (_at(2), _at(3) - timedelta(seconds=1), "5"),
        (_at(3), _at(3, 0, 20), "7.000"),
        (_at(3, 2), _at(3, 2, 5), "8"),
    ]
    assert all(type(p.total_value) is Decimal for p in points)
    assert all(p.bucket.tzinfo is not None and p.timestamp.tzinfo is not None for p in points)
    assert all(p.chain_breakdown is None and p.asset_breakdown is None for p in points)
    # the points read are the same as points constructed from their fields
    assert points == [SeriesPoint(p.bucket, p.timestamp, p.total_value) for p in points]
    assert hash(points[0]) == hash(SeriesPoint(_at(0), _at(0, 23), Decimal(3)))


async def test_daily_history_and_breakdowns(engine: AsyncEngine) -> None:
    async with engine.begin() as db:
        user_id = await _seed(db)
        points = await bucketed_history(
            db,
            user_id=user_id,
            start=START,
            end=END,
            interval=timedelta(days=1),
            raw_since=RAW_SINCE,
            breakdowns=True,
        )
    assert [(p.bucket, p.timestamp, str(p.total_value)) for p in points] == [
        (_at(0), _at(0, 23), "3"),
        (_at(1), _at(1, 1), "4.10"),
        (_at(2), _at(3) - timedelta(seconds=1), "5"),
        (_at(3), _at(3, 2, 5), "8"),
    ]
    assert points[1].chain_breakdown == {"ethereum": Decimal("4.10")}
    assert points[1].asset_breakdown == {"ETH": Decimal("2.05"), "USDC": Decimal("2.05")}
    assert points[3].chain_breakdown == {"ethereum": Decimal(8)}


async def test_history_reads_inside_the_callers_transaction(engine: AsyncEngine) -> None:
    """Uncommitted rows of the same transaction are seen; a rollback leaves nothing behind."""
    async with engine.connect() as db:
        user_id = await _seed(db)
        points = await bucketed_history(
            db,
            user_id=user_id,
            start=START,
            end=END,
            interval=timedelta(hours=1),
            raw_since=RAW_SINCE,
        )
        assert len(points) == 5
        assert db.in_transaction()
        await db.rollback()
    async with engine.connect() as db:
        # the first statement on a fresh connection: still inside a transaction it began
        points = await bucketed_history(
            db,
            user_id=user_id,
            start=START,
            end=END,
            interval=timedelta(hours=1),
            raw_since=RAW_SINCE,
        )
        driver = (await db.get_raw_connection()).driver_connection
        assert driver is not None
        assert driver.is_in_transaction()
        await db.rollback()
    assert points == []
