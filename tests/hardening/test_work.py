"""The cost model counts the points series and analytics imply (with the request's variables),
and /healthz keeps answering while the heaviest allowed document runs."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from chainfolio.storage.accounts import ensure_user
from chainfolio.storage.database import create_engine
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from tests.hardening.conftest import OpenClient, bearer, serve_env
from tests.servers import serve

HEAVY = 'compare(period: "30d", interval: "5m", benchmark: $b) { timestamps portfolio beta }'


async def test_work_counts_points_with_variables(open_client: OpenClient) -> None:
    nine = " ".join(f"c{i}: {HEAVY}" for i in range(9))
    one = f"query($b: String!) {{ {HEAVY} }}"
    three_series = (
        "query($p: String!, $i: String) { "
        + " ".join(f"h{i}: history(period: $p, interval: $i) {{ values }}" for i in range(3))
        + " }"
    )
    async with open_client() as http:
        refused = await http.post(
            "/graphql",
            json={"query": f"query($b: String!) {{ {nine} }}", "variables": {"b": "ETH"}},
            headers=bearer("work"),
        )
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "work 3888, over the limit of 500" in error["message"]
        allowed = await http.post(
            "/graphql", json={"query": one, "variables": {"b": "ETH"}}, headers=bearer("work")
        )
        codes = {e["extensions"]["code"] for e in allowed.json().get("errors", [])}
        assert "GRAPHQL_VALIDATION_FAILED" not in codes  # runs (no data: INSUFFICIENT_DATA)
        # one document, three series: cheap with coarse variables, refused with the finest
        for variables, refused_work in (
            ({"p": "90d", "i": "1d"}, None),
            ({"p": "all", "i": "5m"}, 750),
        ):
            answer = await http.post(
                "/graphql",
                json={"query": three_series, "variables": variables},
                headers=bearer("work"),
            )
            messages = [e["message"] for e in answer.json().get("errors", [])]
            if refused_work is None:
                assert not any("over the limit" in m for m in messages), messages
            else:
                assert any(f"work {refused_work}, over" in m for m in messages), messages


async def _seed(database_url: str, symbol: str) -> str:
    """30 days of hourly snapshots and 5-minute benchmark prices: compare at 5m has work."""
    subject = f"heavy-{uuid.uuid4().hex[:8]}"
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as db:
            user_id = await ensure_user(db, subject=subject)
            hours = [end - timedelta(hours=h) for h in range(24 * 31)]
            await write_snapshots(
                db,
                [
                    Snapshot(user_id, t, Decimal(1000 + i % 97), {}, {}, {})
                    for i, t in enumerate(hours)
                ],
            )
            minutes = [end - timedelta(minutes=5 * k) for k in range(12 * 24 * 31)]
            await write_prices(
                db,
                [
                    PricePoint(t, symbol, Decimal(2000 + k % 89), "test")
                    for k, t in enumerate(minutes)
                ],
            )
    finally:
        await engine.dispose()
    return subject


async def test_healthz_answers_while_the_heaviest_document_runs(
    database_url: str, tmp_path: Path
) -> None:
    symbol = f"HV{uuid.uuid4().hex[:6].upper()}"
    subject = await _seed(database_url, symbol)
    env = serve_env(database_url, tmp_path, CHAINFOLIO_CACHE_TTL_S="0")
    with serve(env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:

            async def heavy() -> float:
                started = time.perf_counter()
                answer = await http.post(
                    "/graphql",
                    json={"query": f"query($b: String!) {{ {HEAVY} }}", "variables": {"b": symbol}},
                    headers=bearer(subject),
                )
                assert "errors" not in answer.json(), answer.text
                return time.perf_counter() - started

            await heavy()  # warm: parser, validation and connection caches
            task = asyncio.create_task(heavy())
            samples = []
            while not task.done():
                started = time.perf_counter()
                assert (await http.get("/healthz")).status_code == 200
                samples.append((time.perf_counter() - started) * 1000)
            took = await task
    print(
        f"heavy document {took * 1000:.0f} ms; /healthz during it: {len(samples)} answers, "
        f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"
    )
    assert len(samples) >= 3  # the loop kept serving while the document ran
    assert statistics.median(samples) < 50
