"""Shard leases: which users this worker refreshes, held with PostgreSQL advisory locks.

Users are split into `SHARDS` shards. A worker holds at most its fair share (shards / live
workers, counted as database sessions named `WORKER_APPLICATION`); a worker that dies drops
its connection, its locks go with it, and the others take its shards on their next cycle.
"""

from __future__ import annotations

import math
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

SHARDS = 64
_SHARD_LOCK_BASE = 0x63660000  # advisory lock ids 0x63660000 + shard
WORKER_APPLICATION = "chainfolio-worker"


def shard_of(user_id: uuid.UUID) -> int:
    """Which shard a user belongs to."""
    return user_id.int % SHARDS


async def worker_sessions(conn: AsyncConnection) -> int:
    """Database sessions named as a worker's lease (live workers, or ones just gone)."""
    count = await conn.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = :a AND datname = current_database()"
        ),
        {"a": WORKER_APPLICATION},
    )
    return int(count or 0)


class ShardLease:
    """The shards this worker holds, on one dedicated database connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.held: set[int] = set()

    async def rebalance(self) -> set[int]:
        """Release above the fair share, then claim free shards up to it."""
        fair = math.ceil(SHARDS / max(await worker_sessions(self._conn), 1))
        for shard in sorted(self.held, reverse=True)[: max(len(self.held) - fair, 0)]:
            await self._conn.scalar(
                text("SELECT pg_advisory_unlock(:k)"), {"k": _SHARD_LOCK_BASE + shard}
            )
            self.held.discard(shard)
        for shard in range(SHARDS):
            if len(self.held) >= fair:
                break
            if shard in self.held:
                continue
            got = await self._conn.scalar(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": _SHARD_LOCK_BASE + shard}
            )
            if got:
                self.held.add(shard)
        await self._conn.commit()
        return set(self.held)
