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
from chainfolio.storage.timeseries import PricePoint, Snapshot, write_prices, write_snapshots
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
        # point objects weigh as much per point as compare: one finest history with them fits
        for count, refused_work in ((1, None), (2, 1000)):
            query = " ".join(
                f'h{i}: history(period: "all", interval: "5m") {{ points {{ value }} }}'
                for i in range(count)
            )
            answer = await http.post(
                "/graphql", json={"query": f"{{ {query} }}"}, headers=bearer("work")
            )
            messages = [e["message"] for e in answer.json().get("errors", [])]
            if refused_work is None:
                assert not any("over the limit" in m for m in messages), messages
            else:
                assert any(f"work {refused_work}, over" in m for m in messages), messages


FINEST = 'history(period: "all", interval: "5m")'  # 10,000 buckets
ARRAYS = "{ timestamps values gaps }"
PERFORMANCE = (
    "{ twr mwr volatility sharpeRatio sortinoRatio maxDrawdown bestInterval worstInterval "
    "attribution { asset gain } nullReasons { metric reason } }"
)
# The heaviest documents the work limit lets through (500 of 500 but compare's 432), one per
# family: 10,000 point objects; two series of 10,000 as arrays; compare at 8,640 buckets; two
# performance over every valuation.
HEAVIEST = {
    "history(all, 5m) with points": (
        f"{{ {FINEST} {{ points {{ timestamp value }} timestamps values gaps }} }}",
        {},
    ),
    "two history(all, 5m), arrays": (f"{{ a: {FINEST} {ARRAYS} b: {FINEST} {ARRAYS} }}", {}),
    "compare(30d, 5m)": (f"query($b: String!) {{ {HEAVY} }}", None),
    "two performance(all)": (
        f'{{ a: performance(period: "all") {PERFORMANCE} '
        f'b: performance(period: "all") {PERFORMANCE} }}',
        {},
    ),
}
BUSY = "chainfolio_event_loop_busy_seconds"


async def _seed(database_url: str, symbol: str) -> str:
    """9,900 five-minute snapshots (the finest series `all` allows, with room for the test's
    own minutes) and 5-minute benchmark prices: compare at 5m has work too."""
    subject = f"heavy-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as db:
            user_id = await ensure_user(db, subject=subject)
            moments = [end - timedelta(minutes=5 * k) for k in range(9_900)]
            await write_snapshots(
                db,
                [
                    Snapshot(user_id, t, Decimal(1000 + i % 97) + Decimal("0.125"), {}, {}, {})
                    for i, t in enumerate(moments)
                ],
            )
            await write_prices(
                db,
                [
                    PricePoint(t, symbol, Decimal(2000 + k % 89), "test")
                    for k, t in enumerate(moments)
                ],
            )
    finally:
        await engine.dispose()
    return subject


def _over(metrics: str, name: str, bound: str) -> tuple[float, float]:
    """(observations in all, observations over `bound` seconds) of a histogram in /metrics."""
    counts = {}
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            counts[line.split('le="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return counts["+Inf"], counts["+Inf"] - counts[bound]


async def test_the_event_loop_stays_free_while_the_heaviest_documents_run(
    database_url: str, tmp_path: Path
) -> None:
    """Asserted on the server's own loop probe, in the loop thread's CPU time between two
    wakes: what /healthz waits for, without the time a loaded machine leaves the process
    unscheduled (a wall-clock bound there would be flaky). /healthz latency is printed."""
    symbol = f"HV{uuid.uuid4().hex[:6].upper()}"
    subject = await _seed(database_url, symbol)
    env = serve_env(database_url, tmp_path, CHAINFOLIO_CACHE_TTL_S="0")
    documents = {
        name: (query, {"b": symbol} if variables is None else variables)
        for name, (query, variables) in HEAVIEST.items()
    }
    with serve(env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for name, (query, variables) in documents.items():

                async def heavy(query: str = query, variables: dict[str, str] = variables) -> int:
                    answer = await http.post(
                        "/graphql",
                        json={"query": query, "variables": variables},
                        headers=bearer(subject),
                    )
                    assert "errors" not in answer.json(), answer.text[:500]
                    return len(answer.content)

                await heavy()  # warm: parser, validation and connection caches
                before = _over((await http.get("/metrics")).text, BUSY, "0.05")
                task = asyncio.create_task(heavy())
                samples = []
                while not task.done():
                    started = time.perf_counter()
                    assert (await http.get("/healthz")).status_code == 200
                    samples.append((time.perf_counter() - started) * 1000)
                size = await task
                after = _over((await http.get("/metrics")).text, BUSY, "0.05")
                print(
                    f"{name}: {size:,} bytes; the loop probe woke {after[0] - before[0]:.0f} "
                    f"times; /healthz during it: {len(samples)} answers, median "
                    f"{statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"
                )
                assert after[0] - before[0] >= 3  # the probe ran while the document did
                assert after[1] == before[1], f"{name}: the loop was busy over 50 ms"
                assert len(samples) >= 3  # the loop kept serving while the document ran
