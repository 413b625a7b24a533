"""Prices at minute precision and the nearest stored price (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.storage.timeseries import PricePoint, prices_near, write_prices


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
