"""DataLoaders coalesce one tick of lookups into one batched read per chain (counted at proxies)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from chainfolio.core.errors import InvalidInput, SourceUnavailable
from chainfolio.devnet import Devnet
from chainfolio.fetchers import BalanceLoader, ChainSet, PriceLoader, open_chains

from .conftest import devnet_config
from .servers import RpcProxy, dead_url, rpc_proxy

pytestmark = pytest.mark.chain


@pytest.fixture
async def proxied(devnet: Devnet) -> AsyncIterator[tuple[ChainSet, dict[int, RpcProxy]]]:
    """A ChainSet whose every chain is reached through a counting proxy."""
    async with AsyncExitStack() as stack:
        proxies: dict[int, RpcProxy] = {}
        urls: dict[int, list[str]] = {}
        for deployment in devnet.chains:
            url, proxy = await stack.enter_async_context(rpc_proxy(deployment.rpc_url))
            proxies[deployment.chain_id], urls[deployment.chain_id] = proxy, [url]
        chains = await stack.enter_async_context(
            open_chains(devnet_config(devnet.chains, rpc_urls=urls))
        )
        yield chains, proxies


async def test_balance_loader_makes_one_batched_read_per_chain(
    proxied: tuple[ChainSet, dict[int, RpcProxy]], devnet: Devnet
) -> None:
    chains, proxies = proxied
    keys = [(d.chain_id, w) for d in devnet.chains for w in d.wallets]
    loader = BalanceLoader(chains)
    results = await asyncio.gather(*(loader.load(key) for key in keys))  # one tick, 60 keys

    # per chain: eth_blockNumber, one batch of aggregate3 chunks, one convertToAssets pass
    assert {c: p.http_requests for c, p in proxies.items()} == {1: 3, 137: 3, 42161: 3}
    assert {c: p.methods["eth_blockNumber"] for c, p in proxies.items()} == {1: 1, 137: 1, 42161: 1}
    for (chain_id, wallet), holdings in zip(keys, results, strict=True):
        deployment = devnet.chain(chain_id)
        usdc = next(h for h in holdings if h.symbol == "USDC" and h.category == "WALLET")
        assert usdc.amount == deployment.token_balances[wallet]["USDC"]
        assert {h.block_number for h in holdings} == {holdings[0].block_number}

    # a cached key costs nothing; the same key in another case too
    for proxy in proxies.values():
        proxy.reset()
    chain_id, wallet = keys[0]
    assert await loader.load((chain_id, wallet.lower())) is results[0]
    assert sum(p.http_requests for p in proxies.values()) == 0


async def test_one_key_per_tick_is_the_n_plus_one_it_prevents(
    proxied: tuple[ChainSet, dict[int, RpcProxy]], devnet: Devnet
) -> None:
    chains, proxies = proxied
    deployment = devnet.chain(1)
    loader = BalanceLoader(chains)
    for wallet in deployment.wallets[1:4]:  # none of these holds vault shares
        await loader.load((1, wallet))  # awaited one by one: no coalescing possible
    assert proxies[1].http_requests == 3 * 2  # eth_blockNumber + aggregate3, per wallet


async def test_bad_keys_fail_alone(
    proxied: tuple[ChainSet, dict[int, RpcProxy]], devnet: Devnet
) -> None:
    chains, _ = proxied
    wallet = devnet.chain(1).wallets[0]
    loader = BalanceLoader(chains)
    good, bad_address, bad_chain = await asyncio.gather(
        loader.load((1, wallet)),
        loader.load((1, "0x1234")),
        loader.load((999, wallet)),
        return_exceptions=True,
    )
    assert isinstance(good, list)
    assert isinstance(bad_address, InvalidInput)
    assert isinstance(bad_chain, InvalidInput)


async def test_a_chain_that_is_down_rejects_only_its_keys(devnet: Devnet) -> None:
    config = devnet_config(devnet.chains, rpc_urls={137: [dead_url()]})
    async with open_chains(config) as chains:
        loader = BalanceLoader(chains)
        up, down = await asyncio.gather(
            loader.load((1, devnet.chain(1).wallets[0])),
            loader.load((137, devnet.chain(137).wallets[0])),
            return_exceptions=True,
        )
    assert isinstance(up, list)
    assert isinstance(down, SourceUnavailable)


async def test_price_loader_makes_one_feed_read(
    proxied: tuple[ChainSet, dict[int, RpcProxy]],
) -> None:
    chains, proxies = proxied
    loader = PriceLoader(chains.prices)
    symbols = ["ETH", "BTC", "USDC", "DAI", "NFT_FLOOR", "NOPE"]
    prices = await asyncio.gather(*(loader.load(s) for s in symbols))
    assert [p is not None for p in prices] == [True] * 5 + [False]
    # eth_blockNumber + one aggregate3 on the first chain that lists the feeds, nothing elsewhere
    assert {c: p.http_requests for c, p in proxies.items()} == {1: 2, 137: 0, 42161: 0}
