"""Test tokens deployed on the session devnet: OpenZeppelin's published ERC-20 (npm
`@openzeppelin/contracts`, pinned in tests/fixtures/openzeppelin) and the odd shapes OpenZeppelin
does not ship (chainfolio/devnet/contracts/OddTokens.sol, decimals other than 18)."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, cast

from eth_typing import ABI
from eth_utils.address import to_checksum_address
from web3 import Web3

from chainfolio.devnet import DevnetDeployment, load_artifact, web3_for

OPENZEPPELIN = "oz:ERC20PresetMinterPauser"
"""OpenZeppelin 4.9.6's ERC20PresetMinterPauser(name, symbol): 18 decimals, deployer mints."""
_OZ_PACKAGE = Path(__file__).parents[1] / "fixtures" / "openzeppelin"


@functools.cache
def _openzeppelin_dir() -> Path:
    """The pinned @openzeppelin/contracts, installed once per lock file with `npm ci`."""
    lock = (_OZ_PACKAGE / "package-lock.json").read_bytes()
    target = Path(tempfile.gettempdir()) / f"chainfolio-oz-{hashlib.sha256(lock).hexdigest()[:12]}"
    target.mkdir(exist_ok=True)
    with (target / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (target / "node_modules" / "@openzeppelin" / "contracts" / "package.json").exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copy(_OZ_PACKAGE / name, target / name)
            npm = shutil.which("npm") or "npm"
            argv = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
            subprocess.run(argv, cwd=target, check=True, capture_output=True)
    return target / "node_modules" / "@openzeppelin" / "contracts" / "build" / "contracts"


def _abi_and_bytecode(artifact: str) -> tuple[ABI, str]:
    if artifact.startswith("oz:"):
        data = json.loads((_openzeppelin_dir() / f"{artifact[3:]}.json").read_text())
        return cast(ABI, data["abi"]), str(data["bytecode"])
    compiled = load_artifact(artifact)
    return cast(ABI, compiled.abi), compiled.bytecode


def _w3(deployment: DevnetDeployment) -> tuple[Web3, str]:
    w3 = web3_for(deployment)
    return w3, deployment.deployer or w3.eth.accounts[0]


def deploy_token(deployment: DevnetDeployment, artifact: str, *args: Any) -> str:
    """Deploy a devnet artifact or an OpenZeppelin one ("oz:Name"); its EIP-55 address back."""
    w3, deployer = _w3(deployment)
    abi, bytecode = _abi_and_bytecode(artifact)
    factory = w3.eth.contract(abi=abi, bytecode=bytecode)
    tx = factory.constructor(*args).transact({"from": to_checksum_address(deployer)})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    return to_checksum_address(str(receipt["contractAddress"]))


def token_call(
    deployment: DevnetDeployment, artifact: str, token: str, function: str, *args: Any
) -> str:
    """Send `function(*args)` to `token` from the deployer; returns the transaction hash."""
    w3, deployer = _w3(deployment)
    contract = w3.eth.contract(
        address=to_checksum_address(token), abi=_abi_and_bytecode(artifact)[0]
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
