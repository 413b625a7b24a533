"""`bucketed_history`: raw buckets from the retention edge on, the daily rollup before.

The daily rollup is complete below its edge (`rollup_until`, the migration day, then moved by
the retention job): rows written below it are folded in at once, rows above it only by
`roll_up_days`. Each test runs on the same rows written below the edge ("eager"), above it
("lazy": the reads derive the days from raw rows) and above it then folded in ("rolled"); the
answers must not differ. Data above the edge lies whole weeks after DAY, so buckets align.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.storage.history import (
    SeriesPoint,
    bucketed_history,
    from_seconds,
    valuations_between,
)
from chainfolio.storage.timeseries import (
    Snapshot,
    first_snapshot_time,
    roll_up_days,
    snapshot_at_or_before,
    write_snapshots,
)

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


# A whole number of weeks that puts the rows above today's rollup edge.
LATER = timedelta(weeks=(datetime.now(UTC) - DAY).days // 7 + 2)
VARIANTS = ["eager", "lazy", "rolled"]


async def _seed(db: AsyncConnection, variant: str = "eager") -> tuple[uuid.UUID, timedelta]:
    """Write ROWS for a new user; returns it and how far its rows lie after DAY."""
    user_id = uuid.uuid4()
    shift = timedelta(0) if variant == "eager" else LATER
    await write_snapshots(
        db,
        [
            Snapshot(
                user_id,
                DAY + shift + offset,
                Decimal(value),
                {"ethereum": Decimal(value)},
                {"ETH": Decimal(value) / 2, "USDC": Decimal(value) / 2},
                {},
            )
            for offset, value in ROWS
        ],
    )
    if variant == "rolled":
        # 03-05 .. 03-07 folded in; 03-08 on stays raw (the edge falls at the retention edge)
        await roll_up_days(db, before=RAW_SINCE + shift)
    return user_id, shift


async def _history(
    db: AsyncConnection,
    user_id: uuid.UUID,
    shift: timedelta,
    *,
    interval: timedelta,
    start: datetime = START,
    end: datetime = END,
    raw_since: datetime = RAW_SINCE,
    breakdowns: bool = False,
) -> list[SeriesPoint]:
    """bucketed_history over start..end (shifted with the rows), its points shifted back."""
    points = await bucketed_history(
        db,
        user_id=user_id,
        start=start + shift,
        end=end + shift,
        interval=interval,
        raw_since=raw_since + shift,
        breakdowns=breakdowns,
    )
    return [p._replace(bucket=p.bucket - shift, timestamp=p.timestamp - shift) for p in points]


def _at(days: int, hours: int = 0, minutes: int = 0, seconds: int = 0) -> datetime:
    return DAY + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_hourly_history_splits_rollup_and_raw_at_the_retention_edge(
    engine: AsyncEngine, variant: str
) -> None:
    async with engine.connect() as db:
        user_id, shift = await _seed(db, variant)
        points = await _history(db, user_id, shift, interval=timedelta(hours=1))
        await db.rollback()  # the rolled variant moved the edge: not for the other tests
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


@pytest.mark.parametrize("variant", VARIANTS)
async def test_daily_history_and_breakdowns(engine: AsyncEngine, variant: str) -> None:
    async with engine.connect() as db:
        user_id, shift = await _seed(db, variant)
        points = await _history(db, user_id, shift, interval=timedelta(days=1), breakdowns=True)
        await db.rollback()
    assert [(p.bucket, p.timestamp, str(p.total_value)) for p in points] == [
        (_at(0), _at(0, 23), "3"),
        (_at(1), _at(1, 1), "4.10"),
        (_at(2), _at(3) - timedelta(seconds=1), "5"),
        (_at(3), _at(3, 2, 5), "8"),
    ]
    assert points[1].chain_breakdown == {"ethereum": Decimal("4.10")}
    assert points[1].asset_breakdown == {"ETH": Decimal("2.05"), "USDC": Decimal("2.05")}
    assert points[3].chain_breakdown == {"ethereum": Decimal(8)}


NOBODY = uuid.UUID(int=0)  # answers of different users compare equal
MOMENTS = [_at(-1), _at(0, 10, 15), _at(0, 12), _at(1), _at(2, 12), _at(3, 1), _at(6), _at(30)]


async def _answers(db: AsyncConnection, user_id: uuid.UUID, shift: timedelta) -> list[object]:
    """Every read that uses the rollup, over several edges, windows and moments (unshifted)."""
    first = await first_snapshot_time(db, user_id=user_id)
    answers: list[object] = [first and first - shift]
    for moment in MOMENTS:
        found = await snapshot_at_or_before(db, user_id=user_id, moment=moment + shift)
        answers.append(found and replace(found, user_id=NOBODY, timestamp=found.timestamp - shift))
    for raw_since in [_at(0), _at(0, 12), _at(1, 1), _at(2, 12), RAW_SINCE, _at(4), _at(9)]:
        for interval in [timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)]:
            for start, end in [(START, END), (_at(-7), _at(14)), (_at(1, 1), _at(3, 2))]:
                answers.append(
                    await _history(
                        db,
                        user_id,
                        shift,
                        interval=interval,
                        start=start,
                        end=end,
                        raw_since=raw_since,
                        breakdowns=True,
                    )
                )
    return answers


async def test_every_rollup_read_answers_alike_before_and_after_the_days_are_folded_in(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as db:
        eager = await _answers(db, *await _seed(db, "eager"))
        lazy = await _answers(db, *await _seed(db, "lazy"))
        rolled = await _answers(db, *await _seed(db, "rolled"))
        await db.rollback()
    assert lazy == eager
    assert rolled == eager
    assert eager[0] == _at(0, 23)  # the first kept day's last snapshot
    assert [s and (s.timestamp, str(s.total_value)) for s in eager[1 : 1 + len(MOMENTS)]] == [
        None,
        (_at(0, 10, 15) - timedelta(minutes=15), "1.5"),
        (_at(0, 10, 30), "2.250000"),
        (_at(0, 23), "3"),
        (_at(1, 1), "4.10"),
        (_at(3, 0, 20), "7.000"),
        (_at(4, 12), "9"),
        (_at(4, 12), "9"),  # nothing within two days: the last snapshot of the last day
    ]


async def _rollup(db: AsyncConnection, user_id: uuid.UUID, shift: timedelta) -> list[object]:
    rows = await db.execute(
        text(
            """SELECT bucket, last_timestamp, total_value, chain_breakdown, asset_breakdown,
                      category_breakdown
               FROM portfolio_snapshots_daily WHERE user_id = :u ORDER BY bucket"""
        ),
        {"u": user_id},
    )
    return [(r[0] - shift, r[1] - shift, str(r[2]), r[3], r[4], r[5]) for r in rows]


async def test_the_retention_rollup_equals_the_eager_one_and_outlives_the_raw_rows(
    engine: AsyncEngine,
) -> None:
    """Rows below the edge are folded in as they are written; above it, `roll_up_days` folds
    in the same days with the same rows. Then the raw rows of those days go (retention drops
    their partition) and every read still answers as it did over the eager rollup."""
    async with engine.connect() as db:
        eager_user, _ = await _seed(db, "eager")
        lazy_user, shift = await _seed(db, "lazy")
        assert await _rollup(db, lazy_user, shift) == []  # nothing folded in on write
        eager = await _rollup(db, eager_user, timedelta(0))
        assert len(eager) == 5  # 03-05 .. 03-09: the days written
        folded = await roll_up_days(db, before=_at(30) + shift)
        assert folded >= 5  # other tests' rows above the edge are folded in as well
        assert await _rollup(db, lazy_user, shift) == eager
        assert await roll_up_days(db, before=_at(29) + shift) == 0  # the edge never goes back
        for user_id, moved in [(eager_user, timedelta(0)), (lazy_user, shift)]:
            await db.execute(
                text('DELETE FROM portfolio_snapshots WHERE user_id = :u AND "timestamp" < :t'),
                {"u": user_id, "t": _at(5) + moved},
            )
        assert await _answers(db, lazy_user, shift) == await _answers(db, eager_user, timedelta(0))
        await db.rollback()


async def test_a_write_below_the_edge_folds_its_days_in_at_once(engine: AsyncEngine) -> None:
    """A back-fill (or a late worker) below the edge: its days are complete in the rollup."""
    async with engine.connect() as db:
        user_id, _ = await _seed(db, "eager")
        await write_snapshots(db, [Snapshot(user_id, _at(1, 22), Decimal(11), {}, {}, {})])
        rollup = await _rollup(db, user_id, timedelta(0))
        await db.rollback()
    assert [(r[0], r[1], r[2]) for r in rollup] == [  # type: ignore[index]
        (_at(0), _at(0, 23), "3"),
        (_at(1), _at(1, 22), "11"),
        (_at(2), _at(3) - timedelta(seconds=1), "5"),
        (_at(3), _at(3, 2, 5), "8"),
        (_at(4), _at(4, 12), "9"),
    ]


async def test_history_reads_inside_the_callers_transaction(engine: AsyncEngine) -> None:
    """Uncommitted rows of the same transaction are seen; a rollback leaves nothing behind."""

    async def hourly(db: AsyncConnection, user_id: uuid.UUID) -> list[SeriesPoint]:
        return await bucketed_history(
            db,
            user_id=user_id,
            start=START,
            end=END,
            interval=timedelta(hours=1),
            raw_since=RAW_SINCE,
        )

    async with engine.connect() as db:
        user_id, _ = await _seed(db)
        points = await hourly(db, user_id)
        assert len(points) == 5
        assert db.in_transaction()
        await db.rollback()
    async with engine.connect() as db:
        # the first statement on a fresh connection: still inside a transaction it began
        points = await hourly(db, user_id)
        driver = (await db.get_raw_connection()).driver_connection
        assert driver is not None
        assert driver.is_in_transaction()
        await db.rollback()
    assert points == []


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_bucket_holding_the_retention_edge_appears_once(
    engine: AsyncEngine, variant: str
) -> None:
    """Issue 11: the week holding the edge (03-02 .. 03-08) came twice, once from the rollup
    (03-05 .. 03-07) and once from the raw rows (03-08); it is one point, the later snapshot."""
    async with engine.connect() as db:
        user_id, shift = await _seed(db, variant)
        weekly = await _history(db, user_id, shift, interval=timedelta(weeks=1))
        await db.rollback()
    assert [(p.bucket, p.timestamp, str(p.total_value)) for p in weekly] == [
        (_at(-3), _at(3, 2, 5), "8"),
    ]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_first_bucket_holds_the_value_as_of_the_window_start(
    engine: AsyncEngine, variant: str
) -> None:
    """A window starting at 10:45 in raw data: its hour's bucket (10:00) holds the 10:30
    snapshot, the value as of 10:45, rather than dropping that hour."""
    async with engine.connect() as db:
        user_id, shift = await _seed(db, variant)
        points = await _history(db, user_id, shift, interval=timedelta(hours=1), raw_since=_at(-1))
        await db.rollback()
    assert [(p.bucket, str(p.total_value)) for p in points][:2] == [
        (_at(0, 10), "2.250000"),
        (_at(0, 23), "3"),
    ]
    assert len({p.bucket for p in points}) == len(points)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_valuations_at_full_resolution_split_at_the_retention_edge(
    engine: AsyncEngine, variant: str
) -> None:
    """Every raw snapshot from the edge on, each day's last before it; none twice."""
    async with engine.connect() as db:
        user_id, shift = await _seed(db, variant)
        found = await valuations_between(
            db, user_id=user_id, start=START + shift, end=END + shift, raw_since=RAW_SINCE + shift
        )
        await db.rollback()
    pairs = zip(found.times, found.values, strict=True)
    assert [(from_seconds(t) - shift, v) for t, v in pairs] == [
        (_at(0, 23), 3.0),
        (_at(1, 1), 4.1),
        (_at(3) - timedelta(seconds=1), 5.0),
        (_at(3), 6.0),
        (_at(3, 0, 20), 7.0),
        (_at(3, 2, 5), 8.0),
    ]
