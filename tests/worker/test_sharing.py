"""Several workers: wallets split by advisory-locked shards without overlap, a stopped worker's
shards taken over; and the retention job that drops expired snapshot partitions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.bus.broadcast import Bus
from chainfolio.devnet import Devnet
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import ChainSet, open_chains
from chainfolio.storage.accounts import add_wallet, all_wallets, ensure_user
from chainfolio.storage.migrations import ensure_snapshot_partitions
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from chainfolio.worker.cycle import Worker
from chainfolio.worker.leases import (
    SHARDS,
    WORKER_APPLICATION,
    ShardLease,
    shard_of,
    worker_sessions,
)
from chainfolio.worker.options import WorkerOptions
from tests.worker.test_flows import Clock


@pytest.fixture(scope="module")
async def chains(devnet: Devnet) -> AsyncIterator[ChainSet]:
    async with open_chains(config_from_devnet(devnet.chains[:1])) as opened:
        yield opened


async def _lease(conn: AsyncConnection) -> ShardLease:
    await conn.execute(
        text("SELECT set_config('application_name', :a, false)"), {"a": WORKER_APPLICATION}
    )
    await conn.commit()
    return ShardLease(conn)


async def _no_worker_sessions_left(engine: AsyncEngine) -> None:
    """Wait until no earlier test's worker session is left: the backend of a stopped worker
    process (test_processes, test_deployment, test_live) can outlive the process for a moment,
    and a lease's fair share counts every session named as a worker."""
    while True:
        async with engine.connect() as db:
            if await worker_sessions(db) == 0:
                return
        await asyncio.sleep(0.05)


async def _users_in_both_halves(engine: AsyncEngine, devnet: Devnet) -> list[uuid.UUID]:
    users: list[uuid.UUID] = []
    chain = devnet.chain(1)
    async with engine.begin() as db:
        while len(users) < 6 or len({shard_of(u) < SHARDS // 2 for u in users}) < 2:
            user_id = await ensure_user(db, subject=f"shard-{uuid.uuid4().hex[:8]}")
            wallet = chain.wallets[len(users) % len(chain.wallets)]
            await add_wallet(
                db, user_id=user_id, chain_id=1, address=wallet, label=None, max_wallets=5
            )
            users.append(user_id)
    return users


async def test_two_workers_refresh_each_wallet_once_and_take_over(
    engine: AsyncEngine, devnet: Devnet, chains: ChainSet
) -> None:
    users = await _users_in_both_halves(engine, devnet)
    await _no_worker_sessions_left(engine)  # two workers: half the shards each
    names = {1: chains.config.chains[0].name}
    clock_a = Clock(datetime(2026, 11, 21, 8, 10, tzinfo=UTC))
    clock_b = Clock(datetime(2026, 11, 21, 8, 20, tzinfo=UTC))
    async with Bus("memory://") as bus:
        a = Worker(engine=engine, bus=bus, chains=chains, clock=clock_a, chain_names=names)
        b = Worker(engine=engine, bus=bus, chains=chains, clock=clock_b, chain_names=names)
        async with engine.connect() as conn_b:
            lease_b = await _lease(conn_b)
            async with engine.connect() as conn_a:
                lease_a = await _lease(conn_a)
                for _ in range(2):  # the first to arrive gives back what is above its share
                    await lease_a.rebalance()
                    await lease_b.rebalance()
                assert lease_a.held.isdisjoint(lease_b.held)
                assert lease_a.held | lease_b.held == set(range(SHARDS))
                assert len(lease_a.held) == len(lease_b.held) == SHARDS // 2

                report_a = await a.refresh(lease_a.held)
                report_b = await b.refresh(lease_b.held)
                async with engine.connect() as db:
                    tracked = [w for w in await all_wallets(db) if w.chain_id == 1]
                    updated: dict[uuid.UUID, datetime] = dict(
                        (
                            await db.execute(
                                text(
                                    "SELECT user_id, max(updated_at) FROM portfolio_assets "
                                    "WHERE user_id = ANY(:u) GROUP BY user_id"
                                ),
                                {"u": users},
                            )
                        ).all()
                    )
                    snapshots: dict[uuid.UUID, int] = dict(
                        (
                            await db.execute(
                                text(
                                    "SELECT user_id, count(*) FROM portfolio_snapshots "
                                    "WHERE user_id = ANY(:u) GROUP BY user_id"
                                ),
                                {"u": users},
                            )
                        ).all()
                    )
                assert report_a.wallets + report_b.wallets == len(tracked)
                for user_id in users:  # refreshed by the one worker holding its shard
                    owner = clock_a if shard_of(user_id) in lease_a.held else clock_b
                    assert updated[user_id] == owner.now
                    assert snapshots[user_id] == 1
                # Worker A stops: its session ends (run() closes it) and its locks go with it.
                await conn_a.invalidate()
            taken = await lease_b.rebalance()
            assert taken == set(range(SHARDS))
            report = await b.refresh(taken)
            assert report.wallets == len(tracked)
            await conn_b.invalidate()  # as run() does: never pool a connection holding locks


async def test_a_stopped_worker_leaves_no_lock_nor_name_behind(
    engine: AsyncEngine, devnet: Devnet, chains: ChainSet
) -> None:
    users = await _users_in_both_halves(engine, devnet)
    await _no_worker_sessions_left(engine)  # then none is left behind by this one
    names = {1: chains.config.chains[0].name}
    clock = Clock(datetime(2026, 11, 22, 8, 10, tzinfo=UTC))
    async with Bus("memory://") as bus:
        worker = Worker(
            engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names, interval_s=0.05
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        refreshed = 0
        while refreshed < len(users):  # until the loop has refreshed every new user
            await asyncio.sleep(0.05)
            async with engine.connect() as db:
                refreshed = await db.scalar(
                    text(
                        "SELECT count(DISTINCT user_id) FROM portfolio_snapshots "
                        "WHERE user_id = ANY(:u)"
                    ),
                    {"u": users},
                )
        stop.set()
        await task
    async with engine.connect() as db:
        assert await worker_sessions(db) == 0
        lease = await _lease(db)
        assert await lease.rebalance() == set(range(SHARDS))
        await db.invalidate()


def _retention_worker(
    engine: AsyncEngine, bus: Bus, chains: ChainSet, now: datetime, retention_days: int
) -> Worker:
    """A worker whose clock stands at `now`, keeping `retention_days` of raw snapshots."""
    return Worker(
        engine=engine,
        bus=bus,
        chains=chains,
        clock=Clock(now),
        chain_names={},
        options=WorkerOptions(retention_days=retention_days),
    )


async def test_retention_drops_only_expired_partitions(
    engine: AsyncEngine, chains: ChainSet
) -> None:
    async with engine.begin() as db:
        await ensure_snapshot_partitions(
            db, datetime(2003, 1, 1, tzinfo=UTC), datetime(2003, 3, 1, tzinfo=UTC)
        )
    async with Bus("memory://") as bus:
        worker = _retention_worker(engine, bus, chains, datetime(2003, 5, 1, tzinfo=UTC), 60)
        dropped = await worker.enforce_retention()
        assert sorted(dropped) == ["portfolio_snapshots_y2003m01", "portfolio_snapshots_y2003m02"]
        assert await worker.enforce_retention() == []
    async with engine.begin() as db:
        kept = await db.scalar(text("SELECT to_regclass('portfolio_snapshots_y2003m03')"))
        await db.execute(text("DROP TABLE portfolio_snapshots_y2003m03"))  # leave no trace
    assert kept is not None


async def test_retention_folds_the_days_it_drops_into_the_daily_rollup(
    engine: AsyncEngine, chains: ChainSet
) -> None:
    """Days above the rollup's edge live only as raw rows until retention: the job folds each
    whole day (its last snapshot) into the rollup, then drops the partition. (Played in 2004,
    with the edge moved back there for the test: retention in this shared database must not
    reach the partitions of today's tests.)"""
    async with engine.begin() as db:
        edge = await db.scalar(text("SELECT value FROM chainfolio_meta WHERE key = 'rollup_until'"))
        await db.execute(
            text("UPDATE chainfolio_meta SET value = :v WHERE key = 'rollup_until'"),
            {"v": "2004-01-01T00:00:00+00:00"},
        )
    try:
        async with engine.begin() as db:
            user_id = await ensure_user(db, subject=f"retention-{uuid.uuid4().hex[:6]}")
            await write_snapshots(
                db,
                [
                    Snapshot(
                        user_id, datetime(2004, 1, day, hour, tzinfo=UTC), Decimal(day * 100 + hour)
                    )
                    for day in (1, 2, 3)
                    for hour in (0, 12, 23)
                ],
            )

        async def daily() -> list[tuple[datetime, datetime, Decimal]]:
            async with engine.connect() as db:
                rows = await db.execute(
                    text(
                        "SELECT bucket, last_timestamp, total_value FROM portfolio_snapshots_daily"
                        " WHERE user_id = :u ORDER BY bucket"
                    ),
                    {"u": user_id},
                )
                return [(r[0], r[1], r[2]) for r in rows]

        assert await daily() == []  # above the edge: not folded on write
        async with Bus("memory://") as bus:
            worker = _retention_worker(engine, bus, chains, datetime(2004, 4, 1, tzinfo=UTC), 45)
            assert await worker.enforce_retention() == ["portfolio_snapshots_y2004m01"]
        assert await daily() == [
            (datetime(2004, 1, d, tzinfo=UTC), datetime(2004, 1, d, 23, tzinfo=UTC), d * 100 + 23)
            for d in (1, 2, 3)
        ]
    finally:
        async with engine.begin() as db:  # the edge is the session database's: put it back
            await db.execute(
                text("UPDATE chainfolio_meta SET value = :v WHERE key = 'rollup_until'"),
                {"v": edge},
            )
            await db.execute(text("DROP TABLE IF EXISTS portfolio_snapshots_y2004m01"))
