"""Performance through the API on seeded snapshots and cash flows, checked by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.storage.accounts import ensure_user
from chainfolio.storage.timeseries import CashFlow, Snapshot, write_cash_flows, write_snapshots
from tests.api.conftest import Auth

DAY = (datetime.now(UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


async def _seed(engine: AsyncEngine) -> str:
    """1000 -> 1100 (+10 %), then a 500 deposit valued at once (1600), then +10 % (1760)."""
    subject = f"perf-{uuid.uuid4().hex[:6]}"
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=subject)
        values = [1000, 1100, 1600, 1760]
        await write_snapshots(
            db,
            [
                Snapshot(
                    user_id, DAY + timedelta(hours=4 * i), Decimal(v), {}, {"ETH": Decimal(v)}, {}
                )
                for i, v in enumerate(values)
            ],
        )
        await write_cash_flows(
            db,
            [
                CashFlow(
                    user_id,
                    1,
                    DAY + timedelta(hours=8) - timedelta(minutes=1),
                    "ETH",
                    "native",
                    500 * 10**18 // 3000,
                    18,
                    Decimal(500),
                    "0x" + "ab" * 32,
                    0,
                )
            ],
        )
    return subject


async def test_deposit_is_not_a_gain(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject = await _seed(engine)
    response = await client.get(
        "/v1/portfolio/performance", params={"period": "30d"}, headers=auth(subject)
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    # the seed's fields, all present
    for key in (
        "period",
        "startValue",
        "endValue",
        "absoluteGain",
        "percentageGain",
        "roi",
        "sharpeRatio",
    ):
        assert key in data
    assert data["period"] == "30d"
    assert data["startValue"] == 1000
    assert data["endValue"] == 1760
    assert data["netFlows"] == 500
    assert data["absoluteGain"] == pytest.approx(260)  # 1760 - 1000 - 500: the deposit is no gain
    assert data["twr"] == pytest.approx((1.1 * 1.0 * 1.1 - 1) * 100, abs=1e-6)
    assert data["maxDrawdown"] == 0

    graphql = await client.post(
        "/graphql",
        json={"query": '{ performance(period: "30d") { absoluteGain twr netFlows roi } }'},
        headers=auth(subject),
    )
    perf = graphql.json()["data"]["performance"]
    assert perf["absoluteGain"] == data["absoluteGain"]
    assert perf["twr"] == data["twr"]
    assert perf["roi"] == data["roi"]


async def test_no_history_is_a_clear_422(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get(
        "/v1/portfolio/performance",
        params={"period": "7d"},
        headers=auth(f"empty-{uuid.uuid4().hex[:6]}"),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INSUFFICIENT_DATA"
    bad = await client.get(
        "/v1/portfolio/performance", params={"period": "7x"}, headers=auth("someone")
    )
    assert bad.status_code == 400
