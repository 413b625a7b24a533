"""The API's hottest small reads, on the asyncpg driver connection with prepared statements.

An uncached `portfolio` answer reads the holdings (`holdings.current_holdings`) and the total
of 24 hours ago. Through SQLAlchemy the second read cost three round trips (its autobegun
`BEGIN`, the query, the `ROLLBACK` at check-in) and the decoding of three JSON breakdowns the
answer does not use; here it is one round trip of one column. The rare fallback (no snapshot
within two days) keeps the full definition in `timeseries.snapshot_at_or_before`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.database import driver_connection
from chainfolio.storage.holdings import FROM_CURRENT, HOLDING_COLUMNS, HoldingRow, holding_rows
from chainfolio.storage.timeseries import snapshot_at_or_before

_RECENT_TOTAL = """SELECT total_value FROM portfolio_snapshots
    WHERE user_id = $1 AND "timestamp" <= $2 AND "timestamp" > $2 - interval '2 days'
    ORDER BY "timestamp" DESC LIMIT 1"""
_PORTFOLIO = f"""SELECT {HOLDING_COLUMNS}, ({_RECENT_TOTAL}) {FROM_CURRENT}"""


async def total_at_or_before(
    db: AsyncConnection, *, user_id: uuid.UUID, moment: datetime
) -> Decimal | None:
    """The total value of `snapshot_at_or_before(moment)`, or None when there is none.

    Runs inside the caller's transaction when it has one (the driver connection is the same).
    """
    total = await recent_total(await driver_connection(db), user_id=user_id, moment=moment)
    if total is not None:
        return total
    return await older_total(db, user_id=user_id, moment=moment)


async def recent_total(driver: Any, *, user_id: uuid.UUID, moment: datetime) -> Decimal | None:
    """`total_at_or_before` when a snapshot lies within two days before `moment` (else None:
    then `older_total` answers), on an asyncpg connection."""
    total: Decimal | None = await driver.fetchval(_RECENT_TOTAL, user_id, moment)
    return total


async def older_total(
    db: AsyncConnection, *, user_id: uuid.UUID, moment: datetime
) -> Decimal | None:
    """`total_at_or_before` when `recent_total` found nothing."""
    older = await snapshot_at_or_before(db, user_id=user_id, moment=moment)
    return None if older is None else older.total_value


async def portfolio_rows(
    driver: Any, *, user_id: uuid.UUID, moment: datetime
) -> tuple[list[HoldingRow], Decimal | None]:
    """The user's holdings (`holding_rows`) and `recent_total(moment)`, in one round trip
    when the user holds anything (the total rides on every row: PostgreSQL computes it once)."""
    records = await driver.fetch(_PORTFOLIO, user_id, moment)
    if not records:
        return [], await recent_total(driver, user_id=user_id, moment=moment)
    total: Decimal | None = records[0][-1]
    return holding_rows(records), total
