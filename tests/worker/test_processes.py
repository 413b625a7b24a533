"""Two `chainfolio worker` processes on one database: they hold disjoint halves of the shards
(advisory locks), and when one is terminated the other takes every shard over."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.devnet import Devnet
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.worker.leases import _SHARD_LOCK_BASE, SHARDS, WORKER_APPLICATION
from tests.servers import worker_process
from tests.worker.test_sharing import _users_in_both_halves


async def _locks_by_pid(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as db:
        rows = await db.execute(
            text(
                """SELECT a.pid, count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                   WHERE l.locktype = 'advisory' AND l.granted
                     AND a.datname = current_database() AND a.application_name = :app
                     AND l.objid BETWEEN :lo AND :hi
                   GROUP BY a.pid"""
            ),
            {
                "app": WORKER_APPLICATION,
                "lo": _SHARD_LOCK_BASE,
                "hi": _SHARD_LOCK_BASE + SHARDS - 1,
            },
        )
        return {int(pid): int(n) for pid, n in rows}


async def _until(engine: AsyncEngine, wanted: list[int]) -> dict[int, int]:
    """Poll until the workers' lock counts, sorted, are `wanted`."""
    while True:
        locks = await _locks_by_pid(engine)
        if sorted(locks.values()) == wanted:
            return locks
        await asyncio.sleep(0.2)


async def test_two_worker_processes_split_shards_and_one_takes_over(
    engine: AsyncEngine, database_url: str, devnet: Devnet, tmp_path: Path
) -> None:
    await _users_in_both_halves(engine, devnet)
    chains_file = tmp_path / "chains.json"
    config = config_from_devnet(devnet.chains[:1])
    chains_file.write_bytes(orjson.dumps(config.model_dump(mode="json")))
    env = {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_CHAINS_FILE": str(chains_file),
        "CHAINFOLIO_REFRESH_INTERVAL_S": "0.5",
        "CHAINFOLIO_DATA_DIR": str(tmp_path),
    }
    with worker_process(env) as first:
        await _until(engine, [SHARDS])
        with worker_process(env) as second:
            halves = await _until(engine, [SHARDS // 2, SHARDS // 2])
            assert len(halves) == 2  # two sessions, 32 shards each: no shard held twice
            first.send_signal(signal.SIGTERM)
            first.wait()
            taken = await _until(engine, [SHARDS])
            assert second.poll() is None
            assert len(taken) == 1
