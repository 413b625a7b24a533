"""Local EVM devnet for tests, benchmarks and `chainfolio demo`: Hardhat nodes + test contracts.

May import: nothing of chainfolio outside `devnet` (it stands alone).

Needs Node.js 18+ and npm; Hardhat itself is installed on first use from the lock file shipped
here (`npm ci` into `CHAINFOLIO_DEVNET_DIR`, default
`user_cache_dir("chainfolio")/devnet-node-<lock digest>`).
Contracts are precompiled (`artifacts/`); `python -m chainfolio.devnet.compiled` rebuilds them.

Public API
----------
Whole devnet (`chainfolio.devnet.network`, `chainfolio.devnet.cli`):
    start_devnet(chain_ids=(1, 137, 42161), wallets=20, *, extra_tokens=0,
                 position_wallets=20, seed=..., directory=None, timeout=120.0) -> Devnet
    Devnet(...)                      `with` / `async with`; .start() .stop()
        .chains: list[DevnetDeployment]   .nodes: list[HardhatNode]
        .chain(chain_id) .node(chain_id) .restart(chain_id, redeploy=True)
    run_devnet_cli(*, chain_ids, wallets=10, extra_tokens=0, json_path=None, out=stdout) -> int
    describe(deployment) -> str

One chain (`chainfolio.devnet.deploy`; the specs and funding formulas in
`chainfolio.devnet.funding`, the pokes in `chainfolio.devnet.actions`):
    deploy(rpc_url, *, wallets=20, extra_tokens=0, position_wallets=20, seed=...)
        -> DevnetDeployment          big fund mode: wallets=1000, extra_tokens=45
    DevnetDeployment, TokenDeployment, MULTICALL3_ADDRESS, STANDARD_TOKENS, FEEDS, FX_FEEDS,
    token_specs(extra_tokens=0), token_amount(...), native_amount(...)  (the funding formulas)
    transfer_native(d, *, sender, to, amount)    transfer_token(d, *, symbol, sender, to, amount)
    mint_token(d, *, symbol, to, amount)         set_price(d, feed, answer, *, updated_at=None)
    set_feed_updated_at(d, feed, updated_at)     accrue_vault_yield(d, assets)
    mine(d, blocks=1)  increase_time(d, seconds)  set_time(d, timestamp)
    snapshot(d)  revert(d, snapshot_id)
    web3_for(d) -> Web3                          devnet_contract(w3, contract, address)
    encode_call(contract, function, *args)       iter_holdings(d)

Nodes (`chainfolio.devnet.node`):
    HardhatNode(*, chain_id, port=None, directory=None)
        .start() .spawn() .wait_ready() .pause() .resume() .kill() .stop() .restart()
        .rpc_url .port .pid .running .paused .log_tail()
    ensure_installed(directory=None) -> Path     devnet_dir() -> Path     stop_all()
    DevnetError

Real Uniswap (`chainfolio.devnet.uniswap`, npm artifacts of @uniswap/v3-core, v3-periphery and
v2-core pinned in node/package-lock.json):
    deploy_uniswap(d) -> UniswapDeployment   seed_positions(d, owners=(a, b)) -> SeededPositions
    create_v3_pool(...)  mint_v3_position(...) -> token id  swap_v3(...)  create_v2_pair(...)
    v3_contract(d, "pool" | "manager" | "factory" | "router" | "pair" | "v2factory", address)

Contracts and wallets: `load_artifact(name) -> Artifact`, `compile_contracts(out_dir)`,
`devnet_wallets(count, *, seed) -> list[Wallet]`.

Feeds: "ETH", "BTC", "USDC", "DAI" answer USD with 8 decimals; "NFT_FLOOR" answers the NFT
collection's floor in ETH with 18 decimals (like Chainlink's NFT floor feeds). "EUR", "GBP",
"CHF", "JPY" answer USD per unit with 8 decimals (Chainlink's `MockV3Aggregator`, compiled from
the pinned npm `@chainlink/contracts`).
"""

from chainfolio.devnet.actions import (
    accrue_vault_yield,
    devnet_contract,
    increase_time,
    iter_holdings,
    mine,
    mint_token,
    revert,
    set_feed_updated_at,
    set_price,
    set_time,
    snapshot,
    transfer_native,
    transfer_token,
    web3_for,
)
from chainfolio.devnet.cli import describe, run_devnet_cli
from chainfolio.devnet.compiled import Artifact, compile_contracts, encode_call, load_artifact
from chainfolio.devnet.deploy import MULTICALL3_ADDRESS, DevnetDeployment, TokenDeployment, deploy
from chainfolio.devnet.funding import FEEDS, FX_FEEDS, STANDARD_TOKENS, token_specs
from chainfolio.devnet.network import DEFAULT_CHAIN_IDS, Devnet, start_devnet
from chainfolio.devnet.node import DevnetError, HardhatNode, devnet_dir, ensure_installed, stop_all
from chainfolio.devnet.wallets import Wallet, devnet_wallets

__all__ = [
    "DEFAULT_CHAIN_IDS",
    "FEEDS",
    "FX_FEEDS",
    "MULTICALL3_ADDRESS",
    "STANDARD_TOKENS",
    "Artifact",
    "Devnet",
    "DevnetDeployment",
    "DevnetError",
    "HardhatNode",
    "TokenDeployment",
    "Wallet",
    "accrue_vault_yield",
    "compile_contracts",
    "deploy",
    "describe",
    "devnet_contract",
    "devnet_dir",
    "devnet_wallets",
    "encode_call",
    "ensure_installed",
    "increase_time",
    "iter_holdings",
    "load_artifact",
    "mine",
    "mint_token",
    "revert",
    "run_devnet_cli",
    "set_feed_updated_at",
    "set_price",
    "set_time",
    "snapshot",
    "start_devnet",
    "stop_all",
    "token_specs",
    "transfer_native",
    "transfer_token",
    "web3_for",
]
