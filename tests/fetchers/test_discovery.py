"""Transfer-log discovery against Hardhat, behind a provider that limits eth_getLogs."""

from __future__ import annotations

import itertools

import httpx
import pytest

from chainfolio.devnet import Devnet, mine, transfer_token
from chainfolio.fetchers.discovery import discover_tokens
from chainfolio.fetchers.rpc import RpcClient

from .conftest import FAST_RPC
from .servers import rpc_proxy
from .tokens import deploy_token, fresh_wallet, mint

pytestmark = pytest.mark.chain


def _block_number(devnet: Devnet) -> int:
    response = httpx.post(
        devnet.chain(1).rpc_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
    )
    return int(response.json()["result"], 16)


@pytest.mark.parametrize(
    ("max_log_range", "max_log_results"), [(64, None), (None, 3), (100, 2)], ids=str
)
async def test_discovery_completes_under_provider_limits_without_skipping_a_block(
    restore_devnet: Devnet, max_log_range: int | None, max_log_results: int | None
) -> None:
    deployment = restore_devnet.chain(1)
    wallet = fresh_wallet(1)
    first = _block_number(restore_devnet) + 1
    expected: dict[str, int] = {}
    for i in range(5):
        token = deploy_token(deployment, "MintableERC20", f"Unlisted {i}", f"UNL{i}", 18)
        mine(deployment, 150)
        mint(deployment, "MintableERC20", token, wallet, 10**18 + i)
        expected[token] = _block_number(restore_devnet)
        mint(deployment, "MintableERC20", token, wallet, 7)  # a second transfer: not first seen
    transfer_token(deployment, symbol="USDC", sender=deployment.wallets[0], to=wallet, amount=5)
    expected[deployment.tokens["USDC"].address] = _block_number(restore_devnet)
    mine(deployment, 300)
    last = _block_number(restore_devnet)

    progress: list[tuple[int, int]] = []

    async def report(scanned: int, total: int) -> None:
        progress.append((scanned, total))

    async with rpc_proxy(deployment.rpc_url) as (url, proxy), httpx.AsyncClient() as http:
        proxy.max_log_range = max_log_range
        proxy.max_log_results = max_log_results
        rpc = RpcClient([url], http=http, settings=FAST_RPC, chain="devnet-1")
        scan = await discover_tokens(
            rpc,
            wallets=[wallet],
            first_block=first,
            last_block=last,
            max_range=1_000,
            on_progress=report,
        )
    found = {c.contract: c.first_block for c in scan.candidates}
    assert found == expected
    assert {c.wallet for c in scan.candidates} == {wallet}
    assert proxy.log_refusals > 0
    assert scan.halvings > 0
    # Every block answered exactly once, from first to last.
    covered = sorted(proxy.log_ranges)
    assert covered[0][0] == first
    assert covered[-1][1] == last
    for (_, end), (start, _) in itertools.pairwise(covered):
        assert start == end + 1
    assert sorted(scan.scanned) == covered
    assert progress[-1] == (last - first + 1, last - first + 1)
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)


async def test_a_wallet_that_received_nothing_has_no_candidates(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    async with httpx.AsyncClient() as http:
        rpc = RpcClient([deployment.rpc_url], http=http, settings=FAST_RPC, chain="devnet-1")
        scan = await discover_tokens(
            rpc, wallets=[fresh_wallet(2)], first_block=0, last_block=_block_number(devnet)
        )
    assert scan.candidates == []
    assert scan.scanned[0][0] == 0
