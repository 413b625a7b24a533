"""GraphQL `portfolio` throughput vs a bare Starlette JSON endpoint; p95 of every REST route.

    python benchmarks/bench_graphql.py [--duration 10] [--connections 64]
                                       [--rest-connections 200] [--database-url postgresql://...]

Needs `wrk` (Debian: `apt-get install wrk`). Creates the database `chainfolio_bench_graphql`,
seeds one user (3 chains, 18 holdings, 30 days of hourly snapshots), and starts, each as a
process with one uvicorn worker: `chainfolio serve` three times (the real app: auth, rate
limiter off, logs, metrics, Strawberry, resolvers, PostgreSQL) — with the per-user answer
cache in process (the default), with the cache in Redis (`CHAINFOLIO_REDIS_URL`), and with
the cache off (`CHAINFOLIO_CACHE_TTL_S=0`: every request reads PostgreSQL and runs
Strawberry) — and a bare Starlette app whose one route returns the very bytes the real
`portfolio` query returned (the baseline: what HTTP + JSON cost with nothing else). No worker
runs, so cached answers stay valid: the cache figures are those of requests between two
refreshes of the user. `wrk` drives them in turn, twice; then every REST route of the real
app (in-process cache) at `--rest-connections` concurrent connections. The database is
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from processes import free_port, running
from pydantic import SecretStr

from chainfolio.api.answers import CACHE_HEADER
from chainfolio.api.auth import issue_token
from chainfolio.core.cache import RedisCache
from chainfolio.core.domain import AssetKind, Category, Holding, Price
from chainfolio.core.settings import Settings
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.holdings import replace_wallet_holdings
from chainfolio.storage.migrations import migrate
from chainfolio.storage.timeseries import Snapshot, write_snapshots

DB_NAME = "chainfolio_bench_graphql"
SECRET = "bench-secret-that-is-long-enough-for-hs256!"
SUBJECT = "bench-user"
PORTFOLIO = (
    "{ portfolio { totalValue change24h changePercent24h "
    "chains { chain value stale } assets { asset balance value } categories { category value } "
    "holdings { chain wallet asset amount balance price priceSource valueUsd updatedAt stale } } }"
)
CHAINS = {1: "ethereum", 137: "polygon", 42161: "arbitrum"}
TOKENS = [  # symbol, decimals, price, amount (whole units)
    ("ETH", 18, "3000", 4),
    ("USDC", 6, "1", 25_000),
    ("USDT", 6, "1", 12_000),
    ("WBTC", 8, "60000", 1),
    ("DAI", 18, "1", 8_000),
]
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p95_us\\": %d, "
    .. "\\"p99_us\\": %d, \\"socket_errors\\": %d, \\"non2xx\\": %d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


# --- the bare baseline server (run as `bench_graphql.py --bare PORT PAYLOAD_FILE`) -----------


def run_bare(port: int, payload_file: Path) -> None:
    """One route returning fixed bytes: the floor for an HTTP JSON API on this machine."""
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import Response  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    payload = payload_file.read_bytes()

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(payload, media_type="application/json")

    app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- seeding ----------------------------------------------------------------------------------


def token_holdings(
    tokens: list[tuple[str, int, str, int]],
    *,
    chain_id: int,
    n: int,
    wallet: str,
    priced_at: datetime,
    extra_units: int = 0,
    dust: int = 0,
) -> list[Holding]:
    """The native coin and ERC-20s of `tokens` (symbol, decimals, price, whole units) held by
    `wallet` on the `n`-th chain: (units + extra_units) whole units plus `dust` base units."""
    return [
        Holding(
            chain_id=chain_id,
            wallet=wallet,
            symbol=symbol,
            contract="native" if i == 0 else "0x" + f"{i + 16 * n:02x}" * 20,
            kind=AssetKind.NATIVE if i == 0 else AssetKind.ERC20,
            category=Category.WALLET,
            decimals=decimals,
            amount=(units + extra_units) * 10**decimals + dust,
            price=Price(symbol, Decimal(price), "chainlink", priced_at),
            block_number=1_000,
        )
        for i, (symbol, decimals, price, units) in enumerate(tokens)
    ]


async def seed(db_url: str, now: datetime) -> None:
    engine = create_engine(db_url, pool_size=1)
    await migrate(engine)
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=SUBJECT)
        for n, (chain_id, chain) in enumerate(CHAINS.items()):
            wallet = await add_wallet(
                db,
                user_id=user_id,
                chain_id=chain_id,
                address="0x" + f"{n + 1:02x}" * 20,
                label=chain,
                max_wallets=10,
            )
            holdings = token_holdings(
                TOKENS,
                chain_id=chain_id,
                n=n,
                wallet=wallet.address,
                priced_at=now - timedelta(minutes=1),
            )
            holdings.append(
                Holding(
                    chain_id=chain_id,
                    wallet=wallet.address,
                    symbol="USDC",
                    contract=holdings[1].contract,
                    kind=AssetKind.ERC20,
                    category=Category.LOAN,
                    decimals=6,
                    amount=2_000 * 10**6,
                    price=Price("USDC", Decimal(1), "chainlink", now - timedelta(minutes=1)),
                    block_number=1_000,
                )
            )
            await replace_wallet_holdings(
                db,
                user_id=user_id,
                wallet_id=wallet.id,
                chain=chain,
                observed_at=now,
                holdings=holdings,
            )
        await write_snapshots(
            db,
            [
                Snapshot(
                    user_id,
                    now - timedelta(hours=h),
                    Decimal(300_000 + (h * 7919) % 5_000),
                    {c: Decimal(100_000) for c in CHAINS.values()},
                    {"ETH": Decimal(36_000), "WBTC": Decimal(180_000)},
                    {"WALLET": Decimal(306_000), "LOAN": Decimal(-6_000)},
                )
                for h in range(1, 24 * 30 + 1)
            ],
        )
    await engine.dispose()


# --- processes and wrk ------------------------------------------------------------------------


def wrk(url: str, script: str, *, connections: int, duration: int) -> dict[str, float]:
    """Run wrk with a Lua script; requests/s and latency percentiles in ms."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script + WRK_DONE)
        lua.flush()
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                lua.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    raw = json.loads(line[4:])
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1000,
        "p95": raw["p95_us"] / 1000,
        "p99": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": raw["socket_errors"],
        "non2xx": raw["non2xx"],
    }


def lua_request(method: str, headers: dict[str, str], body: str | None = None) -> str:
    lines = [f'wrk.method = "{method}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    return "\n".join(lines)


async def near_staleness(
    base: str, redis_url: str, db_url: str, auth: dict[str, str]
) -> list[float]:
    """Milliseconds from an invalidation (by a RedisCache of this process, as a worker does)
    until the API process at `base` answers `portfolio` as a miss; sorted, 30 trials."""
    cache = RedisCache(redis_url)
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    user = await conn.fetchval("SELECT id FROM users WHERE subject = $1", SUBJECT)
    await conn.close()
    body = json.dumps({"query": PORTFOLIO})
    delays = []
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
        for _ in range(30):
            for _ in range(3):  # computed, then from Redis, then near
                await http.post("/graphql", content=body)
            assert (await http.post("/graphql", content=body)).headers[CACHE_HEADER] == "hit"
            await cache.invalidate([user])
            started = time.perf_counter()
            while (await http.post("/graphql", content=body)).headers[CACHE_HEADER] == "hit":
                pass
            delays.append((time.perf_counter() - started) * 1000)
    await cache.aclose()
    return sorted(delays)


def main(url: str, redis_url: str, duration: int, connections: int, rest_connections: int) -> None:
    admin_dsn = to_asyncpg_dsn(url)

    async def recreate() -> None:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
        await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await admin.close()

    asyncio.run(recreate())
    db_url = url.rsplit("/", 1)[0] + "/" + DB_NAME
    token = issue_token(Settings(jwt_secret=SecretStr(SECRET)), subject=SUBJECT)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        asyncio.run(seed(db_url, datetime.now(UTC).replace(second=0, microsecond=0)))
        with tempfile.TemporaryDirectory() as tmp:
            port, bare_port = free_port(), free_port()
            env = {
                "CHAINFOLIO_DATABASE_URL": db_url,
                "CHAINFOLIO_JWT_SECRET": SECRET,
                "CHAINFOLIO_DATA_DIR": tmp,
                "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "0",
                "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0",
                "CHAINFOLIO_MAX_WALLETS_PER_USER": "100000000",
            }
            serve = [sys.executable, "-m", "chainfolio", "serve", "--port", str(port)]
            base = f"http://127.0.0.1:{port}"
            with running([*serve, "--log-level", "warning"], env, f"{base}/readyz"):
                response = httpx.post(
                    f"{base}/graphql", json={"query": PORTFOLIO}, headers=auth, timeout=10
                )
                body = response.json()
                assert response.status_code == 200, response.text
                assert "errors" not in body, body
                holdings = len(body["data"]["portfolio"]["holdings"])
                get_script = lua_request("GET", auth)
                payload = Path(tmp) / "payload.json"
                payload.write_bytes(response.content)
                print(
                    f"portfolio payload: {len(response.content):,} bytes, {holdings} holdings; "
                    f"wrk 1 thread, {connections} connections, {duration} s per run"
                )
                bare = [sys.executable, __file__, "--bare", str(bare_port), str(payload)]
                bare_base = f"http://127.0.0.1:{bare_port}"
                redis_port, off_port, far_port = free_port(), free_port(), free_port()
                redis_base = f"http://127.0.0.1:{redis_port}"
                off_base = f"http://127.0.0.1:{off_port}"
                far_base = f"http://127.0.0.1:{far_port}"
                redis_env = {**env, "CHAINFOLIO_REDIS_URL": redis_url}
                far_env = {**redis_env, "CHAINFOLIO_CACHE_NEAR_TTL_S": "0"}
                off_env = {**env, "CHAINFOLIO_CACHE_TTL_S": "0"}
                gql_script = lua_request("POST", auth, json.dumps({"query": PORTFOLIO}))
                targets = [
                    ("bare Starlette, same bytes", f"{bare_base}/graphql", gql_script),
                    ("GraphQL portfolio, cache in process", f"{base}/graphql", gql_script),
                    ("GraphQL portfolio, Redis + near layer", f"{redis_base}/graphql", gql_script),
                    ("GraphQL portfolio, Redis only", f"{far_base}/graphql", gql_script),
                    ("GraphQL portfolio, cache off", f"{off_base}/graphql", gql_script),
                    ("REST /v1/portfolio, cache in process", f"{base}/v1/portfolio", get_script),
                    ("REST /v1/portfolio, cache off", f"{off_base}/v1/portfolio", get_script),
                ]
                runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in targets}
                serve_at = [sys.executable, "-m", "chainfolio", "serve", "--log-level", "warning"]
                with (
                    running(bare, {}, f"{bare_base}/graphql"),
                    running(
                        [*serve_at, "--port", str(redis_port)], redis_env, redis_base + "/readyz"
                    ),
                    running([*serve_at, "--port", str(off_port)], off_env, off_base + "/readyz"),
                    running([*serve_at, "--port", str(far_port)], far_env, far_base + "/readyz"),
                ):
                    check = httpx.post(f"{bare_base}/graphql", content=b"{}", timeout=5)
                    assert check.content == response.content
                    for other in (redis_base, off_base, far_base):  # all give the same answer
                        same = httpx.post(
                            f"{other}/graphql", json={"query": PORTFOLIO}, headers=auth, timeout=10
                        )
                        assert same.content == response.content, other
                    for _ in range(2):  # alternate, so drift in machine load hits every target
                        for name, target, script in targets:
                            runs[name].append(
                                wrk(target, script, connections=connections, duration=duration)
                            )
                    staleness = asyncio.run(near_staleness(redis_base, redis_url, db_url, auth))
                for name, results in runs.items():
                    rps = [r["rps"] for r in results]
                    bad = sum(r["errors"] + r["non2xx"] for r in results)
                    print(
                        f"  {name:<32} {statistics.mean(rps):8.0f} req/s  "
                        f"(runs {', '.join(f'{x:.0f}' for x in rps)})  "
                        f"p50 {statistics.mean(r['p50'] for r in results):6.1f} ms  "
                        f"p95 {statistics.mean(r['p95'] for r in results):6.1f} ms  errors {bad}"
                    )
                floor = statistics.mean(r["rps"] for r in runs[targets[0][0]])
                for name, _, _ in targets[1:]:
                    share = statistics.mean(r["rps"] for r in runs[name]) / floor
                    print(f"  {name} / bare: {share:.1%}")
                print("  (goal: GraphQL portfolio >= 25 % of bare)")
                print(
                    "  near layer: an invalidation by another process (a worker's RedisCache) "
                    f"reached the API process within p50 {staleness[len(staleness) // 2]:.1f} ms, "
                    f"max {staleness[-1]:.1f} ms over {len(staleness)} trials "
                    "(first request answered as a miss, polled back to back); bound: "
                    "CHAINFOLIO_CACHE_NEAR_TTL_S = 1 s"
                )
                hits = httpx.get(f"{base}/metrics", timeout=5).text
                print(
                    "  " + "\n  ".join(x for x in hits.splitlines() if "cache_requests_total{" in x)
                )

                print(f"\nREST routes, {rest_connections} connections, {duration} s each")
                get = get_script
                random_address = """
request = function()
  local hex = ""
  for i = 1, 40 do hex = hex .. string.format("%x", math.random(0, 15)) end
  local body = '{"chainId": 1, "address": "0x' .. hex .. '"}'
  return wrk.format(nil, nil, nil, body)
end"""
                random_id = """
request = function()
  local id = string.format("%08x-0000-4000-8000-%012x", math.random(0, 2^31),
                           math.random(0, 2^31))
  return wrk.format(nil, "/v1/wallets/" .. id)
end"""
                routes = [
                    ("GET /healthz", "/healthz", lua_request("GET", {})),
                    ("GET /readyz", "/readyz", lua_request("GET", {})),
                    ("GET /v1/portfolio", "/v1/portfolio", get),
                    (
                        "GET /v1/portfolio/history?period=30d&interval=1h",
                        "/v1/portfolio/history?period=30d&interval=1h",
                        get,
                    ),
                    (
                        "GET /v1/portfolio/history?period=90d&interval=1d",
                        "/v1/portfolio/history?period=90d&interval=1d",
                        get,
                    ),
                    (
                        "GET /v1/portfolio/performance?period=30d",
                        "/v1/portfolio/performance?period=30d",
                        get,
                    ),
                    ("GET /v1/wallets", "/v1/wallets", get),
                    (
                        "POST /v1/wallets (new random address)",
                        "/v1/wallets",
                        lua_request("POST", auth) + random_address,
                    ),
                    (
                        "DELETE /v1/wallets/{id} (unknown id: 404)",
                        "/v1/wallets",
                        lua_request("DELETE", auth) + random_id,
                    ),
                    ("POST /graphql portfolio", "/graphql", gql_script),
                ]
                for label, path, script in routes:
                    r = wrk(
                        f"{base}{path}", script, connections=rest_connections, duration=duration
                    )
                    expected_non2xx = "404" in label
                    print(
                        f"  {label:<50} p50 {r['p50']:7.1f} ms  p95 {r['p95']:7.1f} ms  "
                        f"p99 {r['p99']:7.1f} ms  {r['rps']:6.0f} req/s  "
                        f"socket errors {r['errors']:.0f}  "
                        f"{'404s' if expected_non2xx else 'non-2xx'} {r['non2xx']:.0f}"
                    )
    finally:
        asyncio.run(drop())
        print(f"\ndropped {DB_NAME}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        run_bare(int(sys.argv[2]), Path(sys.argv[3]))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rest-connections", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CHAINFOLIO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    args = parser.parse_args()
    main(args.database_url, args.redis_url, args.duration, args.connections, args.rest_connections)
