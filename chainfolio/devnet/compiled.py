"""Compiled devnet contracts: load the committed artifacts, or rebuild them with solc-js.

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
