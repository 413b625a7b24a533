"""Test tokens deployed on the session devnet: many plain ERC-20s and the odd shapes."""

from __future__ import annotations

from typing import Any, cast

from eth_typing import ABI
from eth_utils.address import to_checksum_address
from web3 import Web3

from chainfolio.devnet import DevnetDeployment, load_artifact, web3_for


def _w3(deployment: DevnetDeployment) -> tuple[Web3, str]:
    w3 = web3_for(deployment)
    return w3, deployment.deployer or w3.eth.accounts[0]


def deploy_token(deployment: DevnetDeployment, artifact: str, *args: Any) -> str:
    """Deploy a devnet artifact (an ERC-20 shape) and return its EIP-55 address."""
    w3, deployer = _w3(deployment)
    compiled = load_artifact(artifact)
    factory = w3.eth.contract(abi=cast(ABI, compiled.abi), bytecode=compiled.bytecode)
    tx = factory.constructor(*args).transact({"from": to_checksum_address(deployer)})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    return to_checksum_address(str(receipt["contractAddress"]))


def token_call(
    deployment: DevnetDeployment, artifact: str, token: str, function: str, *args: Any
) -> str:
    """Send `function(*args)` to `token` from the deployer; returns the transaction hash."""
    w3, deployer = _w3(deployment)
    contract = w3.eth.contract(
        address=to_checksum_address(token), abi=cast(ABI, load_artifact(artifact).abi)
    )
    tx = getattr(contract.functions, function)(*args).transact(
        {"from": to_checksum_address(deployer)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    assert receipt["status"] == 1, function
    return str(tx.to_0x_hex())


def mint(deployment: DevnetDeployment, artifact: str, token: str, to: str, amount: int) -> str:
    """Mint `amount` base units of `token` to `to`."""
    return token_call(deployment, artifact, token, "mint", to_checksum_address(to), amount)


def fresh_wallet(seed: int) -> str:
    """An address nothing on the devnet has touched (no key needed: it only receives)."""
    return to_checksum_address("0x" + Web3.keccak(text=f"tokens-test-{seed}").hex()[-40:])
