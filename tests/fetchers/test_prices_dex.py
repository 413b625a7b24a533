"""Configured Uniswap V2 pairs (the real v2-core contracts from npm, on the devnet): exact
prices, quotes through feeds, unusable pools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from web3 import Web3

from chainfolio.devnet import Devnet, DevnetDeployment, load_artifact, mint_token, web3_for
from chainfolio.devnet.uniswap import V2_PAIR, create_v2_pair, deploy_uniswap, npm_artifact
from chainfolio.fetchers import ChainsConfig, ChainSet, open_chains
from chainfolio.fetchers.prices import ChainlinkPriceSource, DexPriceSource

from .conftest import devnet_config

pytestmark = pytest.mark.chain

GOV = 10**18  # one GOV, the pooled token (18 decimals)
USDC = 10**6


@dataclass(frozen=True)
class Pools:
    gov: str
    gov_usdc: str
    gov_weth: str


def _deploy(w3: Web3, contract: str, *args: Any) -> str:
    artifact = load_artifact(contract)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    address = receipt["contractAddress"]
    assert address is not None
    return str(address)


_PAIR_ABI = npm_artifact(V2_PAIR).abi


@pytest.fixture
def pools(restore_devnet: Devnet) -> Pools:
    chain = restore_devnet.chain(1)
    w3 = web3_for(chain)
    gov = _deploy(w3, "MintableERC20", "Governance", "GOV", 18)
    usdc, weth = chain.tokens["USDC"].address, chain.tokens["WETH"].address
    uniswap = deploy_uniswap(chain)
    # 400,000 GOV against 1,000,000 USDC: 2.5 USDC per GOV.
    gov_usdc = create_v2_pair(
        chain, uniswap, token_a=gov, token_b=usdc, amount_a=400_000 * GOV, amount_b=1_000_000 * USDC
    )
    # 3 GOV against 0.0025 WETH: thin (0.0025 ETH = 7.5 USD of quote liquidity).
    gov_weth = create_v2_pair(
        chain, uniswap, token_a=weth, token_b=gov, amount_a=25 * 10**14, amount_b=3 * GOV
    )
    return Pools(gov, gov_usdc, gov_weth)


def _config(chain: DevnetDeployment, pools: Pools, **dex: dict[str, Any]) -> ChainsConfig:
    base = devnet_config([chain]).model_dump()
    base["chains"][0]["tokens"].append({"address": pools.gov, "symbol": "GOV"})
    base["chains"][0]["dex_pools"] = dex
    return ChainsConfig.model_validate(base)


@pytest.fixture
async def opened(devnet: Devnet, pools: Pools) -> AsyncIterator[ChainSet]:
    config = _config(devnet.chain(1), pools, GOV={"pair": pools.gov_usdc, "quote": "USDC"})
    async with open_chains(config) as chains:
        yield chains


async def test_pool_price_is_the_reserve_ratio_times_the_quote_feed(
    opened: ChainSet, devnet: Devnet
) -> None:
    prices = await opened.prices.prices({"GOV", "ETH"})
    usdc_feed = Decimal(devnet.chain(1).feed_answers["USDC"]).scaleb(-8)
    assert prices["GOV"].usd == Decimal("2.5") * usdc_feed
    assert prices["GOV"].source == "dex:devnet-1 (GOV/USDC x chainlink:devnet-1)"
    assert prices["ETH"].source == "chainlink:devnet-1"  # feeds first, pools only for the rest


async def test_a_pool_moves_with_its_reserves(
    opened: ChainSet, devnet: Devnet, pools: Pools
) -> None:
    chain = devnet.chain(1)
    mint_token(chain, symbol="USDC", to=pools.gov_usdc, amount=1_000_000 * USDC)
    w3 = web3_for(chain)
    pair = w3.eth.contract(address=Web3.to_checksum_address(pools.gov_usdc), abi=_PAIR_ABI)
    w3.eth.wait_for_transaction_receipt(
        pair.functions.sync().transact({"from": w3.eth.accounts[0]})
    )
    price = (await opened.prices.prices({"GOV"}))["GOV"]
    assert price.usd == Decimal(5) * Decimal(chain.feed_answers["USDC"]).scaleb(-8)


async def test_a_pool_quoted_in_weth_uses_the_eth_feed(devnet: Devnet, pools: Pools) -> None:
    chain = devnet.chain(1)
    pool = {"pair": pools.gov_weth, "quote": "WETH", "min_liquidity_usd": "5"}
    async with open_chains(_config(chain, pools, GOV=pool)) as chains:
        readers = list(chains.readers.values())
        source = DexPriceSource(readers, quotes=ChainlinkPriceSource(readers))
        price = (await source.prices({"GOV"}))["GOV"]
    eth = Decimal(chain.feed_answers["ETH"]).scaleb(-8)
    assert price.usd == Decimal("0.0025") / 3 * eth


async def test_thin_pools_and_wrong_pairs_are_not_used(devnet: Devnet, pools: Pools) -> None:
    chain = devnet.chain(1)
    thin = {"pair": pools.gov_weth, "quote": "WETH"}  # 7.5 USD < the 100,000 USD default floor
    async with open_chains(_config(chain, pools, GOV=thin)) as chains:
        assert "GOV" not in await chains.prices.prices({"GOV"})
    # A pair of other tokens (here: GOV/USDC's address configured as a WBTC pool) is refused.
    wrong = {"pair": pools.gov_usdc, "quote": "WETH", "min_liquidity_usd": "0"}
    async with open_chains(_config(chain, pools, WBTC=wrong)) as chains:
        readers = list(chains.readers.values())
        source = DexPriceSource(readers, quotes=ChainlinkPriceSource(readers))
        assert await source.prices({"BTC"}) == {}


def test_a_pool_quoted_in_its_own_token_is_a_config_error(devnet: Devnet, pools: Pools) -> None:
    with pytest.raises(ValueError, match="quoted in itself"):
        _config(devnet.chain(1), pools, GOV={"pair": pools.gov_usdc, "quote": "GOV"})
    with pytest.raises(ValueError, match="no token 'NOPE'"):
        _config(devnet.chain(1), pools, GOV={"pair": pools.gov_usdc, "quote": "NOPE"})
