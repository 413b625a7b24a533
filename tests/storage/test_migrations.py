"""Migrations on a real database: fresh, repeated, partition path, refusal of a newer schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.storage.migrations import (
    LATEST_VERSION,
    SchemaTooNew,
    check_version,
    drop_expired_partitions,
    ensure_snapshot_partitions,
    migrate,
)


async def test_migrate_is_idempotent(engine: AsyncEngine) -> None:
    assert await migrate(engine) == []
    assert await migrate(engine) == []
    async with engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version FROM schema_migrations"))).all()
    assert [v for (v,) in versions] == list(range(1, LATEST_VERSION + 1))


async def test_plain_path_uses_monthly_range_partitions(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        strategy = await conn.scalar(
            text(
                "SELECT partstrat::text FROM pg_partitioned_table p JOIN pg_class c "
                "ON c.oid = p.partrelid WHERE c.relname = 'portfolio_snapshots'"
            )
        )
        mode = await conn.scalar(text("SELECT value FROM chainfolio_meta WHERE key='timescale'"))
    assert strategy == "r"
    assert mode == "false"  # no timescaledb extension on this server


async def test_partitions_created_and_dropped_by_retention(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        created = await ensure_snapshot_partitions(
            conn, datetime(2020, 1, 15, tzinfo=UTC), datetime(2020, 3, 2, tzinfo=UTC)
        )
        assert created == [
            "portfolio_snapshots_y2020m01",
            "portfolio_snapshots_y2020m02",
            "portfolio_snapshots_y2020m03",
        ]
        dropped = await drop_expired_partitions(conn, before=datetime(2020, 3, 1, tzinfo=UTC))
        assert sorted(dropped) == ["portfolio_snapshots_y2020m01", "portfolio_snapshots_y2020m02"]


async def test_newer_schema_is_refused(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        async with conn.begin():
            await conn.execute(
                text("INSERT INTO schema_migrations (version, name) VALUES (:v, 'future')"),
                {"v": LATEST_VERSION + 1},
            )
        with pytest.raises(SchemaTooNew, match="upgrade chainfolio"):
            await check_version(conn)
        await conn.rollback()
        async with conn.begin():
            await conn.execute(
                text("DELETE FROM schema_migrations WHERE version = :v"), {"v": LATEST_VERSION + 1}
            )
