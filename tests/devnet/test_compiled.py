"""The committed artifacts are exactly what solc-js makes of the committed sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chainfolio.devnet import DevnetError, compile_contracts, load_artifact
from chainfolio.devnet.compiled import ARTIFACTS_DIR


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs Node.js and npm")
def test_artifacts_are_up_to_date(tmp_path: Path) -> None:
    fresh = {p.name: json.loads(p.read_text()) for p in compile_contracts(tmp_path)}
    committed = {p.name: json.loads(p.read_text()) for p in ARTIFACTS_DIR.glob("*.json")}
    assert sorted(fresh) == sorted(committed), "run: python -m chainfolio.devnet.compiled"
    for name, artifact in fresh.items():
        assert artifact == committed[name], f"{name} is stale: python -m chainfolio.devnet.compiled"


def test_load_artifact() -> None:
    multicall = load_artifact("Multicall3")
    names = {e.get("name") for e in multicall.abi}
    assert {"aggregate3", "tryAggregate", "getEthBalance", "getBlockNumber"} <= names
    assert multicall.deployed_bytecode.startswith("0x60")
    assert multicall.compiler_version.startswith("0.8.26")
    with pytest.raises(DevnetError):
        load_artifact("Nope")
