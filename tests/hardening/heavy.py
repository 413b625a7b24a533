"""The heaviest documents the limits let through, their data, and the server's loop probe:
shared by tests/hardening/test_work.py and benchmarks/bench_healthz_under_load.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chainfolio.storage.accounts import ensure_user
from chainfolio.storage.database import create_engine
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.storage.timeseries import Snapshot, write_snapshots

HEAVY = 'compare(period: "30d", interval: "5m", benchmark: $b) { timestamps portfolio beta }'
_FINEST = 'history(period: "all", interval: "5m")'  # 10,000 buckets
_FINEST_EUR = 'history(period: "all", interval: "5m", currency: "EUR")'  # each point converted
_ARRAYS = "{ timestamps values gaps }"
_PERFORMANCE = (
    "{ twr mwr volatility sharpeRatio sortinoRatio maxDrawdown bestInterval worstInterval "
    "attribution { asset gain } nullReasons { metric reason } }"
)
HEAVIEST = {
    "history(all, 5m) with points": (
        f"{{ {_FINEST} {{ points {{ timestamp value }} timestamps values gaps }} }}"
    ),
    "two history(all, 5m), arrays": f"{{ a: {_FINEST} {_ARRAYS} b: {_FINEST} {_ARRAYS} }}",
    "two history(all, 5m) in EUR, arrays": (
        f"{{ a: {_FINEST_EUR} {_ARRAYS} b: {_FINEST_EUR} {_ARRAYS} }}"
    ),
    "compare(30d, 5m)": f"query($b: String!) {{ {HEAVY} }}",
    "two performance(all)": (
        f'{{ a: performance(period: "all") {_PERFORMANCE} '
        f'b: performance(period: "all") {_PERFORMANCE} }}'
    ),
}
"""The heaviest document of each family the work limit lets through (500 of 500, compare's
432), by name; `$b` is the benchmark symbol: 10,000 point objects; two series of 10,000 as
arrays, in USD and converted to EUR; compare at 8,640 buckets; two performance over every
valuation."""

BUSY = "chainfolio_event_loop_busy_seconds"
LAG = "chainfolio_event_loop_lag_seconds"


async def seed_heavy(database_url: str, *, subject: str, symbol: str) -> None:
    """9,900 five-minute snapshots of `subject` (the finest series `all` allows, with room for
    the minutes a run takes) and 5-minute prices of `symbol`: compare at 5m has work too."""
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
            # the EUR rate every 6 hours, as Chainlink's FX feeds (a 24 h heartbeat) or better
            await write_prices(
                db,
                [
                    PricePoint(t, "EUR", Decimal("1.08") + Decimal(k % 7) / 100, "test")
                    for k, t in enumerate(moments[::72])
                ],
            )
    finally:
        await engine.dispose()


def histogram(metrics: str, name: str) -> dict[str, float]:
    """A histogram's cumulative bucket counts in /metrics text, by upper bound (`le`)."""
    counts = {}
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            counts[line.split('le="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return counts


def over(before: dict[str, float], after: dict[str, float], bound: str) -> tuple[float, float]:
    """(observations between the two readings, those of them over `bound` seconds)."""
    count = after["+Inf"] - before["+Inf"]
    return count, count - (after[bound] - before[bound])


def worst(before: dict[str, float], after: dict[str, float]) -> str:
    """The smallest bucket bound that holds every observation between the two readings."""
    count = after["+Inf"] - before["+Inf"]
    for bound, cumulative in after.items():
        if cumulative - before[bound] >= count:
            return f"<= {float(bound) * 1000:g} ms" if bound != "+Inf" else "> the last bound"
    return "?"
