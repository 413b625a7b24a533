"""Chainlink-style feeds on the devnet: exact values, staleness, fallbacks and quoted feeds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiohttp import web

from chainfolio.devnet import Devnet, set_feed_updated_at, set_price
from chainfolio.fetchers import ChainSet, open_chains
from chainfolio.fetchers.config import HttpPriceConfig
from chainfolio.fetchers.prices import ChainlinkPriceSource, CompositePriceSource, HttpPriceSource

from .conftest import devnet_config
from .servers import dead_url, serve

pytestmark = pytest.mark.chain


@pytest.fixture
async def chains_1_137(devnet: Devnet) -> AsyncIterator[ChainSet]:
    async with open_chains(devnet_config([devnet.chain(1), devnet.chain(137)])) as chains:
        yield chains


async def test_prices_are_the_feed_answers_exactly(chains_1_137: ChainSet, devnet: Devnet) -> None:
    source = ChainlinkPriceSource(list(chains_1_137.readers.values()))
    prices = await source.prices({"ETH", "BTC", "USDC", "DAI", "UNKNOWN"})
    answers = devnet.chain(1).feed_answers
    assert {s: p.usd for s, p in prices.items()} == {
        s: Decimal(answers[s]).scaleb(-8) for s in ("ETH", "BTC", "USDC", "DAI")
    }
    assert prices["DAI"].usd == Decimal("0.99980000")
    assert {p.source for p in prices.values()} == {"chainlink:devnet-1"}
    for price in prices.values():
        assert abs((datetime.now(UTC) - price.updated_at).total_seconds()) < 3600


async def test_nft_floor_quoted_in_eth_is_converted_to_usd(chains_1_137: ChainSet) -> None:
    source = ChainlinkPriceSource(list(chains_1_137.readers.values()))
    floor = (await source.prices({"NFT_FLOOR"}))["NFT_FLOOR"]
    assert floor.usd == Decimal("12.5") * Decimal("3000")  # 12.5 ETH floor at $3,000
    assert "NFT_FLOOR/ETH" in floor.source


async def test_a_new_answer_is_seen_on_the_next_read(
    chains_1_137: ChainSet, restore_devnet: Devnet
) -> None:
    set_price(restore_devnet.chain(1), "ETH", 3_123_45678901)
    source = ChainlinkPriceSource(list(chains_1_137.readers.values()))
    assert (await source.prices({"ETH"}))["ETH"].usd == Decimal("3123.45678901")


async def test_a_stale_feed_is_not_used_and_the_next_chain_is_asked(
    chains_1_137: ChainSet, restore_devnet: Devnet
) -> None:
    set_feed_updated_at(restore_devnet.chain(1), "ETH", int(time.time()) - 10 * 86_400)
    readers = chains_1_137.readers
    only_chain_1 = ChainlinkPriceSource([readers[1]])
    assert "ETH" not in await only_chain_1.prices({"ETH", "BTC"})
    both = ChainlinkPriceSource([readers[1], readers[137]])
    prices = await both.prices({"ETH", "BTC"})
    assert prices["ETH"].source == "chainlink:devnet-137"
    assert prices["BTC"].source == "chainlink:devnet-1"


async def test_a_chain_that_is_down_falls_back_to_the_next_one(devnet: Devnet) -> None:
    urls = {1: [dead_url()]}
    config = devnet_config([devnet.chain(1), devnet.chain(137)], rpc_urls=urls)
    async with open_chains(config) as chains:
        prices = await chains.prices.prices({"ETH", "USDC"})
    assert {p.source for p in prices.values()} == {"chainlink:devnet-137"}


async def test_composite_uses_the_http_api_for_what_feeds_lack(chains_1_137: ChainSet) -> None:
    async def simple_price(request: web.Request) -> web.StreamResponse:
        assert request.query["ids"] == "solana"
        return web.json_response({"solana": {"usd": 151.25}})

    async with serve(simple_price) as url:
        http = HttpPriceSource(
            chains_1_137.http, HttpPriceConfig(base_url=url, ids={"SOL": "solana", "ETH": "x"})
        )
        chainlink = ChainlinkPriceSource(list(chains_1_137.readers.values()))
        prices = await CompositePriceSource([chainlink, http]).prices({"ETH", "SOL"})
    assert prices["SOL"].usd == Decimal("151.25")
    assert prices["SOL"].source == "http:127.0.0.1"
    assert prices["ETH"].source == "chainlink:devnet-1"
