"""Compiled devnet contracts: load the committed artifacts (and encode calls to them from their
ABIs), or rebuild them with solc-js.

Artifacts are committed so that installing chainfolio needs no Solidity compiler. After editing
a contract in `contracts/`, rebuild them with `python -m chainfolio.devnet.compiled`.
"""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_typing import HexStr
from eth_utils.crypto import keccak

from chainfolio.devnet.node import DevnetError, ensure_installed, find_executable

CONTRACTS_DIR = Path(__file__).parent / "contracts"
ARTIFACTS_DIR = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str


@functools.cache
def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract `name` (e.g. "Multicall3")."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise DevnetError(f"no compiled artifact for contract {name!r} in {ARTIFACTS_DIR}")
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler_version=data["compiler"]["version"],
    )


def compile_contracts(out_dir: Path, *, node_dir: Path | None = None) -> list[Path]:
    """Compile every contract in `contracts/` with the pinned solc-js into `out_dir`."""
    directory = ensure_installed(node_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [find_executable("node"), str(directory / "compile.js")]
    argv += ["--contracts", str(CONTRACTS_DIR), "--out", str(out_dir)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise DevnetError(f"solc-js compilation failed:\n{result.stderr}")
    return sorted(out_dir.glob("*.json"))


if __name__ == "__main__":
    for written in compile_contracts(ARTIFACTS_DIR):
        print(written)


def _abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of a parameter: tuples spelled out as "(t1,t2)[]"."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


@functools.cache
def _function_abi(contract: str, function: str, arity: int) -> tuple[bytes, tuple[str, ...]]:
    matches = [
        e
        for e in load_artifact(contract).abi
        if e["type"] == "function" and e["name"] == function and len(e["inputs"]) == arity
    ]
    if len(matches) != 1:
        raise DevnetError(f"{contract} has {len(matches)} functions {function}/{arity}")
    types = tuple(_abi_type(p) for p in matches[0]["inputs"])
    return keccak(text=f"{function}({','.join(types)})")[:4], types


def encode_call(contract: str, function: str, *args: Any) -> HexStr:
    """Calldata for `function(*args)` of devnet contract `contract` (e.g. "MintableERC20")."""
    # eth_abi directly: web3's Contract.encode_abi is ~100x slower on 1,000-element arrays.
    selector, types = _function_abi(contract, function, len(args))
    return HexStr("0x" + (selector + abi_encode(types, args)).hex())


def constructor_data(contract: str, *args: Any) -> str:
    artifact = load_artifact(contract)
    constructor = [e for e in artifact.abi if e["type"] == "constructor"]
    inputs: list[dict[str, Any]] = constructor[0]["inputs"] if constructor else []
    encoded = abi_encode([_abi_type(i) for i in inputs], list(args))
    return artifact.bytecode + encoded.hex()
