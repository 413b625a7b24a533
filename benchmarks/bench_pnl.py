"""P&L for a user with 10,000 transfers across 50 assets, and the transactions CSV export.

    python benchmarks/bench_pnl.py [--database-url postgresql://...] [--rows 100000]

Creates a scratch database on the server, migrates it and stores (COPY-free: one unnest
insert) a user with `--transfers` movements over 50 assets, and a second user with `--rows`
movements for the export. Measures, uncached (a new request each time, no answer cache):

  * `GET /v1/portfolio/pnl` p50/p95 through the ASGI app (auth, resolver, storage, cost basis);
  * the baseline: a bare asyncpg fetch of the same rows (what any answer must read);
  * `GET /v1/portfolio/transactions.csv` of `--rows` rows: rows/s and the process's RSS
    growth while streaming (flat memory: batches from a server-side cursor), the app driven
    as an ASGI server drives it, each chunk counted and dropped as it arrives (httpx's
    ASGITransport would keep the whole body); the baseline: a bare server-side cursor read
    of the same rows (every column), in the same batches.

The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import resource
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from tempfile import TemporaryDirectory
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from chainfolio.api.app import create_app
from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.database import create_engine, to_asyncpg_dsn
from chainfolio.storage.migrations import migrate
from chainfolio.storage.movements import AssetMovement, write_movements

SECRET = "benchmark-secret-that-is-long-enough!!"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _movements(
    user_id: uuid.UUID, wallet_id: uuid.UUID, count: int, assets: int
) -> list[AssetMovement]:
    rng = random.Random(7)
    held = [0] * assets
    moves = []
    for i in range(count):
        a = rng.randrange(assets)
        amount = rng.randrange(1, 10**18)
        if held[a] > amount and rng.random() < 0.4:
            amount = -amount
        held[a] += amount
        price = Decimal(rng.randrange(100, 500_000)).scaleb(-2)
        units = Decimal(abs(amount)).scaleb(-18)
        moves.append(
            AssetMovement(
                user_id=user_id,
                wallet_id=wallet_id,
                chain_id=1,
                block_number=i,
                time=T0 + timedelta(minutes=10 * i),
                tx_hash=f"0x{i:064x}",
                log_index=-1,
                contract=f"0x{a:040x}",
                symbol=f"TK{a:02d}",
                asset=f"TK{a:02d}",
                decimals=18,
                amount=amount,
                price_usd=price,
                value_usd=units * price,
                kind="external",
            )
        )
    return moves


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def _stream_csv(app: Any, token: str) -> tuple[int, float, float]:
    """Rows, seconds and RSS growth (MiB, sampled at every chunk) of the transactions export,
    each chunk dropped once its lines are counted."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/portfolio/transactions.csv",
        "raw_path": b"/v1/portfolio/transactions.csv",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    asked = False
    lines, status = 0, 0
    start_rss = peak_rss = _rss_mib()

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal lines, status, peak_rss
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            lines += message.get("body", b"").count(b"\n")
            peak_rss = max(peak_rss, _rss_mib())

    started = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - started
    assert status == 200, status
    return lines - 1, elapsed, peak_rss - start_rss


async def _bare_cursor(url: str, user_id: uuid.UUID) -> tuple[int, float]:
    conn = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        started = time.perf_counter()
        rows = 0
        async with conn.transaction():
            cursor = await conn.cursor(
                "SELECT * FROM asset_movements WHERE user_id = $1 ORDER BY time, id", user_id
            )
            while batch := await cursor.fetch(5_000):
                rows += len(batch)
        return rows, time.perf_counter() - started
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    name = f"chainfolio_bench_pnl_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(args.database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = args.database_url.rsplit("/", 1)[0] + "/" + name
    try:
        engine = create_engine(url, pool_size=4)
        await migrate(engine)
        users = {}
        async with engine.begin() as db:
            for label, count in (("pnl", args.transfers), ("csv", args.rows)):
                user_id = await ensure_user(db, subject=f"bench-{label}")
                wallet = await add_wallet(
                    db,
                    user_id=user_id,
                    chain_id=1,
                    address="0x" + f"{len(users) + 1:040x}",
                    label=None,
                    max_wallets=10,
                )
                moves = _movements(user_id, wallet.id, count, 50)
                for start in range(0, len(moves), 5_000):
                    await write_movements(db, moves[start : start + 5_000])
                users[label] = user_id
        await engine.dispose()
        with TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=SecretStr(url), jwt_secret=SecretStr(SECRET), data_dir=tmp
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench", timeout=120
                ) as http:
                    headers = {
                        "Authorization": f"Bearer {issue_token(settings, subject='bench-pnl')}"
                    }
                    conn = await asyncpg.connect(to_asyncpg_dsn(url))
                    api, bare = [], []
                    for run in range(args.runs):
                        started = time.perf_counter()
                        response = await http.get(
                            f"/v1/portfolio/pnl?period=all&_={run}", headers=headers
                        )
                        api.append(time.perf_counter() - started)
                        assert response.status_code == 200, response.text
                        started = time.perf_counter()
                        await conn.fetch(
                            "SELECT * FROM asset_movements WHERE user_id = $1 ORDER BY time, id",
                            users["pnl"],
                        )
                        bare.append(time.perf_counter() - started)
                    await conn.close()
                    p95_api, p95_bare = _pct(api, 0.95), _pct(bare, 0.95)
                    print(
                        f"pnl {args.transfers} transfers / 50 assets: "
                        f"p50 {statistics.median(api) * 1000:.0f} ms, "
                        f"p95 {p95_api * 1000:.0f} ms (goal <= 150 ms)"
                    )
                    print(
                        f"baseline bare fetch of the rows: "
                        f"p50 {statistics.median(bare) * 1000:.0f} ms, "
                        f"p95 {p95_bare * 1000:.0f} ms; ratio p95 {p95_api / p95_bare:.1f}x"
                    )

                    token = issue_token(settings, subject="bench-csv")
                    rows, elapsed, rss_growth = await _stream_csv(app, token)
                    print(
                        f"transactions.csv: {rows} rows in {elapsed:.2f} s = "
                        f"{rows / elapsed:,.0f} rows/s "
                        f"(goal >= 50,000), RSS growth while streaming {rss_growth:.1f} MiB"
                    )
                    bare_rows, bare_elapsed = await _bare_cursor(url, users["csv"])
                    print(
                        f"baseline bare cursor read of the rows: {bare_rows / bare_elapsed:,.0f} "
                        f"rows/s; ratio {rows / elapsed / (bare_rows / bare_elapsed):.2f}x"
                    )
    finally:
        admin = await asyncpg.connect(to_asyncpg_dsn(args.database_url))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
