"""History and performance reads on a database of ≥ 10 M snapshot rows, with a bare baseline.

    python benchmarks/bench_history.py [--users 1150] [--database-url postgresql://...]
                                       [--keep] [--reuse]

Creates the database `chainfolio_bench_history` on the server, migrates it (plain-PostgreSQL
path, monthly partitions), and fills it server-side (INSERT … SELECT generate_series, in time
order, the way the worker's hourly bursts interleave users): `--users` users x 1 year hourly
plus one heavy user with 3 years, and the daily rollup of every row. Raw retention is set to
400 days so that `history(1y, 1h)` really reads 8,760 raw hourly rows.

Then, for random users, it measures p50/p95 of:
  * `history(365d, 1h)` (8,760 points) through the real GraphQL path (ASGI app in process:
    auth, Strawberry, resolver, storage) and through the resolver alone,
  * a bare endpoint returning the same points (baseline): a Starlette route running the
    asyncpg query and orjson, asked through the same in-process HTTP client and its answer
    parsed the same way; and the bare query + orjson alone, without HTTP (the floor),
  * `performance(1y)` through GraphQL,
  * every period x interval combination (the seed's "queries < 2 s"), for a 1-year user and
    the 3-year user,
and prints the indexes and EXPLAIN (ANALYZE, BUFFERS) plans used. The database is dropped at
the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import asyncpg
import httpx
import orjson
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chainfolio.api.app import create_app
from chainfolio.api.auth import issue_token
from chainfolio.core.periods import EPOCH_OF_TRACKING, INTERVALS, PERIODS
from chainfolio.core.settings import Settings
from chainfolio.resolvers.history import resolve_history
from chainfolio.resolvers.performance import performance_fields, resolve_performance
from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.migrations import StorageOptions, migrate
from chainfolio.storage.timeseries import BUCKET_ORIGIN

DB_NAME = os.environ.get("CHAINFOLIO_BENCH_HISTORY_DB", "chainfolio_bench_history")
"""Name of the scratch database (set it when another run may use the default)."""
RETENTION_DAYS = 400
SECRET = "bench-secret-that-is-long-enough-for-hs256!"
HEAVY = uuid.UUID("00000000-0000-4000-8000-00000000beef")

HISTORY_GQL = 'query { history(period: "365d", interval: "1h") { timestamps values } }'
PERFORMANCE_GQL = """query { performance(period: "1y") { startValue endValue absoluteGain
  twr mwr volatility sharpeRatio maxDrawdown } }"""
PERFORMANCE_KEYS = (
    "startValue", "endValue", "absoluteGain", "twr", "mwr", "volatility", "sharpeRatio",
    "maxDrawdown",
)  # fmt: skip

# The same points as history(365d, 1h) for the raw hourly path: last snapshot per hour bucket.
BARE_SQL = f"""SELECT DISTINCT ON (b) date_bin('1 hour', "timestamp",
        '{BUCKET_ORIGIN.isoformat()}') AS b, total_value::text
    FROM portfolio_snapshots WHERE user_id = $1 AND "timestamp" >= $2 AND "timestamp" <= $3
    ORDER BY b, "timestamp" DESC"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(
    fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 2
) -> tuple[list[float], Any]:
    result: Any = None
    for _ in range(warmup):
        result = await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, result


def row(label: str, samples: list[float]) -> str:
    return (
        f"  {label:<52} p50 {statistics.median(samples):8.1f} ms   "
        f"p95 {percentile(samples, 0.95):8.1f} ms   max {max(samples):8.1f} ms"
    )


async def fill(admin_url: str, n_users: int, now: datetime) -> None:
    """Create, migrate and fill the benchmark database server-side."""
    admin = await asyncpg.connect(to_asyncpg_dsn(admin_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    await admin.close()
    db_url = admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
    engine = create_engine(db_url, pool_size=1)
    await migrate(engine, StorageOptions(retention_days=RETENTION_DAYS))
    await engine.dispose()

    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    started = time.perf_counter()
    heavy_start = now - timedelta(days=3 * 365)
    year_start = now - timedelta(days=365)
    await conn.execute(
        "INSERT INTO users (id, subject) SELECT gen_random_uuid(), 'u' || i "
        "FROM generate_series(1, $1) AS i",
        n_users,
    )
    await conn.execute("INSERT INTO users (id, subject) VALUES ($1, $2)", HEAVY, str(HEAVY))
    await conn.execute("UPDATE users SET subject = id::text")
    # monthly partitions for the heavy user's three years
    month = datetime(heavy_start.year, heavy_start.month, 1, tzinfo=UTC)
    months = []
    while month <= now:
        following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
        months.append((month, following))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS portfolio_snapshots_y{month.year:04d}m{month.month:02d} "
            f"PARTITION OF portfolio_snapshots FOR VALUES FROM ('{month.isoformat()}') "
            f"TO ('{following.isoformat()}')"
        )
        month = following
    # one statement per month, rows in time order (hourly bursts interleave every user)
    total = 0
    for first, following in months:
        lo, hi = max(first, heavy_start), min(following - timedelta(hours=1), now)
        if hi < lo:
            continue
        status = await conn.execute(
            """INSERT INTO portfolio_snapshots (user_id, "timestamp", total_value,
                   chain_breakdown, asset_breakdown, category_breakdown)
               SELECT u.id, t, v.value,
                      jsonb_build_object('ethereum', (v.value * 0.7)::text,
                                         'arbitrum', (v.value * 0.3)::text),
                      jsonb_build_object('ETH', (v.value * 0.6)::text,
                                         'USDC', (v.value * 0.4)::text),
                      jsonb_build_object('WALLET', v.value::text)
               FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 hour') AS t
               CROSS JOIN users AS u
               CROSS JOIN LATERAL (SELECT round((10000 + 3000 * sin(extract(epoch FROM t)
                   / 86400.0 / 30 + hashtext(u.subject) % 100)
                   + random() * 200)::numeric, 6) AS value) AS v
               WHERE u.id = $4 OR t >= $3
               ORDER BY t, u.id""",
            lo,
            hi,
            year_start,
            HEAVY,
        )
        total += int(status.split()[-1])
        print(f"    {first:%Y-%m}: {total:,} rows, {time.perf_counter() - started:6.0f} s")
    await conn.execute(
        f"""INSERT INTO portfolio_snapshots_daily
            SELECT DISTINCT ON (user_id, bucket) user_id,
                date_bin('1 day', "timestamp", '{BUCKET_ORIGIN.isoformat()}') AS bucket,
                "timestamp", total_value, chain_breakdown, asset_breakdown, category_breakdown
            FROM portfolio_snapshots ORDER BY user_id, bucket, "timestamp" DESC"""
    )
    await conn.execute("VACUUM ANALYZE")
    elapsed = time.perf_counter() - started
    print(f"  filled {total:,} snapshot rows (+ daily rollup) in {elapsed:.0f} s")
    await conn.close()


async def measure(admin_url: str, runs: int) -> None:
    # a 400 for a too-fine interval is expected here; Strawberry would log each with a traceback
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
    db_url = admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    rows = await conn.fetchval("SELECT count(*) FROM portfolio_snapshots")
    rollup = await conn.fetchval("SELECT count(*) FROM portfolio_snapshots_daily")
    size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    now = await conn.fetchval('SELECT max("timestamp") FROM portfolio_snapshots')
    users = [
        r[0] for r in await conn.fetch("SELECT id FROM users WHERE id <> $1 ORDER BY id", HEAVY)
    ]
    print(f"  {rows:,} raw snapshot rows, {rollup:,} rollup rows, {len(users):,} + 1 users, {size}")
    rng = random.Random(7)

    with TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=SecretStr(db_url),
            jwt_secret=SecretStr(SECRET),
            data_dir=Path(tmp),
            snapshot_retention_days=RETENTION_DAYS,
            cache_ttl_s=0,  # uncached: every request reads and computes (issue 17)
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services = app.state.services
            services.clock = lambda: now  # the data ends at `now`; read as if it were now
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

                async def graphql(query: str, user: uuid.UUID) -> Any:
                    token = issue_token(settings, subject=str(user))
                    response = await http.post(
                        "/graphql",
                        json={"query": query},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    body = response.json()
                    assert response.status_code == 200, response.text
                    return body

                async def gql_history() -> Any:
                    return await graphql(HISTORY_GQL, rng.choice(users))

                async def resolver_history() -> Any:
                    async with services.engine.connect() as db:
                        return await resolve_history(
                            db,
                            user_id=rng.choice(users),
                            period="365d",
                            interval="1h",
                            now=now,
                            retention_days=RETENTION_DAYS,
                        )

                async def bare_history() -> bytes:
                    records = await conn.fetch(
                        BARE_SQL, rng.choice(users), now - timedelta(days=365), now
                    )
                    return orjson.dumps(
                        {
                            "timestamps": [r[0] for r in records],
                            "values": [r[1] for r in records],
                        }
                    )

                # the bare *endpoint*: the same query and JSON behind a bare Starlette route,
                # asked and its answer parsed through the same in-process HTTP client
                async def bare_route(request: Request) -> Response:
                    user = uuid.UUID(request.query_params["user"])
                    records = await conn.fetch(BARE_SQL, user, now - timedelta(days=365), now)
                    body = {
                        "timestamps": [r[0] for r in records],
                        "values": [r[1] for r in records],
                    }
                    return Response(
                        orjson.dumps({"data": {"history": body}}), media_type="application/json"
                    )

                # performance has no cheaper twin than its own computation: the bare endpoint
                # runs the same resolver (the reads and the analytics) behind a bare route,
                # so the ratio is what auth, GraphQL and Strawberry add
                async def bare_performance_route(request: Request) -> Response:
                    user = uuid.UUID(request.query_params["user"])
                    async with services.engine.connect() as db:
                        view = await resolve_performance(
                            db,
                            user_id=user,
                            period="1y",
                            now=now,
                            retention_days=RETENTION_DAYS,
                            risk_free_rate=settings.risk_free_rate,
                        )
                    fields = performance_fields(view)
                    body = {"data": {"performance": {k: fields[k] for k in PERFORMANCE_KEYS}}}
                    return Response(orjson.dumps(body), media_type="application/json")

                bare_app = Starlette(
                    routes=[
                        Route("/history", bare_route),
                        Route("/performance", bare_performance_route),
                    ]
                )
                bare_http = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=bare_app), base_url="http://bare"
                )

                async def bare_endpoint() -> Any:
                    response = await bare_http.get(
                        "/history", params={"user": str(rng.choice(users))}
                    )
                    assert response.status_code == 200, response.text
                    return response.json()

                async def gql_performance() -> Any:
                    return await graphql(PERFORMANCE_GQL, rng.choice(users))

                async def bare_performance() -> Any:
                    response = await bare_http.get(
                        "/performance", params={"user": str(rng.choice(users))}
                    )
                    assert response.status_code == 200, response.text
                    return response.json()

                print(f"\nhistory(365d, 1h), {runs} runs each, a random 1-year user per run")
                gql, body = await timed(gql_history, runs)
                points = len(body["data"]["history"]["values"])
                res, _ = await timed(resolver_history, runs)
                bare, payload = await timed(bare_history, runs)
                endpoint, answer = await timed(bare_endpoint, runs)
                # alternate once more so drift (other load on the machine) hits every side
                gql2, _ = await timed(gql_history, runs, warmup=0)
                bare2, _ = await timed(bare_history, runs, warmup=0)
                endpoint2, _ = await timed(bare_endpoint, runs, warmup=0)
                gql, bare, endpoint = gql + gql2, bare + bare2, endpoint + endpoint2
                print(
                    f"  points returned: GraphQL {points:,}, bare "
                    f"{len(orjson.loads(payload)['values']):,}, bare endpoint "
                    f"{len(answer['data']['history']['values']):,}"
                )
                print(row("GraphQL (HTTP in process: auth + Strawberry + resolver)", gql))
                print(row("resolver + storage alone (Decimal points)", res))
                print(row("bare endpoint: Starlette + asyncpg + orjson, same client", endpoint))
                print(row("bare query + orjson, no HTTP (floor)", bare))
                print(
                    f"  p95 ratio GraphQL / bare endpoint: "
                    f"{percentile(gql, 0.95) / percentile(endpoint, 0.95):.2f}x   "
                    f"p50 ratio: {statistics.median(gql) / statistics.median(endpoint):.2f}x   "
                    f"(/ bare query, no HTTP: p95 "
                    f"{percentile(gql, 0.95) / percentile(bare, 0.95):.2f}x)"
                )

                print(f"\nperformance(1y), {runs} runs, a random 1-year user per run")
                perf, body = await timed(gql_performance, runs)
                assert "errors" not in body, body
                twin, twin_body = await timed(bare_performance, runs)
                perf2, _ = await timed(gql_performance, runs, warmup=0)
                twin2, _ = await timed(bare_performance, runs, warmup=0)
                perf, twin = perf + perf2, twin + twin2
                await bare_http.aclose()
                assert set(twin_body["data"]["performance"]) == set(body["data"]["performance"])
                print(row("GraphQL performance(1y)", perf))
                print(row("bare endpoint: the same resolver, Starlette + orjson", twin))
                print(
                    f"  p95 ratio GraphQL / bare endpoint: "
                    f"{percentile(perf, 0.95) / percentile(twin, 0.95):.2f}x   "
                    f"p50 ratio: {statistics.median(perf) / statistics.median(twin):.2f}x"
                )

                print("\nevery period x interval, GraphQL history (5 runs each; max shown)")
                pickers: list[tuple[str, Callable[[], uuid.UUID]]] = [
                    ("1-year user", lambda: rng.choice(users)),
                    ("3-year user", lambda: HEAVY),
                ]
                for who, pick in pickers:
                    print(f"  {who}:")
                    worst = 0.0
                    for period in PERIODS:
                        cells = []
                        for interval in INTERVALS:
                            query = (
                                f'query {{ history(period: "{period}", interval: "{interval}") '
                                "{ values } }"
                            )

                            async def one(q: str = query, p: Callable[[], uuid.UUID] = pick) -> Any:
                                return await graphql(q, p())

                            samples, body = await timed(one, 5, warmup=1)
                            worst = max(worst, *samples)
                            if "errors" in body:
                                code = body["errors"][0]["extensions"]["code"]
                                cells.append(f"{interval}: {max(samples):5.0f} ms (400 {code})")
                            else:
                                n = len(body["data"]["history"]["values"])
                                cells.append(f"{interval}: {max(samples):5.0f} ms ({n} pts)")
                        print(f"    {period:>4}  " + " | ".join(cells))
                    print(f"    slowest combination: {worst:.0f} ms (goal < 2000 ms)")

    print("\nindexes")
    for r in await conn.fetch(
        "SELECT tablename, indexdef FROM pg_indexes WHERE tablename IN "
        "('portfolio_snapshots', 'portfolio_snapshots_daily', 'cash_flows') ORDER BY 1"
    ):
        print(f"  {r[0]}: {r[1]}")
    user: uuid.UUID = users[0]
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the query bucketed_history runs")
    plan_sql = f"""EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
        (SELECT DISTINCT ON (b) date_bin($5::interval, "timestamp",
                '{BUCKET_ORIGIN.isoformat()}'::timestamptz) AS b, "timestamp", total_value
         FROM portfolio_snapshots
         WHERE user_id = $1 AND "timestamp" >= greatest($2::timestamptz, $4)
           AND "timestamp" <= $3
         ORDER BY b, "timestamp" DESC)
        UNION ALL
        (SELECT DISTINCT ON (b) date_bin($6::interval, bucket,
                '{BUCKET_ORIGIN.isoformat()}'::timestamptz) AS b, last_timestamp, total_value
         FROM portfolio_snapshots_daily
         WHERE user_id = $1 AND bucket >= date_bin($6::interval, $2::timestamptz,
                '{BUCKET_ORIGIN.isoformat()}'::timestamptz)
           AND last_timestamp < $4 AND last_timestamp >= $2 AND last_timestamp <= $3
         ORDER BY b, last_timestamp DESC)
        ORDER BY 1"""
    raw_since = now - timedelta(days=RETENTION_DAYS)
    hour, day = timedelta(hours=1), timedelta(days=1)
    for label, plan_user, start, step in (
        ("1-year user, history(365d, 1h)", user, now - timedelta(days=365), hour),
        ("3-year user, history(all, 1d): raw + rollup", HEAVY, EPOCH_OF_TRACKING, day),
    ):
        print(f"  -- {label}")
        # one block per monthly partition: print the first, count the others
        seen: dict[str, int] = {}
        for line in await conn.fetch(
            plan_sql, plan_user, start, now, raw_since, step, max(step, day)
        ):
            shape = re.sub(r"y\d{4}m\d{2}|portfolio_snapshots_\d+|[\d.]+", "#", line[0])
            seen[shape] = seen.get(shape, 0) + 1
            if seen[shape] == 1:
                print("   ", line[0])
        repeated = max(seen.values())
        print(f"    (… the partition scan above repeated for {repeated} monthly partitions)")
    await conn.close()


async def drop(admin_url: str) -> None:
    admin = await asyncpg.connect(to_asyncpg_dsn(admin_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await admin.close()


async def main(url: str, n_users: int, runs: int, *, keep: bool, reuse: bool) -> None:
    if not reuse:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        await fill(url, n_users, now)
    try:
        await measure(url, runs)
    finally:
        if not keep:
            await drop(url)
            print(f"\ndropped {DB_NAME}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1150)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database")
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.users, args.runs, keep=args.keep, reuse=args.reuse))
