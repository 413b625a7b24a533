"""Transfer-log discovery against Hardhat, behind a provider that limits eth_getLogs."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest

from chainfolio.cli import build_parser
from chainfolio.cli.accounts import cmd_discover, progress_bar
from chainfolio.core.settings import Settings
from chainfolio.devnet import Devnet, mine, transfer_token
from chainfolio.fetchers.devnet_config import config_from_devnet
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


@pytest.mark.parametrize(("scanned", "total"), [(0, 10), (5, 10), (10, 10), (0, 0)])
def test_the_progress_bar_shows_the_share_of_blocks(scanned: int, total: int) -> None:
    bar = progress_bar(scanned, total, width=10)
    share = 100 if total == 0 else 100 * scanned // total
    assert bar.startswith("[" + "#" * (share // 10) + "-" * (10 - share // 10) + "]")
    assert f"{share}%" in bar


def test_the_discover_command_prints_progress_and_the_tokens_found(
    restore_devnet: Devnet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment = restore_devnet.chain(1)
    wallet = fresh_wallet(3)
    lure = deploy_token(deployment, "MintableERC20", "Claim at airdrop-eth.xyz", "CLAIM", 18)
    plain = deploy_token(deployment, "MintableERC20", "Plain", "PLN", 6)
    for token in (lure, plain):
        mint(deployment, "MintableERC20", token, wallet, 1_000)
    config = config_from_devnet([deployment])
    path = tmp_path / "chains.json"
    path.write_text(config.model_dump_json())
    settings = Settings(chains_file=path)
    args = build_parser().parse_args(
        ["discover", "--chain-id", "1", "--address", wallet, "--max-range", "64"]
    )
    assert cmd_discover(args, settings) == 0
    out, err = capsys.readouterr()
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert rows[plain][1:4] == ["PLN", "Plain", "6"]
    assert "spam: lure" in rows[lure][5]
    assert "100%" in err
    assert "2 tokens beyond the configured and listed ones" in err
