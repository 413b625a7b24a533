"""Periods (`30d`, `ytd`, `all`…) and intervals (`1h`, `1d`…) as the API accepts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chainfolio.core.errors import InvalidInput

PERIODS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
    "ytd": None,
    "all": None,
}
PERIOD_ALIASES = {
    "1d": "24h",
    "1w": "7d",
    "1m": "30d",
    "3m": "90d",
    "12m": "1y",
    "365d": "1y",
    "max": "all",
}
INTERVALS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}
MAX_POINTS = 10_000
EPOCH_OF_TRACKING = datetime(2015, 7, 30, tzinfo=UTC)
"""Start of `all`: Ethereum's genesis; nothing tracked here is older."""


@dataclass(frozen=True, slots=True)
class Window:
    """A resolved period: its name and the [start, end] it covers."""

    period: str
    start: datetime
    end: datetime


def parse_period(value: str, *, now: datetime) -> Window:
    """Resolve a period name to a window ending at `now`; 400 for anything not accepted."""
    key = value.strip().lower()
    key = PERIOD_ALIASES.get(key, key)
    if key not in PERIODS:
        accepted = ", ".join([*PERIODS, *PERIOD_ALIASES])
        raise InvalidInput(
            f"invalid period {value!r}: accepted are {accepted}", code="INVALID_PERIOD"
        )
    span = PERIODS[key]
    if span is not None:
        start = now - span
    elif key == "ytd":
        start = datetime(now.year, 1, 1, tzinfo=UTC)
    else:
        start = EPOCH_OF_TRACKING
    return Window(key, start, now)


def parse_interval(value: str) -> tuple[str, timedelta]:
    """Resolve an interval name; 400 for anything not accepted."""
    key = value.strip().lower()
    if key not in INTERVALS:
        raise InvalidInput(
            f"invalid interval {value!r}: accepted are {', '.join(INTERVALS)}",
            code="INVALID_INTERVAL",
        )
    return key, INTERVALS[key]


def default_interval(window: Window) -> str:
    """The finest interval that keeps a period's chart readable (≤ ~400 points)."""
    span = window.end - window.start
    for name, step in INTERVALS.items():
        if span / step <= 400:
            return name
    return "1w"


def check_points(window: Window, step: timedelta, *, first_data: datetime | None) -> None:
    """Refuse an interval too fine for the period (more than MAX_POINTS buckets)."""
    start = max(window.start, first_data) if first_data else window.start
    points = (window.end - start) / step
    if points > MAX_POINTS:
        raise InvalidInput(
            f"interval too fine for period {window.period}: {int(points)} points "
            f"(at most {MAX_POINTS}); choose a coarser interval",
            code="TOO_MANY_POINTS",
        )
