"""/healthz latency while the heaviest allowed GraphQL document runs, against idle /healthz.

    python benchmarks/bench_healthz_under_load.py [--rounds 5] [--database-url postgresql://...]

Creates the database `chainfolio_bench_healthz` (dropped at the end), seeds one user with 31
days of hourly snapshots and a benchmark symbol with 5-minute prices, and starts
`chainfolio serve` (answer cache off). Baseline: /healthz sampled back to back with nothing
else running. Under load: /healthz sampled back to back while
`compare(period: "30d", interval: "5m")` runs — 8,640 buckets, work 432 of 500: the heaviest
single series the work limit lets through (two do not fit). Prints the p50/p99/max of both
and their ratio. Goal (issue 21): /healthz under 50 ms while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.processes import free_port, running
from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.storage.accounts import ensure_user
from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.migrations import migrate
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots

DB_NAME = "chainfolio_bench_healthz"
SECRET = "bench-healthz-secret-that-is-long-enough-for-hs256"
SUBJECT = "bench-healthz"
SYMBOL = "BENCHHZ"
HEAVY = (
    f'{{ compare(period: "30d", interval: "5m", benchmark: "{SYMBOL}") '
    "{ timestamps portfolio beta } }"
)


async def seed(url: str) -> None:
    """31 days of hourly snapshots and 5-minute prices of the benchmark symbol."""
    engine = create_engine(url, pool_size=1)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        await migrate(engine)
        async with engine.begin() as db:
            user_id = await ensure_user(db, subject=SUBJECT)
            hours = [end - timedelta(hours=h) for h in range(24 * 31)]
            await write_snapshots(
                db,
                [Snapshot(user_id, t, Decimal(1000 + i % 97)) for i, t in enumerate(hours)],
            )
            minutes = [end - timedelta(minutes=5 * k) for k in range(12 * 24 * 31)]
            await write_prices(
                db,
                [
                    PricePoint(t, SYMBOL, Decimal(2000 + k % 89), "bench")
                    for k, t in enumerate(minutes)
                ],
            )
    finally:
        await engine.dispose()


def _figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(samples)} p50 {statistics.median(samples):.1f} ms, p99 {p99:.1f} ms, "
        f"max {ordered[-1]:.1f} ms"
    )


async def measure(base: str, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """(idle /healthz samples, /healthz samples under the heavy document, heavy durations)."""
    token = issue_token(Settings(jwt_secret=SecretStr(SECRET)), subject=SUBJECT)
    headers = {"Authorization": f"Bearer {token}"}
    idle: list[float] = []
    loaded: list[float] = []
    heavy_s: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:

        async def health(into: list[float]) -> None:
            started = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            into.append((time.perf_counter() - started) * 1000)

        async def heavy() -> None:
            started = time.perf_counter()
            answer = await http.post("/graphql", json={"query": HEAVY}, headers=headers)
            assert "errors" not in answer.json(), answer.text[:300]
            heavy_s.append(time.perf_counter() - started)

        await heavy()  # warm caches and connections
        heavy_s.clear()
        for _ in range(rounds):
            deadline = time.perf_counter() + 1.0
            while time.perf_counter() < deadline:
                await health(idle)
            task = asyncio.create_task(heavy())
            while not task.done():
                await health(loaded)
            await task
    return idle, loaded, heavy_s


def main(url: str, rounds: int) -> None:
    admin_dsn = to_asyncpg_dsn(url)

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{DB_NAME}"'))
    db_url = url.rsplit("/", 1)[0] + "/" + DB_NAME
    try:
        asyncio.run(seed(db_url))
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env = {
                "CHAINFOLIO_DATABASE_URL": db_url,
                "CHAINFOLIO_JWT_SECRET": SECRET,
                "CHAINFOLIO_DATA_DIR": tmp,
                "CHAINFOLIO_CACHE_TTL_S": "0",
                "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "0",
                "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0",
            }
            argv = [sys.executable, "-m", "chainfolio", "serve", "--port", str(port)]
            base = f"http://127.0.0.1:{port}"
            with running(argv, env, f"{base}/readyz"):
                idle, loaded, heavy_s = asyncio.run(measure(base, rounds))
        ratio = statistics.median(loaded) / statistics.median(idle)
        heavy_ms = statistics.median(heavy_s) * 1000
        print(f"heavy document (compare 30d/5m, 8,640 buckets): median {heavy_ms:.0f} ms")
        print(f"/healthz idle (baseline):      {_figures(idle)}")
        print(f"/healthz under the document:   {_figures(loaded)}")
        met = "met" if statistics.median(loaded) < 50 else "NOT met"
        print(f"ratio of medians: {ratio:.2f}x; goal p50 < 50 ms: {met}")
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    main(args.database_url, args.rounds)
