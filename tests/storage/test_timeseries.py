"""Snapshot ingest (idempotent, replays, two writers), prices at minute precision and the
nearest stored price (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.storage.prices import PricePoint, prices_near, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots


async def test_prices_are_kept_once_per_symbol_per_minute(engine: AsyncEngine) -> None:
    symbol = f"T{uuid.uuid4().hex[:6]}"
    minute = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    async with engine.begin() as db:
        first = await write_prices(
            db,
            [
                PricePoint(minute + timedelta(seconds=5), symbol, Decimal("1.5"), "feed"),
                PricePoint(minute + timedelta(seconds=35), symbol, Decimal("1.6"), "feed"),
                PricePoint(minute + timedelta(seconds=50), symbol, Decimal("1.7"), "api"),
            ],
        )
        again = await write_prices(
            db, [PricePoint(minute + timedelta(seconds=59), symbol, Decimal("9"), "other")]
        )
        later = await write_prices(
            db, [PricePoint(minute + timedelta(minutes=1), symbol, Decimal("2"), "feed")]
        )
        rows = (
            await db.execute(
                text("SELECT time, price FROM prices WHERE symbol = :s ORDER BY time"),
                {"s": symbol},
            )
        ).all()
    assert (first, again, later) == (1, 0, 1)
    assert [r[0] for r in rows] == [minute, minute + timedelta(minutes=1)]
    assert rows[1][1] == 2


async def test_prices_near_picks_the_closest_within_the_window(engine: AsyncEngine) -> None:
    a, b = f"A{uuid.uuid4().hex[:6]}", f"B{uuid.uuid4().hex[:6]}"
    moment = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    async with engine.begin() as db:
        await write_prices(
            db,
            [
                PricePoint(moment - timedelta(minutes=50), a, Decimal(1), "feed"),
                PricePoint(moment + timedelta(minutes=10), a, Decimal(2), "feed"),
                PricePoint(moment - timedelta(hours=3), b, Decimal(3), "feed"),
            ],
        )
        near = await prices_near(db, symbols=[a, b], moment=moment, window=timedelta(minutes=90))
    assert near == {a: Decimal(2)}  # b's only price is outside the window: none


# --- snapshot ingest ------------------------------------------------------------------------

HOUR = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def _burst(users: list[uuid.UUID], moment: datetime, value: str) -> list[Snapshot]:
    return [
        Snapshot(
            u,
            moment,
            Decimal(value),
            {"ethereum": Decimal(value)},
            {"ETH": Decimal(value)},
            {"WALLET": Decimal(value)},
        )
        for u in users
    ]


async def _stored(db: AsyncConnection, users: list[uuid.UUID]) -> dict[tuple[uuid.UUID, str], str]:
    rows = await db.execute(
        text(
            """SELECT user_id, "timestamp", total_value, asset_breakdown
               FROM portfolio_snapshots WHERE user_id = ANY(:u)"""
        ),
        {"u": users},
    )
    return {(r[0], r[1].isoformat()): f"{r[2]} {r[3]['ETH']}" for r in rows}


async def test_a_replayed_burst_inserts_nothing_and_keeps_the_stored_rows(
    engine: AsyncEngine,
) -> None:
    users = [uuid.uuid4() for _ in range(5)]
    async with engine.begin() as db:
        first = await write_snapshots(db, _burst(users, HOUR, "1.50"))
    async with engine.begin() as db:
        again = await write_snapshots(db, _burst(users, HOUR, "9"))  # same keys, other values
        stored = await _stored(db, users)
    assert (first, again) == (5, 0)
    assert set(stored.values()) == {"1.50 1.50"}
    assert len(stored) == 5


@pytest.mark.parametrize("present", [[0], [1, 3], [4]])
async def test_a_mixed_batch_inserts_only_the_missing_rows(
    engine: AsyncEngine, present: list[int]
) -> None:
    """Rows already stored at the first, middle or other positions (probed or not)."""
    users = [uuid.uuid4() for _ in range(5)]
    async with engine.begin() as db:
        before = await write_snapshots(db, _burst([users[i] for i in present], HOUR, "1"))
    async with engine.begin() as db:
        inserted = await write_snapshots(db, _burst(users, HOUR, "2"))
        stored = await _stored(db, users)
    assert (before, inserted) == (len(present), 5 - len(present))
    assert {u: v for (u, _), v in stored.items()} == {
        u: "1 1" if i in present else "2 2" for i, u in enumerate(users)
    }


async def test_a_key_twice_in_one_batch_is_written_once(engine: AsyncEngine) -> None:
    users = [uuid.uuid4() for _ in range(3)]
    batch = _burst(users, HOUR, "1") + _burst(users[1:2], HOUR, "2")
    async with engine.begin() as db:
        inserted = await write_snapshots(db, batch)
        stored = await _stored(db, users)
    assert inserted == 3
    assert len(stored) == 3


async def _blocked_on_a_lock(engine: AsyncEngine, tag: str) -> None:
    """Wait until a session of the test database waits on a lock (the second writer)."""
    async with engine.connect() as db:
        for _ in range(500):
            waiting = await db.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
            await db.rollback()
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"{tag}: the second writer never waited for the first")


@pytest.mark.parametrize("first_commits", [True, False])
async def test_two_writers_of_one_burst_insert_each_row_once(
    engine: AsyncEngine, first_commits: bool
) -> None:
    """A second worker (or a restart) writes the burst while the first has not committed."""
    users = [uuid.uuid4() for _ in range(4)]
    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        assert await write_snapshots(first, _burst(users, HOUR, "1")) == 4

        async def write_second() -> int:
            async with second.begin():
                return await write_snapshots(second, _burst(users, HOUR, "2"))

        task = asyncio.create_task(write_second())
        await _blocked_on_a_lock(engine, "second writer")
        if first_commits:
            await first.commit()
        else:
            await first.rollback()
        inserted = await task
    async with engine.connect() as db:
        stored = await _stored(db, users)
    assert inserted == (0 if first_commits else 4)
    assert set(stored.values()) == {"1 1" if first_commits else "2 2"}
    assert len(stored) == 4
