"""`/v1/ws` fast path: the bus JSON mapped straight to the seed message gives the very text the
old path (`PortfolioUpdate.from_json` → `seed_update` → orjson) gave; `seed_update`, the old
path's message builder, lives on here as the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainfolio.api.realtime import seed_message
from chainfolio.api.web import number
from chainfolio.resolvers.updates import HoldingChange, PortfolioUpdate

NOW = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)


def seed_update(update: PortfolioUpdate) -> dict[str, Any]:
    """The seed's `portfolio_update` message from a parsed update (the old path's builder)."""
    return {
        "type": "portfolio_update",
        "data": {
            "totalValue": number(update.total_value),
            "change": number(update.change),
            "changePercent": number(update.change_percent),
            "timestamp": update.timestamp.isoformat(),
            "staleChains": list(update.stale_chains),
            "incomplete": update.incomplete,
        },
    }


def old_path(raw: str) -> str:
    return orjson.dumps(seed_update(PortfolioUpdate.from_json(raw))).decode()


def update(
    total: str,
    change: str,
    percent: str | None,
    timestamp: datetime = NOW,
    stale: tuple[int, ...] = (),
) -> PortfolioUpdate:
    return PortfolioUpdate(
        user_id="4b0c6d1e-0000-4000-8000-000000000001",
        total_value=Decimal(total),
        change=Decimal(change),
        change_percent=None if percent is None else Decimal(percent),
        timestamp=timestamp,
        blocks={1: 42, 137: 9_000_000},
        holdings=(
            HoldingChange(1, "0xabc", "ETH", "native", "1.5", Decimal("4500.25")),
            HoldingChange(137, "0xdef", "USDC", "erc20", None, None),
        ),
        stale_chains=stale,
    )


REPRESENTATIVE = [
    update("12345.67", "12.5", "0.1013"),
    update("100500", "500", "0.5"),  # whole numbers
    update("0", "0", None),  # no previous total: changePercent null
    update("0E-18", "-0", None),  # zero with an exponent, negative zero
    update("-250.75", "-1000.000000000000000001", "-79.9521"),  # negative, many digits
    update("123456789012345678901234567890.123456789", "1E+30", "99999999.9999"),  # large
    update("1E+2", "1.000000000000000000000000001", "1E-4"),  # exponents, rounding to 1.0
    update("0.000000000000000000000000000001", "3.14159265358979323846264338327950288", "0"),
    update("9007199254740993", "-9007199254740993", "100"),  # above 2**53: rounds the same
    update("5", "5", "5", NOW.astimezone(timezone(timedelta(hours=5, minutes=30))), (1, 137)),
    update("5", "5", "5", NOW.replace(microsecond=0)),  # isoformat without microseconds
    update("5", "5", "5", datetime(2026, 1, 1, 12, 0)),  # naive timestamp
]


@pytest.mark.parametrize("message", REPRESENTATIVE, ids=lambda u: str(u.total_value))
def test_fast_path_gives_the_old_paths_text(message: PortfolioUpdate) -> None:
    raw = message.to_json()
    assert seed_message(raw) == old_path(raw)


def test_fast_path_message_shape() -> None:
    message = orjson.loads(seed_message(update("100500", "500", None, stale=(137,)).to_json()))
    assert message == {
        "type": "portfolio_update",
        "data": {
            "totalValue": 100500,
            "change": 500,
            "changePercent": None,
            "timestamp": NOW.isoformat(),
            "staleChains": [137],
            "incomplete": False,
        },
    }
    assert isinstance(message["data"]["totalValue"], float)  # a JSON number, as before


def test_wire_form_without_stale_chains_and_non_canonical_timestamp() -> None:
    # an older publisher (no staleChains) and a "Z" timestamp: normalised by both paths alike
    raw = orjson.dumps(
        {
            "userId": "u",
            "totalValue": "1.10",
            "change": "0.10",
            "changePercent": "10.0000",
            "timestamp": "2026-11-28T01:02:03Z",
            "blocks": {},
            "holdings": [],
        }
    ).decode()
    assert seed_message(raw) == old_path(raw)
    assert orjson.loads(seed_message(raw))["data"]["timestamp"] == "2026-11-28T01:02:03+00:00"


def test_malformed_messages_raise_as_before() -> None:
    raw = orjson.dumps({"userId": "u", "totalValue": "x", "change": "1"}).decode()
    with pytest.raises(InvalidOperation):
        old_path(raw)
    with pytest.raises(ValueError, match="could not convert"):
        seed_message(raw)


decimals = st.decimals(allow_nan=False, allow_infinity=False)


@given(total=decimals, change=decimals, percent=st.none() | decimals)
def test_fast_path_matches_for_any_finite_decimals(
    total: Decimal, change: Decimal, percent: Decimal | None
) -> None:
    raw = update(str(total), str(change), None if percent is None else str(percent)).to_json()
    assert seed_message(raw) == old_path(raw)
