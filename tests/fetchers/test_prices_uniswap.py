"""Tokens priced by the pools Uniswap's factories know: V3 first, V2 next, thin pools never."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest

from chainfolio.devnet import increase_time, revert, snapshot
from chainfolio.devnet.uniswap import (
    TICK_SPACING,
    create_v2_pair,
    create_v3_pool,
    mint_v3_position,
    swap_v3,
    v3_contract,
)
from chainfolio.fetchers import ChainsConfig, open_chains
from chainfolio.fetchers.positions import sqrt_ratio_at_tick

from .uniswap import WETH, UniswapWorld, deploy_token, uniswap_world

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


def _deep_pool(
    world: UniswapWorld, token: str, quote: str, price: Fraction, amounts: tuple[int, int]
) -> str:
    """A V3 pool of `token` against `quote` at `price` (quote base units per token base unit)
    with the deployer's liquidity 100 tick spacings either side; return the pool."""
    chain, uni = world.chain, world.uniswap
    pool = create_v3_pool(chain, uni, token_a=token, token_b=quote, fee=FEE, b_per_a=price)
    spacing = TICK_SPACING[FEE]
    tick = v3_contract(chain, "pool", pool).functions.slot0().call()[1] // spacing * spacing
    mint_v3_position(
        chain,
        uni,
        token_a=token,
        token_b=quote,
        fee=FEE,
        tick_lower=tick - 100 * spacing,
        tick_upper=tick + 100 * spacing,
        amount_a=amounts[0],
        amount_b=amounts[1],
    )
    return pool


@pytest.fixture(scope="module")
def tokens(uniswap_world: UniswapWorld) -> Tokens:
    world = uniswap_world
    chain, uni = world.chain, world.uniswap
    v3 = deploy_token(chain, "Three", "VTHREE", 18)
    v2 = deploy_token(chain, "Two", "VTWO", 8)
    thin = deploy_token(chain, "Thin", "THIN", 18)
    pool = _deep_pool(world, v3, world.weth, Fraction(2, 3000), (300_000 * WETH, 200 * WETH))
    create_v2_pair(
        chain,
        uni,
        token_a=v2,
        token_b=world.usdc,
        amount_a=50_000 * 10**8,
        amount_b=200_000 * USDC,
    )
    _deep_pool(world, thin, world.usdc, Fraction(USDC, WETH), (1_000 * WETH, 1_000 * USDC))
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
