"""Snapshots: a user's hourly valuation from stored holdings, and retention of old ones."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.storage import timeseries
from chainfolio.storage.holdings import StoredHolding
from chainfolio.storage.migrations import drop_expired_partitions

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
_RETENTION_LOCK = 0x63665254  # one worker at a time drops expired partitions


def snapshot_of(
    user_id: uuid.UUID, moment: datetime, stored: list[StoredHolding]
) -> timeseries.Snapshot:
    total, by_chain, by_asset, by_category = summarize_holdings(stored)
    return timeseries.Snapshot(
        user_id,
        moment,
        total,
        {name: v for (_cid, name), v in by_chain.items()},
        by_asset,
        by_category,
    )


async def enforce_retention(engine: AsyncEngine, *, before: datetime) -> list[str]:
    """Drop snapshot partitions older than `before` (plain PostgreSQL; TimescaleDB has a
    policy), folding their days into the daily rollup first."""
    async with engine.begin() as db:
        if await timeseries.uses_timescale(db):
            return []
        if not await db.scalar(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RETENTION_LOCK}
        ):
            return []  # another worker is at it
        await timeseries.roll_up_days(db, before=before)  # the days about to be dropped
        dropped = await drop_expired_partitions(db, before=before)
    if dropped:
        log.info("retention: dropped %s", ", ".join(dropped))
    return dropped
