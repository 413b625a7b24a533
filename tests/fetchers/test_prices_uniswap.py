"""Tokens priced by the pools Uniswap's factories know: V3 first, V2 next, thin pools never."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from aiohttp import web

from chainfolio.devnet import increase_time, revert, snapshot
from chainfolio.devnet.uniswap import (
    create_v2_pair,
    swap_v3,
    v3_contract,
)
from chainfolio.fetchers import ChainsConfig, open_chains
from chainfolio.fetchers.config import HttpPriceConfig, PricesConfig
from chainfolio.fetchers.positions import sqrt_ratio_at_tick
from chainfolio.fetchers.prices import KnownPools, UniswapPriceSource, address_key

from .servers import serve
from .uniswap import WETH, UniswapWorld, deep_pool, deploy_token, uniswap_world

pytestmark = pytest.mark.chain
__all__ = ["uniswap_world"]

USDC = 10**6
FEE = 3000


@dataclass(frozen=True)
class Tokens:
    v3: str
    """VTHREE: only a deep V3 pool against WETH (2 USD)."""
    v2: str
    """VTWO (8 decimals): only a deep V2 pair against USDC (4 USD)."""
    thin: str
    """THIN: a V3 pool against USDC and a V2 pair against WETH, both below the floor."""
    v3_pool: str


@pytest.fixture(scope="module")
def tokens(uniswap_world: UniswapWorld) -> Tokens:
    world = uniswap_world
    chain, uni = world.chain, world.uniswap
    v3 = deploy_token(chain, "Three", "VTHREE", 18)
    v2 = deploy_token(chain, "Two", "VTWO", 8)
    thin = deploy_token(chain, "Thin", "THIN", 18)
    pool = deep_pool(
        world.chain, world.uniswap, v3, world.weth, Fraction(2, 3000), (300_000 * WETH, 200 * WETH)
    )
    create_v2_pair(
        chain,
        uni,
        token_a=v2,
        token_b=world.usdc,
        amount_a=50_000 * 10**8,
        amount_b=200_000 * USDC,
    )
    deep_pool(
        world.chain,
        world.uniswap,
        thin,
        world.usdc,
        Fraction(USDC, WETH),
        (1_000 * WETH, 1_000 * USDC),
    )
    create_v2_pair(
        chain, uni, token_a=thin, token_b=world.weth, amount_a=1_000 * WETH, amount_b=WETH
    )
    return Tokens(v3, v2, thin, pool)


def _config(world: UniswapWorld, tokens: Tokens) -> ChainsConfig:
    base = world.config(positions=False, lp_pairs=False)
    chain = base.chains[0]
    extra = [
        {"address": tokens.v3, "symbol": "VTHREE"},
        {"address": tokens.v2, "symbol": "VTWO"},
        {"address": tokens.thin, "symbol": "THIN"},
    ]
    raw = chain.model_dump()
    raw["tokens"] += extra
    return base.model_copy(update={"chains": [type(chain).model_validate(raw)]})


def _spot_in_usd(world: UniswapWorld, pool: str, token: str, sqrt_price: int) -> Decimal:
    """Reference: the pool's price of `token` in WETH (both 18 decimals) x the ETH feed."""
    raw = Fraction(sqrt_price**2, 2**192)
    per_token = raw if int(token, 16) < int(world.weth, 16) else 1 / raw
    eth = Fraction(world.chain.feed_answers["ETH"], 10**8)
    value = per_token * eth
    with localcontext() as exact:
        exact.prec = 200
        return Decimal(value.numerator) / Decimal(value.denominator)


@pytest.fixture
def scratch(uniswap_world: UniswapWorld, tokens: Tokens) -> Iterator[Tokens]:
    before = snapshot(uniswap_world.chain)
    yield tokens
    revert(uniswap_world.chain, before)


async def test_v3_only_v2_only_and_thin(uniswap_world: UniswapWorld, tokens: Tokens) -> None:
    world = uniswap_world
    async with open_chains(_config(world, tokens)) as chains:
        prices = await chains.prices.prices({"VTHREE", "VTWO", "THIN", "ETH"})
    sqrt_price = v3_contract(world.chain, "pool", tokens.v3_pool).functions.slot0().call()[0]
    three = prices["VTHREE"]
    assert three.usd == _spot_in_usd(world, tokens.v3_pool, tokens.v3, sqrt_price)
    assert abs(three.usd - 2) < Decimal("1e-9")
    assert three.source.startswith(f"uniswap-v3:devnet-1:{tokens.v3_pool} (VTHREE/WETH spot x")
    two = prices["VTWO"]
    usdc_feed = Decimal(world.chain.feed_answers["USDC"]).scaleb(-8)
    assert two.usd == 4 * usdc_feed  # 200,000 USDC / 50,000 VTWO, exactly
    assert two.source.startswith("uniswap-v2:devnet-1:")
    assert "THIN" not in prices  # its pools hold ~1,000 USD and ~3,000 USD: below 100,000
    assert prices["ETH"].source == "chainlink:devnet-1"  # feeds come first


async def test_twap_when_observations_reach_back(
    uniswap_world: UniswapWorld, scratch: Tokens
) -> None:
    world, tokens = uniswap_world, scratch
    pool = v3_contract(world.chain, "pool", tokens.v3_pool)
    pool.functions.increaseObservationCardinalityNext(8).transact(
        {"from": world.chain.deployer, "gasPrice": 0}
    )
    swap_v3(
        world.chain,
        world.uniswap,
        token_in=world.weth,
        token_out=tokens.v3,
        fee=FEE,
        amount_in=WETH,
    )
    increase_time(world.chain, 3600)
    old_tick = pool.functions.slot0().call()[1]
    swap_v3(
        world.chain,
        world.uniswap,
        token_in=world.weth,
        token_out=tokens.v3,
        fee=FEE,
        amount_in=20 * WETH,
    )
    increase_time(world.chain, 60)
    sqrt_now, new_tick, *_ = pool.functions.slot0().call()
    async with open_chains(_config(world, tokens)) as chains:
        price = (await chains.prices.prices({"VTHREE"}))["VTHREE"]
    assert "twap 1800s" in price.source
    # Reference: OracleLibrary's mean tick over the last 1,800 s (~1,740 s old, ~60 s new).
    cumulatives = pool.functions.observe([1800, 0]).call()[0]
    delta = cumulatives[1] - cumulatives[0]
    mean = int(delta / 1800)
    if delta < 0 and delta % 1800:
        mean -= 1
    assert min(old_tick, new_tick) <= mean <= max(old_tick, new_tick)
    assert price.usd == _spot_in_usd(world, tokens.v3_pool, tokens.v3, sqrt_ratio_at_tick(mean))
    assert price.usd != _spot_in_usd(world, tokens.v3_pool, tokens.v3, sqrt_now)


async def test_unconfigured_tokens_are_priced_by_address_with_pools_found_once(
    uniswap_world: UniswapWorld, tokens: Tokens
) -> None:
    world = uniswap_world
    keys = {name: address_key(1, address) for name, address in vars(tokens).items()}
    # Nothing about these tokens is configured: only the chain's factories and quote tokens.
    async with open_chains(world.config(positions=False, lp_pairs=False)) as chains:
        rpc = chains.reader(1).rpc
        before = rpc.stats.http_requests
        one = await chains.prices.prices({keys["v3"]})
        trips_one = rpc.stats.http_requests - before
        source = next(s for s in chains.prices.sources if isinstance(s, UniswapPriceSource))
        source_pools = source.pools_of(1, tokens.v3)
        before = rpc.stats.http_requests
        prices = await chains.prices.prices({keys["v3"], keys["v2"], keys["thin"]})
        trips_three = rpc.stats.http_requests - before
        before = rpc.stats.http_requests
        again = await chains.prices.prices({keys["v2"], keys["thin"]})
        trips_again = rpc.stats.http_requests - before
        reasons = dict(source.unpriced)
    sqrt_price = v3_contract(world.chain, "pool", tokens.v3_pool).functions.slot0().call()[0]
    three = prices[keys["v3"]]
    assert (three.usd, three.source) == (one[keys["v3"]].usd, one[keys["v3"]].source)
    assert three.symbol == keys["v3"]
    assert three.usd == _spot_in_usd(world, tokens.v3_pool, tokens.v3, sqrt_price)
    assert three.source.startswith(f"uniswap-v3:devnet-1:{tokens.v3_pool} (")
    assert "/WETH spot x chainlink:devnet-1" in three.source
    assert source_pools == (tokens.v3_pool,)  # the one pool its 4 quotes x 4 tiers + V2 found
    two = prices[keys["v2"]]
    assert two.usd == 4 * Decimal(world.chain.feed_answers["USDC"]).scaleb(-8)
    assert two.source.startswith("uniswap-v2:devnet-1:")
    assert two.updated_at <= datetime.now(UTC)  # the age: its quote feed's update
    assert keys["thin"] not in prices
    assert "below the 100000 USD liquidity floor" in reasons[keys["thin"]]
    assert again[keys["v2"]].usd == two.usd
    # Batched: three new tokens cost the round trips one did (feeds, factories, pools — each
    # one Multicall3 batch); pools are found once, so a second ask skips the factories.
    assert trips_three == trips_one
    assert trips_again < trips_three


async def test_the_order_for_tokens_known_by_address_ends_with_the_http_api(
    uniswap_world: UniswapWorld, tokens: Tokens
) -> None:
    world = uniswap_world
    asked: list[str] = []

    async def coingecko(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        quoted = {"usd": 0.77, "last_updated_at": int(time.time())}
        wanted = request.query.get("contract_addresses", "").split(",")
        return web.json_response(dict.fromkeys(wanted, quoted))

    v3, thin = address_key(1, tokens.v3), address_key(1, tokens.thin)
    async with serve(coingecko) as url:
        http = HttpPriceConfig(enabled=True, base_url=url)
        config = world.config(positions=False, lp_pairs=False).model_copy(
            update={"prices": PricesConfig(http=http)}
        )
        async with open_chains(config) as chains:
            prices = await chains.prices.prices({v3, thin, "ETH"})
    assert prices["ETH"].source == "chainlink:devnet-1"
    assert prices[v3].source.startswith(f"uniswap-v3:devnet-1:{tokens.v3_pool}")  # not 0.77
    # Its pools are below the floor: the API, asked last and for it alone, prices it.
    assert prices[thin].usd == Decimal("0.77")
    assert prices[thin].source == "http:127.0.0.1"
    assert asked == ["/simple/token_price/ethereum"]


async def test_remembered_pools_that_no_longer_answer_are_found_again(
    uniswap_world: UniswapWorld, tokens: Tokens
) -> None:
    world = uniswap_world
    key = address_key(1, tokens.v3)
    nowhere = "0x" + "5e" * 20  # no code there: a pool of a chain since replaced
    async with open_chains(world.config(positions=False, lp_pairs=False)) as chains:
        source = chains.uniswap
        assert source is not None
        source.remember(
            [KnownPools(1, tokens.v3, ((3, nowhere, world.weth, FEE),), datetime.now(UTC))]
        )
        assert source.pools_of(1, tokens.v3) == (nowhere,)
        first = await chains.prices.prices({key})
        assert key not in first  # the stored pool is all it knew, and it answered nothing
        assert source.pools_of(1, tokens.v3) == ()  # forgotten: the factories are asked again
        second = await chains.prices.prices({key})
    assert second[key].source.startswith(f"uniswap-v3:devnet-1:{tokens.v3_pool} (")
