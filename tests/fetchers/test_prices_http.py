"""The HTTP price API source, against a fake CoinGecko-style server on localhost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from chainfolio.core.domain import Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import HttpPriceConfig
from chainfolio.fetchers.prices import CompositePriceSource, HttpPriceSource, address_key

from .servers import dead_url, serve

NOW = datetime(2025, 10, 17, 12, 0, tzinfo=UTC)
LONG_TAIL = "0x00000000000000000000000000000000000A11cE"


class FakePriceApi:
    """Answers /simple/price like CoinGecko; records the requests it got."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.status = 200
        self.body: Any = {
            "ethereum": {"usd": 3012.345678901234, "last_updated_at": int(NOW.timestamp()) - 30},
            "usd-coin": {"usd": 0.99987, "last_updated_at": int(NOW.timestamp()) - 60},
            "old-coin": {"usd": 5, "last_updated_at": int(NOW.timestamp()) - 86_400},
            "zero-coin": {"usd": 0},
        }
        updated = int(NOW.timestamp()) - 20
        self.tokens: dict[str, dict[str, Any]] = {
            "ethereum": {LONG_TAIL.lower(): {"usd": 0.0421, "last_updated_at": updated}},
            "polygon-pos": {LONG_TAIL.lower(): {"usd": 0.5, "last_updated_at": updated}},
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.status != 200:
            return web.Response(status=self.status, text="rate limited")
        if request.path.startswith("/api/v3/simple/token_price/"):
            platform = request.path.rsplit("/", 1)[1]
            wanted = request.query["contract_addresses"].split(",")
            tokens = self.tokens.get(platform, {})
            return web.json_response({a: tokens[a] for a in wanted if a in tokens})
        if request.path != "/api/v3/simple/price":
            return web.Response(status=404)
        wanted = request.query["ids"].split(",")
        return web.json_response({k: v for k, v in self.body.items() if k in wanted})


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, FakePriceApi]]:
    fake = FakePriceApi()
    async with serve(fake.handle) as url:
        yield url, fake


def _config(base_url: str, **overrides: Any) -> HttpPriceConfig:
    ids = {"ETH": "ethereum", "USDC": "usd-coin", "OLD": "old-coin", "ZERO": "zero-coin"}
    return HttpPriceConfig(enabled=True, base_url=base_url, ids=ids, **overrides)


async def test_prices_are_exact_decimals_with_source_and_time(
    api: tuple[str, FakePriceApi],
) -> None:
    url, fake = api
    async with httpx.AsyncClient() as http:
        source = HttpPriceSource(http, _config(f"{url}/api/v3"), clock=lambda: NOW)
        prices = await source.prices({"ETH", "USDC", "UNLISTED"})
    assert prices == {
        "ETH": Price(
            "ETH", Decimal("3012.345678901234"), "http:127.0.0.1", NOW - timedelta(seconds=30)
        ),
        "USDC": Price("USDC", Decimal("0.99987"), "http:127.0.0.1", NOW - timedelta(seconds=60)),
    }
    (request,) = fake.requests
    assert request.query["vs_currencies"] == "usd"
    assert sorted(request.query["ids"].split(",")) == ["ethereum", "usd-coin"]


async def test_stale_and_non_positive_prices_are_absent(api: tuple[str, FakePriceApi]) -> None:
    url, _ = api
    async with httpx.AsyncClient() as http:
        source = HttpPriceSource(http, _config(f"{url}/api/v3", max_age=3600), clock=lambda: NOW)
        assert await source.prices({"OLD", "ZERO"}) == {}


async def test_api_key_header_is_sent_from_the_environment(api: tuple[str, FakePriceApi]) -> None:
    url, fake = api
    config = _config(f"{url}/api/v3", api_key_header="x-cg-pro-api-key", api_key_env="CG_KEY")
    async with httpx.AsyncClient() as http:
        source = HttpPriceSource(http, config, env={"CG_KEY": "s3cret"}, clock=lambda: NOW)
        await source.prices({"ETH"})
    assert fake.requests[0].headers["x-cg-pro-api-key"] == "s3cret"


@pytest.mark.parametrize("status", [429, 500])
async def test_http_errors_raise_source_unavailable(
    api: tuple[str, FakePriceApi], status: int
) -> None:
    url, fake = api
    fake.status = status
    async with httpx.AsyncClient() as http:
        source = HttpPriceSource(http, _config(f"{url}/api/v3"), clock=lambda: NOW)
        with pytest.raises(SourceUnavailable, match=str(status)):
            await source.prices({"ETH"})


async def test_symbols_without_ids_make_no_request(api: tuple[str, FakePriceApi]) -> None:
    url, fake = api
    async with httpx.AsyncClient() as http:
        source = HttpPriceSource(http, _config(f"{url}/api/v3"), clock=lambda: NOW)
        assert await source.prices({"NOPE"}) == {}
    assert fake.requests == []


async def test_composite_asks_each_source_only_for_what_is_missing(
    api: tuple[str, FakePriceApi],
) -> None:
    url, fake = api
    btc_only = FakePriceApi()
    btc_only.body = {"bitcoin": {"usd": 65000, "last_updated_at": int(NOW.timestamp())}}
    async with serve(btc_only.handle) as btc_url, httpx.AsyncClient() as http:
        first = HttpPriceSource(
            http,
            HttpPriceConfig(base_url=f"{btc_url}/api/v3", ids={"BTC": "bitcoin"}),
            clock=lambda: NOW,
        )
        down = HttpPriceSource(http, _config(f"{dead_url()}/api/v3"), clock=lambda: NOW)
        last = HttpPriceSource(http, _config(f"{url}/api/v3"), clock=lambda: NOW)
        prices = await CompositePriceSource([first, down, last]).prices({"BTC", "ETH", "NOPE"})
    assert {s: str(p.usd) for s, p in prices.items()} == {
        "BTC": "65000",
        "ETH": "3012.345678901234",
    }
    # the last source was only asked for what the first could not price
    assert fake.requests[0].query["ids"] == "ethereum"


async def test_tokens_known_by_address_are_priced_by_contract_on_their_platform(
    api: tuple[str, FakePriceApi],
) -> None:
    url, fake = api
    keys = {address_key(c, LONG_TAIL) for c in (1, 137, 31337)}
    async with httpx.AsyncClient() as http:
        config = _config(f"{url}/api/v3", addresses_per_request=1)
        source = HttpPriceSource(http, config, clock=lambda: NOW)
        prices = await source.prices(keys | {"ETH"})
    when = NOW - timedelta(seconds=20)
    assert prices[address_key(1, LONG_TAIL)] == Price(
        address_key(1, LONG_TAIL), Decimal("0.0421"), "http:127.0.0.1", when
    )
    assert prices[address_key(137, LONG_TAIL)].usd == Decimal("0.5")
    assert address_key(31337, LONG_TAIL) not in prices  # no platform id for the chain
    assert prices["ETH"].usd == Decimal("3012.345678901234")
    paths = sorted(r.path for r in fake.requests)
    assert paths == [
        "/api/v3/simple/price",
        "/api/v3/simple/token_price/ethereum",
        "/api/v3/simple/token_price/polygon-pos",
    ]
