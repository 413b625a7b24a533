"""read_portfolio over five local chains at once: concurrency, statuses and prices."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from chainfolio.core.domain import Category
from chainfolio.devnet import Devnet, start_devnet
from chainfolio.fetchers import ChainState, open_chains, read_portfolio
from chainfolio.fetchers.config import RpcSettings

from .conftest import devnet_config

pytestmark = pytest.mark.chain

FIVE_CHAINS = (10, 56, 100, 250, 8453)


@pytest.fixture(scope="module")
def five_chains() -> Iterator[Devnet]:
    """Five more Hardhat chains, small: 3 wallets each."""
    with start_devnet(chain_ids=FIVE_CHAINS, wallets=3, position_wallets=3) as devnet:
        yield devnet


async def test_five_chains_are_read_concurrently_and_exactly(five_chains: Devnet) -> None:
    pairs = [(d.chain_id, w) for d in five_chains.chains for w in d.wallets]
    async with open_chains(devnet_config(five_chains.chains)) as chains:
        result = await read_portfolio(chains, pairs)
    assert {c: h.status.state for c, h in result.chains.items()} == dict.fromkeys(
        FIVE_CHAINS, ChainState.OK
    )
    for deployment in five_chains.chains:
        holdings = result.chains[deployment.chain_id].holdings
        assert result.chains[deployment.chain_id].status.block_number == deployment.block_number
        for wallet in deployment.wallets:
            found = {(h.symbol, h.category): h for h in holdings[wallet]}
            assert found[("ETH", Category.WALLET)].amount == deployment.native_balances[wallet]
            for symbol, amount in deployment.token_balances[wallet].items():
                assert found[(symbol, Category.WALLET)].amount == amount
    # contracts differ per chain, as on real networks
    assert len({d.tokens["USDC"].address for d in five_chains.chains}) == len(FIVE_CHAINS)


async def test_two_paused_chains_cost_one_timeout_not_two(five_chains: Devnet) -> None:
    pairs = [(d.chain_id, d.wallets[0]) for d in five_chains.chains]
    rpc = RpcSettings(timeout_s=1.5, backoff_s=0.0)
    async with open_chains(devnet_config(five_chains.chains, rpc=rpc)) as chains:
        paused = [five_chains.node(56), five_chains.node(250)]
        for node in paused:
            node.pause()
        try:
            started = time.perf_counter()
            result = await read_portfolio(chains, pairs, with_prices=False)
            elapsed = time.perf_counter() - started
        finally:
            for node in paused:
                node.resume()
    states = {c: h.status.state for c, h in result.chains.items()}
    assert states == {
        10: ChainState.OK,
        56: ChainState.STALE,
        100: ChainState.OK,
        250: ChainState.STALE,
        8453: ChainState.OK,
    }
    assert 1.5 <= elapsed < 2.9  # sequential reads would take at least 3 s
    assert max(result.chains[c].status.duration_s for c in (10, 100, 8453)) < 1.0


async def test_holdings_come_priced_and_valued(five_chains: Devnet) -> None:
    deployment = five_chains.chains[0]
    wallet = deployment.wallets[0]
    async with open_chains(devnet_config([deployment])) as chains:
        result = await read_portfolio(chains, [(deployment.chain_id, wallet)])
    holdings = {
        (h.symbol, h.category): h for h in result.chains[deployment.chain_id].holdings[wallet]
    }
    weth = holdings[("WETH", Category.WALLET)]
    assert weth.price is not None
    assert weth.price.symbol == "ETH"
    assert weth.value_usd == Decimal(deployment.token_balances[wallet]["WETH"]).scaleb(-18) * 3000
    usdt = holdings[("USDT", Category.WALLET)]
    assert usdt.price is not None
    assert usdt.price.symbol == "USDC"  # stablecoin mapping from config
    nft = holdings[("CFPUNK", Category.NFT)]
    assert nft.value_usd == nft.amount * Decimal(37500)  # type: ignore[operator]
    assert holdings[("BRKN", Category.WALLET)].value_usd is None
    # the holdings' prices, and the display-currency rates the chain has feeds for
    assert set(result.prices) == {"ETH", "BTC", "USDC", "DAI", "NFT_FLOOR"} | {
        "EUR",
        "GBP",
        "CHF",
        "JPY",
    }
