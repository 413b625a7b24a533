"""Uncached answers against the Python ceiling and PostGraphile, and `serve --workers 2`.

    python benchmarks/bench_uncached.py [--duration 10] [--connections 64] [--users 200]
                                        [--days 30] [--database-url postgresql://...]

Needs `wrk` (Debian) and, for the PostGraphile peer, Node.js: `npm ci` in
`benchmarks/peers` (pinned `postgraphile`; the script runs it when `node_modules` is missing).
Creates the database `chainfolio_bench_uncached`: `--users` users with hourly snapshots over
`--days` days, and one measured user holding 36 assets (3 chains, 2 wallets each, 6 tokens each).
Every chainfolio server runs with the answer cache off (`CHAINFOLIO_CACHE_TTL_S=0`: each
request reads PostgreSQL, runs the resolvers and, for GraphQL, Strawberry), rate limits off.

Targets, each driven by `wrk -t1` in turn, twice (alternated, so drift in machine load hits
every target):

* **ceiling**: a bare Starlette app (`--ceiling`, below) with an asyncpg pool and orjson that
  reads the same rows and builds the same JSON as the GraphQL `portfolio` answer — checked equal
  to chainfolio's answer before measuring. It is the practical Python ceiling: HTTP, one
  prepared query each for holdings and the 24 h total, the sums, and JSON.
* GraphQL `portfolio` (totals, chains, assets, categories, 36 holdings) and REST
  `GET /v1/portfolio`, uncached;
* the holdings-only GraphQL query, uncached, with JWT auth, against **PostGraphile** serving the
  same holdings from `portfolio_assets` (no auth);
* GraphQL `portfolio` on `serve --workers 2`, against the one-worker figure (2 cores shared
  with wrk and PostgreSQL).
Each target also gets its **server CPU per request**: the user + system CPU of its server
process tree over the run, divided by the requests answered (the lower of the two runs). On a
shared 2-core machine throughput moves with whatever else runs; CPU per request hardly does, so
"% of the ceiling's" (ceiling CPU / target CPU) is the steadier comparison.
The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import psutil
from bench_graphql import CHAINS, PORTFOLIO, SECRET, SUBJECT, lua_request, token_holdings, wrk
from processes import free_port, running
from pydantic import SecretStr

from chainfolio.api.auth import issue_token
from chainfolio.core.domain import plain
from chainfolio.core.settings import Settings
from chainfolio.resolvers.updates import percent_change
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.holdings import replace_wallet_holdings
from chainfolio.storage.migrations import migrate
from chainfolio.storage.timeseries import Snapshot, write_snapshots

DB_NAME = "chainfolio_bench_uncached"
PEERS = Path(__file__).resolve().parent / "peers"
HOLDINGS = (
    "{ portfolio { holdings { chain wallet asset amount balance price priceSource valueUsd "
    "updatedAt stale } } }"
)
TOKENS = [  # symbol, decimals, price, amount (whole units)
    ("ETH", 18, "3000.12", 4),
    ("USDC", 6, "1.0001", 25_000),
    ("USDT", 6, "0.9998", 12_000),
    ("WBTC", 8, "60000.5", 1),
    ("DAI", 18, "1", 8_000),
    ("LINK", 18, "14.37", 650),
]


# --- the ceiling (run as `bench_uncached.py --ceiling PORT DSN USER_ID`) ----------------------

_HOLDINGS_SQL = """SELECT pa.chain_id, w.address, pa.asset, pa.category, pa.decimals, pa.amount,
        pa.price, pa.price_source, pa.stale, pa.chain, pa.updated_at
    FROM portfolio_assets pa JOIN wallets w ON w.id = pa.wallet_id
    WHERE pa.user_id = $1
    ORDER BY abs(pa.value_usd) DESC NULLS LAST, pa.chain_id, pa.asset, w.address, pa.contract,
        pa.kind, pa.category"""
_DAY_AGO_SQL = """SELECT total_value FROM portfolio_snapshots
    WHERE user_id = $1 AND "timestamp" <= $2 AND "timestamp" > $2 - interval '2 days'
    ORDER BY "timestamp" DESC LIMIT 1"""


def run_ceiling(port: int, dsn: str, user_id: str) -> None:
    """The same `portfolio` answer from asyncpg rows, with nothing but Starlette and orjson."""
    import orjson  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import Response  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    pool: asyncpg.Pool | None = None
    user = uuid.UUID(user_id)

    async def endpoint(request: Request) -> Response:
        await request.body()
        assert pool is not None
        async with pool.acquire() as con:
            rows = await con.fetch(_HOLDINGS_SQL, user)
            day_ago = await con.fetchval(_DAY_AGO_SQL, user, datetime.now(UTC) - timedelta(1))
        total = Decimal(0)
        chains: dict[tuple[int, str], list[Decimal | bool]] = {}
        assets: dict[str, list[Decimal | None]] = {}
        categories: dict[str, Decimal] = {}
        holdings = []
        for (
            chain_id,
            address,
            asset,
            category,
            decimals,
            amount,
            price,
            source,
            stale,
            chain,
            at,
        ) in rows:
            balance = None if amount is None else Decimal(int(amount)).scaleb(-decimals)
            value = None
            if balance is not None and price is not None:
                value = (-1 if category == "LOAN" else 1) * balance * price
            entry = chains.setdefault((chain_id, chain), [Decimal(0), False])
            entry[0] += value or 0  # type: ignore[operator]
            entry[1] = entry[1] or stale
            summed = assets.setdefault(asset, [Decimal(0), None])
            if balance is not None and category != "LOAN":
                summed[0] += balance  # type: ignore[operator]
            if value is not None:
                total += value
                summed[1] = (summed[1] or 0) + value
                categories[category] = categories.get(category, Decimal(0)) + value
            holdings.append(
                {
                    "chain": chain,
                    "wallet": address,
                    "asset": asset,
                    "amount": None if amount is None else str(int(amount)),
                    "balance": None if balance is None else plain(balance),
                    "price": None if price is None else plain(price),
                    "priceSource": source,
                    "valueUsd": None if value is None else plain(value),
                    "updatedAt": at.isoformat(),
                    "stale": stale,
                }
            )
        change = pct = None
        if day_ago is not None:
            change, pct = total - day_ago, percent_change(total, day_ago)
        by_value = sorted(assets.items(), key=lambda a: (a[1][1] is None, -(a[1][1] or 0), a[0]))
        answer = {
            "data": {
                "portfolio": {
                    "totalValue": plain(total),
                    "change24h": None if change is None else plain(change),
                    "changePercent24h": None if pct is None else plain(pct),
                    "chains": [
                        {"chain": name, "value": plain(v), "stale": s}  # type: ignore[arg-type]
                        for (_, name), (v, s) in sorted(chains.items(), key=lambda c: -c[1][0])  # type: ignore[operator]
                    ],
                    "assets": [
                        {
                            "asset": a,
                            "balance": plain(b),  # type: ignore[arg-type]
                            "value": None if v is None else plain(v),
                        }
                        for a, (b, v) in by_value
                    ],
                    "categories": [
                        {"category": c, "value": plain(v)}
                        for c, v in sorted(categories.items(), key=lambda c: -c[1])
                    ],
                    "holdings": holdings,
                }
            }
        }
        return Response(orjson.dumps(answer), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await pool.close()

    app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- seeding ----------------------------------------------------------------------------------


async def seed(db_url: str, now: datetime, *, users: int, days: int) -> uuid.UUID:
    """The measured user (36 holdings) and `users` others with hourly snapshots."""
    engine = create_engine(db_url, pool_size=1)
    await migrate(engine)
    hour = now.replace(minute=0, second=0, microsecond=0)
    priced_at = now - timedelta(minutes=1)
    async with engine.begin() as db:
        measured = await ensure_user(db, subject=SUBJECT)
        user_ids = [measured]
        for n in range(users - 1):
            user_ids.append(await ensure_user(db, subject=f"other-{n}"))
        for n, (chain_id, chain) in enumerate(CHAINS.items()):
            for w in range(2):
                wallet = await add_wallet(
                    db,
                    user_id=measured,
                    chain_id=chain_id,
                    address="0x" + f"{2 * n + w + 1:02x}" * 20,
                    label=f"{chain}-{w}",
                    max_wallets=100,
                )
                holdings = token_holdings(
                    TOKENS,
                    chain_id=chain_id,
                    n=n,
                    wallet=wallet.address,
                    priced_at=priced_at,
                    extra_units=w,
                    dust=123,
                )
                await replace_wallet_holdings(
                    db,
                    user_id=measured,
                    wallet_id=wallet.id,
                    chain=chain,
                    holdings=holdings,
                    observed_at=now,
                )
    for d in range(days):
        snapshots = [
            Snapshot(u, hour - timedelta(hours=h), Decimal(100_000 + 17 * h + i), {}, {}, {})
            for i, u in enumerate(user_ids)
            for h in range(24 * d, 24 * (d + 1))
        ]
        async with engine.begin() as db:
            await write_snapshots(db, snapshots)
    await engine.dispose()
    return measured


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (uvicorn's workers), in seconds:
    with the per-request division below, a figure the machine's other load hardly moves."""
    parent = psutil.Process(pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _postgraphile(port: int, dsn: str) -> list[str]:
    if not (PEERS / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS, check=True)
    binary = PEERS / "node_modules" / ".bin" / "postgraphile"
    return [
        str(binary),
        "-c",
        dsn,
        "--schema",
        "public",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]


def main(url: str, duration: int, connections: int, users: int, days: int) -> None:
    admin_dsn = to_asyncpg_dsn(url)

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(statement)
        await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{DB_NAME}"'))
    db_url = url.rsplit("/", 1)[0] + "/" + DB_NAME
    dsn = to_asyncpg_dsn(db_url)
    token = issue_token(Settings(jwt_secret=SecretStr(SECRET)), subject=SUBJECT)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        measured = asyncio.run(seed(db_url, datetime.now(UTC), users=users, days=days))
        print(f"seeded {users} users x {days * 24} hourly snapshots; measured user {measured}")
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "CHAINFOLIO_DATABASE_URL": db_url,
                "CHAINFOLIO_JWT_SECRET": SECRET,
                "CHAINFOLIO_DATA_DIR": tmp,
                "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "0",
                "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0",
                "CHAINFOLIO_CACHE_TTL_S": "0",
            }
            ports = {name: free_port() for name in ("one", "two", "ceiling", "pg")}
            base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            serve = [sys.executable, "-m", "chainfolio", "serve", "--log-level", "warning"]
            graph = json.dumps({"query": PORTFOLIO})
            holdings_q = json.dumps({"query": HOLDINGS})
            pg_query = (
                f'{{ allPortfolioAssets(condition: {{userId: "{measured}"}}, '
                "orderBy: VALUE_USD_DESC) { nodes { chain walletByWalletId { address } asset "
                "amount balance price priceSource valueUsd updatedAt stale } } }"
            )
            with (
                running(
                    [*serve, "--port", str(ports["one"])], env, base["one"] + "/readyz"
                ) as one_pid,
                running(
                    [*serve, "--port", str(ports["two"]), "--workers", "2"],
                    env,
                    base["two"] + "/readyz",
                ) as two_pid,
                running(
                    [
                        sys.executable,
                        __file__,
                        "--ceiling",
                        str(ports["ceiling"]),
                        dsn,
                        str(measured),
                    ],
                    {},
                    base["ceiling"] + "/graphql",
                ) as ceiling_pid,
                running(_postgraphile(ports["pg"], dsn), {}, base["pg"] + "/graphql") as pg_pid,
            ):
                ours = httpx.post(f"{base['one']}/graphql", content=graph, headers=auth, timeout=10)
                ceiling = httpx.post(f"{base['ceiling']}/graphql", content=graph, timeout=10)
                assert ours.status_code == 200, ours.text
                assert "errors" not in ours.json(), ours.text
                assert ceiling.json() == ours.json(), "the ceiling must give the same answer"
                same_bytes = ceiling.content == ours.content
                two = httpx.post(f"{base['two']}/graphql", content=graph, headers=auth, timeout=10)
                assert two.json() == ours.json()
                pg = httpx.post(
                    f"{base['pg']}/graphql", json={"query": pg_query}, timeout=10
                ).json()
                assert len(pg["data"]["allPortfolioAssets"]["nodes"]) == 36, pg
                print(
                    f"portfolio answer {len(ours.content):,} bytes, 36 holdings; ceiling answer "
                    f"{'byte-identical' if same_bytes else 'equal as JSON'}; wrk -t1 "
                    f"-c{connections}, {duration} s per run, alternated twice"
                )
                pg_body = json.dumps({"query": pg_query})
                targets = [
                    ("ceiling: Starlette + asyncpg + orjson", base["ceiling"] + "/graphql",
                     lua_request("POST", {"Content-Type": "application/json"}, graph), ceiling_pid),
                    ("GraphQL portfolio, uncached", base["one"] + "/graphql",
                     lua_request("POST", auth, graph), one_pid),
                    ("REST /v1/portfolio, uncached", base["one"] + "/v1/portfolio",
                     lua_request("GET", auth), one_pid),
                    ("GraphQL holdings only, uncached", base["one"] + "/graphql",
                     lua_request("POST", auth, holdings_q), one_pid),
                    ("PostGraphile holdings (no auth)", base["pg"] + "/graphql",
                     lua_request("POST", {"Content-Type": "application/json"}, pg_body), pg_pid),
                    ("GraphQL portfolio, serve --workers 2", base["two"] + "/graphql",
                     lua_request("POST", auth, graph), two_pid),
                ]  # fmt: skip
                runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in targets}
                for _ in range(2):
                    for name, target, script, pid in targets:
                        before = cpu_seconds(pid)
                        result = wrk(target, script, connections=connections, duration=duration)
                        result["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / result["requests"]
                        runs[name].append(result)
        rps = {name: statistics.mean(r["rps"] for r in results) for name, results in runs.items()}
        ceiling_rps = rps["ceiling: Starlette + asyncpg + orjson"]
        cpu: dict[str, float] = {}
        for name, results in runs.items():
            bad = sum(r["errors"] + r["non2xx"] for r in results)
            p50 = statistics.mean(r["p50"] for r in results)
            p95 = statistics.mean(r["p95"] for r in results)
            cpu[name] = min(r["cpu_ms"] for r in results)
            print(
                f"  {name:<40} {rps[name]:7.0f} req/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                f"{rps[name] / ceiling_rps:6.1%} of ceiling  server CPU {cpu[name]:5.2f} ms/req "
                f"({cpu['ceiling: Starlette + asyncpg + orjson'] / cpu[name]:6.1%} of ceiling's)"
                + (f"  ({bad} errors/non-2xx)" if bad else "")
            )
        ratio = rps["GraphQL holdings only, uncached"] / rps["PostGraphile holdings (no auth)"]
        scale = rps["GraphQL portfolio, serve --workers 2"] / rps["GraphQL portfolio, uncached"]
        print(f"holdings only: chainfolio / PostGraphile = {ratio:.2f}x")
        print(f"serve --workers 2 / one worker = {scale:.2f}x")
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ceiling":
        run_ceiling(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        sys.exit(0)
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    main(args.database_url, args.duration, args.connections, args.users, args.days)
