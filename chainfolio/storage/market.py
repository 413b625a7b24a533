"""Market prices read back from the `prices` table: benchmarks and latest quotes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.timeseries import BUCKET_ORIGIN


@dataclass(frozen=True, slots=True)
class BucketPrice:
    """The last positive price of a symbol in one bucket."""

    bucket: datetime
    time: datetime
    price: Decimal


async def known_symbols(db: AsyncConnection, *, symbols: Sequence[str]) -> set[str]:
    """Which of `symbols` have at least one stored price (one index probe each)."""
    rows = await db.execute(
        text(
            "SELECT s FROM unnest(CAST(:s AS text[])) AS s "
            "WHERE EXISTS (SELECT 1 FROM prices WHERE symbol = s)"
        ),
        {"s": list(symbols)},
    )
    return {row[0] for row in rows}


async def bucketed_prices(
    db: AsyncConnection,
    *,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    interval: timedelta,
    raw_since: datetime,
) -> dict[str, list[BucketPrice]]:
    """Last price per bucket of each symbol in [start, end], oldest bucket first.

    Buckets follow `bucketed_history`: `interval` from `raw_since` on, and at least a day
    before it (where portfolio history comes from the daily rollup), on the same origin, so a
    price bucket and a portfolio bucket with the same start cover the same time. Ties at one
    time between sources resolve by source name, so the answer is deterministic.
    """
    origin = BUCKET_ORIGIN.isoformat()
    rows = await db.execute(
        text(
            f"""SELECT DISTINCT ON (symbol, b) symbol,
                    CASE WHEN time >= :r
                         THEN date_bin(CAST(:i AS interval), time, CAST('{origin}' AS timestamptz))
                         ELSE date_bin(CAST(:ri AS interval), time, CAST('{origin}' AS timestamptz))
                    END AS b, time, price
                FROM prices
                WHERE symbol = ANY(CAST(:s AS text[])) AND time >= :start AND time <= :end
                  AND price > 0
                ORDER BY symbol, b, time DESC, source"""
        ),
        {
            "s": list(symbols),
            "start": start,
            "end": end,
            "i": interval,
            "ri": max(interval, timedelta(days=1)),
            "r": raw_since,
        },
    )
    result: dict[str, list[BucketPrice]] = {symbol: [] for symbol in symbols}
    for symbol, bucket, time, price in rows:
        result[symbol].append(BucketPrice(bucket, time, Decimal(price)))
    return result


async def latest_prices(db: AsyncConnection, *, symbols: Sequence[str]) -> dict[str, Decimal]:
    """The newest positive stored price of each symbol that has one."""
    rows = await db.execute(
        text(
            """SELECT s, p.price FROM unnest(CAST(:s AS text[])) AS s
               CROSS JOIN LATERAL (
                   SELECT price FROM prices WHERE symbol = s AND price > 0
                   ORDER BY time DESC, source LIMIT 1) AS p"""
        ),
        {"s": list(symbols)},
    )
    return {symbol: Decimal(price) for symbol, price in rows}
