"""Poking a deployed devnet chain (tests, demo): transfers and mints, feed prices, vault yield,
mining and time, snapshots and reverts, and the holdings it was funded with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from eth_account import Account
from eth_typing import ABI, HexStr
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import TxParams, Wei

from chainfolio.devnet.compiled import encode_call, load_artifact
from chainfolio.devnet.deploy import DevnetDeployment, DevnetRpc
from chainfolio.devnet.node import DevnetError

_GAS_HEADROOM = 20_000


def web3_for(deployment: DevnetDeployment) -> Web3:
    """A web3.py client for the deployment's node."""
    return Web3(HTTPProvider(deployment.rpc_url, request_kwargs={"timeout": 60}))


def devnet_contract(w3: Web3, contract: str, address: str) -> Contract:
    """A web3.py contract object for devnet contract `contract` (artifact name) at `address`."""
    abi = cast(ABI, load_artifact(contract).abi)
    return w3.eth.contract(address=to_checksum_address(address), abi=abi)


def transact(
    deployment: DevnetDeployment, *, sender: str, to: str, data: str = "0x", value: int = 0
) -> str:
    """Send and mine one transaction; wallets sign locally, other senders must be unlocked."""
    w3 = web3_for(deployment)
    sender = to_checksum_address(sender)
    base_fee = w3.eth.get_block("pending").get("baseFeePerGas", 0)
    tx: TxParams = {
        "from": sender,
        "to": to_checksum_address(to),
        "data": HexStr(data),
        "value": Wei(value),
        "gasPrice": Wei(base_fee),
        "chainId": deployment.chain_id,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
    }
    # Headroom: Hardhat estimates at the latest block's timestamp but mines in a later block. A
    # contract storing block.timestamp (Chainlink's MockV3Aggregator) updated in the latest
    # block then meets a no-op SSTORE in the estimate and a real one on chain: 2,800 gas more.
    tx["gas"] = w3.eth.estimate_gas(tx) + _GAS_HEADROOM
    key = deployment.private_keys.get(sender)
    if key is None:
        tx_hash = w3.eth.send_transaction(tx)
    else:
        signed = Account.sign_transaction(cast(dict[str, Any], tx), key)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    if receipt["status"] != 1:
        raise DevnetError(f"transaction {tx_hash.to_0x_hex()} reverted")
    return tx_hash.to_0x_hex()


def deployer_of(deployment: DevnetDeployment) -> str:
    return deployment.deployer or web3_for(deployment).eth.accounts[0]


def transfer_native(deployment: DevnetDeployment, *, sender: str, to: str, amount: int) -> str:
    """Send `amount` wei; gas costs the base fee only, which is 0 on the devnet. Returns tx hash."""
    return transact(deployment, sender=sender, to=to, value=amount)


def transfer_token(
    deployment: DevnetDeployment, *, symbol: str, sender: str, to: str, amount: int
) -> str:
    """Transfer `amount` base units of token `symbol` from `sender` to `to`. Returns tx hash."""
    data = encode_call("MintableERC20", "transfer", to_checksum_address(to), amount)
    return transact(deployment, sender=sender, to=deployment.tokens[symbol].address, data=data)


def mint_token(deployment: DevnetDeployment, *, symbol: str, to: str, amount: int) -> str:
    """Mint `amount` base units of token `symbol` to `to`. Returns tx hash."""
    data = encode_call("MintableERC20", "mint", to_checksum_address(to), amount)
    token = deployment.tokens[symbol].address
    return transact(deployment, sender=deployer_of(deployment), to=token, data=data)


def _feed_address(deployment: DevnetDeployment, feed: str) -> str:
    return deployment.feeds.get(feed, feed)


def set_price(
    deployment: DevnetDeployment, feed: str, answer: int, *, updated_at: int | None = None
) -> str:
    """Start a new round on `feed` (a key such as "ETH", or an address) with `answer`.

    `answer` is in the feed's decimals; `updated_at` (unix seconds) backdates the round, e.g.
    to make the feed stale. Returns the hash of the last transaction sent.
    """
    address = _feed_address(deployment, feed)
    data = encode_call("MockV3Aggregator", "updateAnswer", answer)
    tx_hash = transact(deployment, sender=deployer_of(deployment), to=address, data=data)
    if updated_at is not None:
        tx_hash = set_feed_updated_at(deployment, address, updated_at)
    return tx_hash


def set_feed_updated_at(deployment: DevnetDeployment, feed: str, updated_at: int) -> str:
    """Set `updatedAt` of the feed's latest round (unix seconds), keeping its answer."""
    address = _feed_address(deployment, feed)
    aggregator = devnet_contract(web3_for(deployment), "MockV3Aggregator", address)
    round_id, answer, started_at, _, _ = aggregator.functions.latestRoundData().call()
    # Chainlink's mock has no setter for one field: rewrite the latest round in place.
    data = encode_call(
        "MockV3Aggregator", "updateRoundData", round_id, answer, updated_at, started_at
    )
    return transact(deployment, sender=deployer_of(deployment), to=address, data=data)


def accrue_vault_yield(deployment: DevnetDeployment, assets: int) -> str:
    """Mint `assets` of the vault's underlying into the vault: every share gains value."""
    data = encode_call("MockERC4626Vault", "accrueYield", assets)
    return transact(deployment, sender=deployer_of(deployment), to=deployment.vault, data=data)


def mine(deployment: DevnetDeployment, blocks: int = 1) -> int:
    """Mine `blocks` empty blocks; return the new head block number."""
    rpc = DevnetRpc(deployment.rpc_url)
    rpc.call("hardhat_mine", hex(blocks))
    return int(rpc.call("eth_blockNumber"), 16)


def increase_time(deployment: DevnetDeployment, seconds: int) -> int:
    """Move the chain's clock forward by `seconds` and mine a block; return its timestamp."""
    rpc = DevnetRpc(deployment.rpc_url)
    rpc.call("evm_increaseTime", seconds)
    rpc.call("evm_mine")
    return int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def set_time(deployment: DevnetDeployment, timestamp: int) -> int:
    """Mine a block at `timestamp` (unix seconds, later than the head's); later blocks follow
    on from it. Returns the timestamp."""
    rpc = DevnetRpc(deployment.rpc_url)
    rpc.call("evm_setNextBlockTimestamp", hex(timestamp))
    rpc.call("evm_mine")
    return int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def snapshot(deployment: DevnetDeployment) -> str:
    """Snapshot the chain state; `revert` returns to it (once)."""
    return cast(str, DevnetRpc(deployment.rpc_url).call("evm_snapshot"))


def revert(deployment: DevnetDeployment, snapshot_id: str) -> None:
    """Return the chain to a snapshot taken with `snapshot`."""
    if not DevnetRpc(deployment.rpc_url).call("evm_revert", snapshot_id):
        raise DevnetError(f"unknown snapshot {snapshot_id} on chain {deployment.chain_id}")


def iter_holdings(deployment: DevnetDeployment) -> Iterator[tuple[str, str, int]]:
    """(wallet, asset, base units) for every funded native and token balance, zeros included."""
    for wallet in deployment.wallets:
        yield wallet, "native", deployment.native_balances[wallet]
        for symbol, amount in deployment.token_balances[wallet].items():
            yield wallet, symbol, amount
