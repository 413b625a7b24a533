"""RPC failover, back-off, garbage answers, paused nodes, batch refusal and chunk halving."""

from __future__ import annotations

import time

import httpx
import pytest

from chainfolio.core.domain import Holding
from chainfolio.devnet import Devnet
from chainfolio.fetchers import ChainState, ChainUnavailable, open_chains, read_portfolio
from chainfolio.fetchers.config import RpcSettings
from chainfolio.fetchers.rpc import RpcClient, display_url

from .conftest import FAST_RPC, devnet_config
from .servers import dead_url, hang, rpc_proxy, serve


def _amounts(holdings: dict[str, list[Holding]]) -> dict[tuple[str, str, str], int | None]:
    return {(w, h.symbol, h.category): h.amount for w, hs in holdings.items() for h in hs}


@pytest.mark.chain
async def test_failover_to_the_second_url_then_back_off_the_dead_one(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    dead = dead_url()
    settings = RpcSettings(timeout_s=2.0, backoff_s=60.0)
    config = devnet_config([deployment], rpc_urls={1: [dead, deployment.rpc_url]}, rpc=settings)
    async with open_chains(config) as chains:
        rpc = chains.readers[1].rpc
        pairs = [(1, deployment.wallets[0])]
        first = await read_portfolio(chains, pairs, with_prices=False)
        assert first.chains[1].status.state is ChainState.OK
        assert first.chains[1].status.rpc_url == deployment.rpc_url
        assert rpc.stats.failovers == 1
        assert rpc.endpoints[0].failures == 1
        assert rpc.endpoints[0].down_until > time.monotonic() + 50
        assert "ConnectError" in (rpc.endpoints[0].last_error or "")

        second = await read_portfolio(chains, pairs, with_prices=False)
        assert second.chains[1].status.state is ChainState.OK
        assert rpc.stats.failovers == 1  # the dead URL is skipped while it backs off
        assert _amounts(second.chains[1].holdings) == _amounts(first.chains[1].holdings)


@pytest.mark.chain
async def test_a_url_answering_garbage_is_skipped(devnet: Devnet) -> None:
    deployment = devnet.chain(137)
    async with rpc_proxy(deployment.rpc_url) as (garbage_url, garbage):
        garbage.mode = "garbage"
        config = devnet_config([deployment], rpc_urls={137: [garbage_url, deployment.rpc_url]})
        async with open_chains(config) as chains:
            pairs = [(137, deployment.wallets[3])]
            result = await read_portfolio(chains, pairs, with_prices=False)
    status = result.chains[137].status
    assert status.state is ChainState.OK
    assert status.rpc_url == deployment.rpc_url
    assert garbage.http_requests == 1
    holdings = result.chains[137].holdings[deployment.wallets[3]]
    usdc = next(h for h in holdings if h.symbol == "USDC" and h.category == "WALLET")
    assert usdc.amount == deployment.token_balances[deployment.wallets[3]]["USDC"]


@pytest.mark.chain
async def test_a_node_without_the_pinned_block_hands_over_to_the_next_url(
    devnet: Devnet,
) -> None:
    deployment = devnet.chain(42161)
    wallet = deployment.wallets[5]
    async with rpc_proxy(deployment.rpc_url) as (lagging_url, lagging):
        lagging.mode = "lagging"
        config = devnet_config([deployment], rpc_urls={42161: [lagging_url, deployment.rpc_url]})
        async with open_chains(config) as chains:
            result = await read_portfolio(chains, [(42161, wallet)], with_prices=False)
            endpoint = chains.readers[42161].rpc.endpoints[0]
    assert result.chains[42161].status.rpc_url == deployment.rpc_url
    assert "header not found" in (endpoint.last_error or "")
    holdings = result.chains[42161].holdings[wallet]
    assert all(h.error is None for h in holdings if h.symbol != "BRKN")


@pytest.mark.chain
async def test_backing_off_urls_are_not_asked_and_recover_after_the_delay(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    now = [1000.0]
    async with rpc_proxy(deployment.rpc_url) as (url, proxy), httpx.AsyncClient() as http:
        rpc = RpcClient(
            [url],
            http=http,
            settings=RpcSettings(backoff_s=10.0, timeout_s=2.0),
            chain="t",
            clock=lambda: now[0],
        )
        proxy.mode = "garbage"
        with pytest.raises(ChainUnavailable, match="not JSON"):
            await rpc.call("eth_blockNumber", [])
        proxy.mode = "forward"
        with pytest.raises(ChainUnavailable, match="backing off"):
            await rpc.call("eth_blockNumber", [])
        assert proxy.http_requests == 1
        now[0] += 10.5
        assert int(await rpc.call("eth_blockNumber", []), 16) > 0
        assert rpc.endpoints[0].failures == 0


@pytest.mark.chain
async def test_half_open_probe_recovers_long_before_the_back_off_ends(devnet: Devnet) -> None:
    """The only URL failed a few times (back-off 80 s by now): once it answers again, it is
    used within `probe_max_s`, one probe at a time, not after the back-off."""
    deployment = devnet.chain(1)
    now = [1000.0]
    settings = RpcSettings(backoff_s=10.0, backoff_max_s=300.0, probe_max_s=4.0, timeout_s=2.0)
    async with rpc_proxy(deployment.rpc_url) as (url, proxy), httpx.AsyncClient() as http:
        rpc = RpcClient([url], http=http, settings=settings, chain="t", clock=lambda: now[0])
        proxy.mode = "garbage"
        for _ in range(4):  # each failure doubles the back-off: 10, 20, 40, 80 s
            with pytest.raises(ChainUnavailable, match="not JSON"):
                await rpc.call("eth_blockNumber", [])
            now[0] += 4.0
        endpoint = rpc.endpoints[0]
        assert endpoint.down_until - now[0] > 70  # the back-off: 80 s after the last failure
        proxy.mode = "forward"  # the node answers again
        now[0] -= 2.0  # half way to the probe: not asked
        with pytest.raises(ChainUnavailable, match="probe in"):
            await rpc.call("eth_blockNumber", [])
        asked = proxy.http_requests
        now[0] += 2.0
        assert int(await rpc.call("eth_blockNumber", []), 16) > 0  # the probe: recovered
        assert proxy.http_requests == asked + 1
        assert rpc.stats.probes == 4  # every failure after the first was a probe too
        assert (endpoint.failures, endpoint.down_until) == (0, 0.0)


@pytest.mark.chain
async def test_a_failing_url_fails_over_to_the_next_at_once(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    settings = RpcSettings(backoff_s=60.0, timeout_s=2.0)
    async with rpc_proxy(deployment.rpc_url) as (url, proxy), httpx.AsyncClient() as http:
        rpc = RpcClient([url, deployment.rpc_url], http=http, settings=settings, chain="t")
        proxy.mode = "garbage"
        started = time.perf_counter()
        assert int(await rpc.call("eth_blockNumber", []), 16) > 0  # from the second URL
        assert time.perf_counter() - started < 2.0  # no wait between the URLs
        assert (rpc.stats.failovers, proxy.http_requests) == (1, 1)


@pytest.mark.chain
async def test_whole_chain_down_is_stale_with_last_known_values_never_zero(devnet: Devnet) -> None:
    healthy, doomed = devnet.chain(1), devnet.chain(42161)
    wallet = doomed.wallets[0]
    async with open_chains(devnet_config([healthy, doomed])) as chains:
        good = await read_portfolio(chains, [(42161, wallet)])
    last_known = {(42161, wallet): good.chains[42161].holdings[wallet]}

    urls = {42161: [dead_url(), dead_url()]}
    async with open_chains(devnet_config([healthy, doomed], rpc_urls=urls)) as chains:
        result = await read_portfolio(
            chains, [(1, healthy.wallets[0]), (42161, wallet)], last_known=last_known
        )
    assert result.chains[1].status.state is ChainState.OK
    down = result.chains[42161]
    assert down.status.state is ChainState.STALE
    assert down.status.error is not None
    assert "all RPC URLs failed" in down.status.error
    assert down.status.block_number == good.chains[42161].status.block_number
    stale = down.holdings[wallet]
    assert all(h.stale for h in stale)
    assert _amounts({wallet: stale}) == _amounts(good.chains[42161].holdings)
    assert any(h.amount for h in stale)


@pytest.mark.chain
async def test_a_paused_node_goes_stale_within_its_timeout_while_others_are_served(
    devnet: Devnet,
) -> None:
    wallets = [(d.chain_id, d.wallets[1]) for d in devnet.chains]
    rpc = RpcSettings(timeout_s=1.0, backoff_s=0.0)
    async with open_chains(devnet_config(devnet.chains, rpc=rpc)) as chains:
        node = devnet.node(137)
        node.pause()
        try:
            started = time.perf_counter()
            result = await read_portfolio(chains, wallets, chain_timeout_s=5.0)
            elapsed = time.perf_counter() - started
        finally:
            node.resume()
        states = {c: h.status.state for c, h in result.chains.items()}
        assert states == {1: ChainState.OK, 137: ChainState.STALE, 42161: ChainState.OK}
        # never read: not an empty wallet but its native coin, amount unknown, with the reason
        (unread,) = result.chains[137].holdings[devnet.chain(137).wallets[1]]
        assert (unread.symbol, unread.amount, unread.stale) == ("ETH", None, True)
        assert unread.error == result.chains[137].status.error
        assert "ReadTimeout" in (result.chains[137].status.error or "")
        assert result.chains[1].status.duration_s < 1.0
        assert elapsed < 3.0  # one 1 s request timeout (+ the price read's), not a hang

        again = await read_portfolio(chains, wallets)
        assert {h.status.state for h in again.chains.values()} == {ChainState.OK}


@pytest.mark.chain
async def test_a_node_that_hangs_is_cut_by_the_chain_timeout(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    async with serve(hang) as url:
        rpc = RpcSettings(timeout_s=30.0)
        config = devnet_config([deployment], rpc_urls={1: [url]}, rpc=rpc)
        async with open_chains(config) as chains:
            started = time.perf_counter()
            result = await read_portfolio(
                chains, [(1, deployment.wallets[0])], chain_timeout_s=0.5, with_prices=False
            )
    assert time.perf_counter() - started < 2.0
    assert result.chains[1].status.state is ChainState.STALE
    assert result.chains[1].status.error == "timed out after 0.5s"


@pytest.mark.chain
async def test_a_node_refusing_batches_gets_single_requests(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    pairs = [(1, w) for w in deployment.wallets]
    async with open_chains(devnet_config([deployment])) as chains:
        expected = _amounts((await read_portfolio(chains, pairs)).chains[1].holdings)
    small = FAST_RPC.model_copy(update={"chunk_size": 50})
    async with rpc_proxy(deployment.rpc_url) as (url, proxy):
        proxy.mode = "refuse_batch"
        config = devnet_config([deployment], rpc_urls={1: [url]}, rpc=small)
        async with open_chains(config) as chains:
            result = await read_portfolio(chains, pairs, with_prices=False)
            assert not chains.readers[1].rpc.endpoints[0].supports_batch
    assert _amounts(result.chains[1].holdings) == expected
    assert proxy.batch_sizes.count(0) >= 4  # the refused batch was re-sent call by call


@pytest.mark.chain
async def test_chunks_are_halved_when_the_node_refuses_their_size(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    pairs = [(1, w) for w in deployment.wallets]
    async with open_chains(devnet_config([deployment])) as chains:
        expected = _amounts((await read_portfolio(chains, pairs)).chains[1].holdings)
    async with rpc_proxy(deployment.rpc_url) as (url, proxy):
        # about 60 calls of calldata fit; the first 400-call chunk does not
        proxy.max_call_hex = 60 * 256 * 2
        config = devnet_config([deployment], rpc_urls={1: [url]})
        async with open_chains(config) as chains:
            result = await read_portfolio(chains, pairs, with_prices=False)
            chunk = chains.readers[1].chunk_size.value
    assert proxy.size_errors >= 3
    assert chunk < 60
    assert _amounts(result.chains[1].holdings) == expected
    assert all(
        h.error is None
        for hs in result.chains[1].holdings.values()
        for h in hs
        if h.symbol != "BRKN"
    )


@pytest.mark.chain
async def test_chunks_grow_back_once_the_node_accepts_them_again(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    pairs = [(1, w) for w in deployment.wallets]
    async with rpc_proxy(deployment.rpc_url) as (url, proxy):
        proxy.max_call_hex = 60 * 256 * 2
        config = devnet_config([deployment], rpc_urls={1: [url]})
        async with open_chains(config) as chains:
            size = chains.readers[1].chunk_size
            size.recover_after = 2
            await read_portfolio(chains, pairs, with_prices=False)
            shrunk = size.value
            proxy.max_call_hex = None  # the limit is gone (another node, less load)
            seen = []
            for _ in range(8):
                await read_portfolio(chains, pairs, with_prices=False)
                seen.append(size.value)
    assert shrunk < 60
    # doubles after every two clean Multicall3 reads, up to the configured size, never beyond
    assert seen == sorted(seen)
    assert {v // shrunk for v in seen if v < 400} <= {1, 2, 4, 8}
    assert seen[-1] == size.initial == 400


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://eth-mainnet.g.alchemy.com/v2/SECRETKEY", "https://eth-mainnet.g.alchemy.com/…"),
        ("https://rpc.example/?apikey=SECRET", "https://rpc.example/…"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
    ],
)
def test_rpc_urls_are_shown_without_their_keys(url: str, shown: str) -> None:
    assert display_url(url) == shown
