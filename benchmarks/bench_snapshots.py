"""Snapshot ingest: rows/s through `write_snapshots` (the worker's path) vs executemany, same run.

    python benchmarks/bench_snapshots.py [--users 125000] [--rounds 3] [--prefill-hours 24]
                                         [--database-url postgresql://...]

Writes 125 K-user hourly bursts (the seed's 3 M rows/day is 24 such bursts) into a fresh
database: each round one burst with `executemany` INSERTs (baseline) and one with
`chainfolio.storage.timeseries.write_snapshots`, alternated, each into an hour of its own, and
prints each round and the medians. Then the paths that are not the common one: the same burst
replayed (0 rows inserted), a burst of which half is already stored, a burst two days old
(below the daily rollup's edge, which a fresh database puts at today), and, after filling another
month's partition with `--prefill-hours` bursts (generate_series, server side), one more burst
each way into that full partition (the live partition later in a month at the seed's load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import asyncpg
import orjson

from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.migrations import ensure_snapshot_partitions, migrate
from chainfolio.storage.timeseries import Snapshot, write_snapshots

VALUE = "12345.678901"
BY_CHAIN = {"ethereum": Decimal("10000.5")}
BY_ASSET = {"ETH": Decimal("9000.25"), "USDC": Decimal("3345.428901")}
BY_CATEGORY = {"WALLET": Decimal(VALUE)}


def burst(users: list[uuid.UUID], hour: datetime) -> list[Snapshot]:
    return [Snapshot(u, hour, Decimal(VALUE), BY_CHAIN, BY_ASSET, BY_CATEGORY) for u in users]


def _json(mapping: dict[str, Decimal]) -> str:
    return orjson.dumps({k: str(v) for k, v in mapping.items()}).decode()


async def executemany(conn: asyncpg.Connection, rows: list[Snapshot]) -> None:
    """The baseline: one INSERT … ON CONFLICT DO NOTHING per row, pipelined by asyncpg."""
    async with conn.transaction():
        await conn.executemany(
            'INSERT INTO portfolio_snapshots (user_id, "timestamp", total_value, chain_breakdown,'
            " asset_breakdown, category_breakdown) VALUES ($1, $2, $3, $4, $5, $6)"
            ' ON CONFLICT (user_id, "timestamp") DO NOTHING',
            [
                (
                    s.user_id,
                    s.timestamp,
                    s.total_value,
                    _json(dict(s.chain_breakdown)),
                    _json(dict(s.asset_breakdown)),
                    _json(dict(s.category_breakdown)),
                )
                for s in rows
            ],
        )


async def timed(step: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    result = await step()
    return time.perf_counter() - started, result


async def prefill(conn: asyncpg.Connection, users: list[uuid.UUID], month: datetime, hours: int):
    """`hours` bursts of every user, written by the server itself (not what is measured)."""
    await conn.execute(
        """INSERT INTO portfolio_snapshots (user_id, "timestamp", total_value, chain_breakdown,
               asset_breakdown, category_breakdown)
           SELECT u, CAST($2 AS timestamptz) + h * interval '1 hour', $3, $4, $5, $6
           FROM unnest(CAST($1 AS uuid[])) AS u, generate_series(0, $7 - 1) AS h
           ORDER BY u, h""",
        users,
        month,
        Decimal(VALUE),
        _json(BY_CHAIN),
        _json(BY_ASSET),
        _json(BY_CATEGORY),
        hours,
    )
    await conn.execute("VACUUM ANALYZE portfolio_snapshots")


async def main(url: str, n_users: int, rounds: int, prefill_hours: int) -> None:
    name = f"chainfolio_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = url.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(db_url, pool_size=2)
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))

    async def ours(rows: list[Snapshot]) -> int:
        async with engine.begin() as db:
            return await write_snapshots(db, rows)

    try:
        await migrate(engine)
        users = [uuid.uuid4() for _ in range(n_users)]
        # Hours of the next month, then of the one after (pre-filled): empty partitions, above
        # the daily rollup's edge like the worker's hourly bursts.
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0)
        later = (month + timedelta(days=32)).replace(day=1)
        async with engine.begin() as db:
            await ensure_snapshot_partitions(db, month, later)
        print(f"users per burst {n_users}; {rounds} rounds, alternated")
        base_s: list[float] = []
        ours_s: list[float] = []
        for r in range(rounds):
            rows = burst(users, month + r * HOUR)
            elapsed, _ = await timed(partial(executemany, conn, rows))
            base_s.append(elapsed)
            rows = burst(users, month + (100 + r) * HOUR)
            elapsed, inserted = await timed(partial(ours, rows))
            assert inserted == n_users
            ours_s.append(elapsed)
            print(
                f"  round {r + 1}: executemany {base_s[-1]:.2f} s, "
                f"write_snapshots {ours_s[-1]:.2f} s ({base_s[-1] / ours_s[-1]:.1f}x)"
            )
        base, mine = statistics.median(base_s), statistics.median(ours_s)
        print(f"executemany (baseline), median   {base:.2f} s  {n_users / base:,.0f} rows/s")
        print(f"write_snapshots, median          {mine:.2f} s  {n_users / mine:,.0f} rows/s")
        print(f"speed-up                         {base / mine:.1f}x")

        elapsed, inserted = await timed(partial(ours, burst(users, month + 100 * HOUR)))
        assert inserted == 0
        print(f"same burst replayed              {elapsed:.2f} s  (0 rows inserted)")
        await ours(burst(users[::2], month + 200 * HOUR))
        elapsed, inserted = await timed(partial(ours, burst(users, month + 200 * HOUR)))
        assert inserted == n_users - len(users[::2])
        print(f"half of the burst stored before  {elapsed:.2f} s  ({inserted} rows inserted)")
        elapsed, inserted = await timed(partial(ours, burst(users, now - 48 * HOUR)))
        assert inserted == n_users
        print(f"a back-fill below the rollup edge {elapsed:.2f} s  (days folded in at once)")

        if prefill_hours:
            elapsed, _ = await timed(partial(prefill, conn, users, later, prefill_hours))
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_indexes_size(to_regclass($1)))",
                f"portfolio_snapshots_y{later.year:04d}m{later.month:02d}",
            )
            print(
                f"partition pre-filled with {prefill_hours} x {n_users} rows in {elapsed:.0f} s "
                f"(index {size})"
            )
            rows = burst(users, later + prefill_hours * HOUR)
            elapsed, _ = await timed(partial(executemany, conn, rows))
            rows = burst(users, later + (prefill_hours + 1) * HOUR)
            mine, inserted = await timed(partial(ours, rows))
            assert inserted == n_users
            print(
                f"  executemany into it            {elapsed:.2f} s  {n_users / elapsed:,.0f} rows/s"
            )
            print(f"  write_snapshots into it        {mine:.2f} s  {n_users / mine:,.0f} rows/s")
            print(f"  speed-up                       {elapsed / mine:.1f}x")
    finally:
        await conn.close()
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


HOUR = timedelta(hours=1)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=125_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefill-hours", type=int, default=24)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.users, args.rounds, args.prefill_hours))
