"""Market prices as stored: one observation per symbol and minute, read back nearest a time."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.database import driver_connection
from chainfolio.storage.history import LONG_SERIES


async def prices_as_of(
    db: AsyncConnection, *, symbol: str, moments: Sequence[datetime], lookback: timedelta
) -> list[Decimal | None]:
    """For each moment, the last positive price of `symbol` at or before it, within `lookback`
    (None: none that recent). Ties at one time resolve by source name."""
    if not moments:
        return []
    conn = await driver_connection(db)
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
    long = len(wanted) > LONG_SERIES
    pairs = await asyncio.to_thread(_sorted_pairs, wanted) if long else _sorted_pairs(wanted)
    if not pairs:
        return {}
    # on the asyncpg connection: SQLAlchemy built a Row per pair on the event loop (a
    # history's 10,000 in EUR held it over 50 ms; issue 21); asyncpg decodes them in C
    conn = await driver_connection(db)
    rows = await conn.fetch(
        """SELECT w.symbol, w.moment, p.time, p.price
           FROM unnest($1::text[], $2::timestamptz[]) AS w(symbol, moment)
           CROSS JOIN LATERAL (
               SELECT time, price FROM prices
               WHERE symbol = w.symbol
                 AND time >= w.moment - $3::interval
                 AND time <= w.moment + $3::interval
               ORDER BY abs(extract(epoch FROM time - w.moment)), time
               LIMIT 1) AS p""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        window,
    )
    return await asyncio.to_thread(_nearest, rows) if long else _nearest(rows)


def _sorted_pairs(wanted: Collection[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    return sorted(set(wanted))


def _nearest(rows: Iterable[Any]) -> dict[tuple[str, datetime], tuple[datetime, Decimal]]:
    return {(r[0], r[1]): (r[2], Decimal(r[3])) for r in rows}
