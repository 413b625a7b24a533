"""Node lifecycle: pause, kill, restart on the same port, and no orphans in any case."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from chainfolio.devnet import Devnet, HardhatNode, ensure_installed, start_devnet, web3_for
from chainfolio.devnet.node import free_port

pytestmark = pytest.mark.chain

REPO = Path(__file__).resolve().parents[2]


def _chain_id(url: str, timeout: float = 2.0) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(json.loads(response.read())["result"], 16)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pgid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def lone_devnet() -> Iterator[Devnet]:
    """A one-chain devnet of our own, so faults never disturb the session devnet."""
    with start_devnet(chain_ids=(31337,), wallets=3) as devnet:
        yield devnet


def test_pause_and_resume(lone_devnet: Devnet) -> None:
    node = lone_devnet.node(31337)
    node.pause()
    try:
        assert node.paused
        assert node.running
        with pytest.raises(OSError, match="timed out"):
            _chain_id(node.rpc_url, timeout=0.5)
    finally:
        node.resume()
    assert not node.paused
    assert _chain_id(node.rpc_url) == 31337


def test_kill_and_restart_on_same_port(lone_devnet: Devnet) -> None:
    node = lone_devnet.node(31337)
    before = lone_devnet.chain(31337)
    port, pid = node.port, node.pid
    assert pid is not None
    node.kill()
    assert not node.running
    assert _wait_gone(pid)
    with pytest.raises(OSError, match="refused"):
        _chain_id(node.rpc_url)
    after = lone_devnet.restart(31337)
    assert node.port == port
    assert node.pid != pid
    assert after == before
    wallet = after.wallets[1]
    balance = web3_for(after).eth.get_balance(Web3.to_checksum_address(wallet))
    assert balance == after.native_balances[wallet]


def test_restart_without_redeploy_gives_an_empty_chain(lone_devnet: Devnet) -> None:
    assert lone_devnet.restart(31337, redeploy=False) is None
    chain = lone_devnet.chain(31337)
    usdc = Web3.to_checksum_address(chain.tokens["USDC"].address)
    assert web3_for(chain).eth.get_code(usdc) == b""


def test_stop_leaves_no_process(lone_devnet: Devnet) -> None:
    node = HardhatNode(chain_id=5)
    with node:
        pid = node.pid
        assert pid is not None
        assert _chain_id(node.rpc_url) == 5
        node.pause()  # a paused node must stop too
    assert pid is not None
    assert not _group_alive(pid)
    assert not node.running


def test_node_dies_with_its_parent() -> None:
    # HardhatNode passes its own pid; here a shell plays the parent and exits at once, as a
    # SIGKILLed Python would, and the watchdog in hardhat.config.js must end the node. The node's
    # output goes to /dev/null: an inherited pipe would make run() wait for the node itself.
    directory = ensure_installed()
    cli = directory / "node_modules" / "hardhat" / "internal" / "cli" / "bootstrap.js"
    script = (
        f'CHAINFOLIO_DEVNET_PARENT_PID=$$ node "{cli}" node --port {free_port()}'
        " >/dev/null 2>&1 & echo $!"
    )
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
    result = subprocess.run(
        ["sh", "-c", script],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    assert _wait_gone(int(result.stdout.strip()), timeout=10)


@pytest.mark.parametrize(
    "command",
    [["-m", "chainfolio.devnet"], ["-m", "chainfolio", "devnet"]],
    ids=["python-m", "chainfolio-devnet"],
)
def test_cli_prints_endpoints_and_stops_on_ctrl_c(tmp_path: Path, command: list[str]) -> None:
    json_path = tmp_path / "devnet.json"
    argv = [sys.executable, *command, "--chain-id", "10", "--wallets", "2"]
    process = subprocess.Popen(
        [*argv, "--json", str(json_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "chain 10  rpc http://127.0.0.1:" in output
        assert "Multicall3      0xcA11bde05977b3631167028862bE2a173976CA11" in output
        (chain,) = json.loads(json_path.read_text())
        assert chain["chain_id"] == 10
        assert chain["private_keys"][chain["wallets"][0]].startswith("0x")
        rpc_url = chain["rpc_url"]
        assert _chain_id(rpc_url) == 10
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=15)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert "stopping devnet" in rest
    with pytest.raises(OSError, match="refused"):
        _chain_id(rpc_url)
