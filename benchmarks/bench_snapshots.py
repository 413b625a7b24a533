"""Snapshot ingest: rows/s through COPY (the worker's path) vs executemany, same run.

    python benchmarks/bench_snapshots.py [--users 125000] [--database-url postgresql://...]

Writes a 125 K-user hourly burst (the seed's 3 M rows/day is 24 such bursts) into a fresh
database, first with `executemany` INSERTs (baseline) then with the COPY path of
`chainfolio.storage.timeseries.write_snapshots`, and prints rows/s and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import orjson

from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.migrations import migrate
from chainfolio.storage.timeseries import Snapshot, write_snapshots


def burst(users: list[uuid.UUID], hour: datetime) -> list[Snapshot]:
    return [
        Snapshot(
            u,
            hour,
            Decimal("12345.678901"),
            {"ethereum": Decimal("10000.5")},
            {"ETH": Decimal("9000.25"), "USDC": Decimal("3345.428901")},
            {"WALLET": Decimal("12345.678901")},
        )
        for u in users
    ]


async def main(url: str, n_users: int) -> None:
    name = f"chainfolio_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = url.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(db_url, pool_size=2)
    try:
        await migrate(engine)
        users = [uuid.uuid4() for _ in range(n_users)]
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

        conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
        rows = burst(users, hour - timedelta(hours=2))
        async with engine.begin() as db:  # partitions for that month exist after this
            await write_snapshots(db, rows[:1])
        started = time.perf_counter()
        await conn.executemany(
            'INSERT INTO portfolio_snapshots (user_id, "timestamp", total_value, chain_breakdown,'
            " asset_breakdown, category_breakdown) VALUES ($1, $2, $3, $4, $5, $6)"
            ' ON CONFLICT (user_id, "timestamp") DO NOTHING',
            [
                (
                    s.user_id,
                    s.timestamp,
                    s.total_value,
                    orjson.dumps({k: str(v) for k, v in s.chain_breakdown.items()}).decode(),
                    orjson.dumps({k: str(v) for k, v in s.asset_breakdown.items()}).decode(),
                    orjson.dumps({k: str(v) for k, v in s.category_breakdown.items()}).decode(),
                )
                for s in rows
            ],
        )
        baseline = time.perf_counter() - started
        await conn.close()

        rows = burst(users, hour)
        started = time.perf_counter()
        async with engine.begin() as db:
            inserted = await write_snapshots(db, rows)
        copy = time.perf_counter() - started
        assert inserted == n_users
        started = time.perf_counter()
        async with engine.begin() as db:
            again = await write_snapshots(db, rows)
        replay = time.perf_counter() - started
        assert again == 0
        print(f"users per burst            {n_users}")
        print(f"executemany (baseline)     {baseline:.2f} s  {n_users / baseline:,.0f} rows/s")
        print(f"COPY + rollup (ours)       {copy:.2f} s  {n_users / copy:,.0f} rows/s")
        print(f"speed-up                   {baseline / copy:.1f}x")
        print(f"idempotent replay          {replay:.2f} s  (0 rows inserted)")
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=125_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.users))
