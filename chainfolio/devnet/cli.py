"""`chainfolio devnet`: run the local devnet in the foreground until Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from chainfolio.devnet.deploy import DevnetDeployment
from chainfolio.devnet.network import DEFAULT_CHAIN_IDS, Devnet


def describe(deployment: DevnetDeployment) -> str:
    """Human-readable summary of one chain: RPC URL, contracts, wallets with their keys."""
    d = deployment
    lines = [
        f"chain {d.chain_id}  rpc {d.rpc_url}",
        f"  Multicall3      {d.multicall3}",
        *(f"  {t.symbol:<15} {t.address}  ({t.decimals} decimals)" for t in d.tokens.values()),
        f"  NFT             {d.nft}",
        f"  vault ({d.vault_asset})    {d.vault}",
        f"  lending         {d.lending}",
        f"  reverting token {d.reverting_token}",
        *(f"  feed {key:<10} {address}" for key, address in d.feeds.items()),
        "  wallets (address  private key):",
        *(f"    {w}  {d.private_keys[w]}" for w in d.wallets),
    ]
    return "\n".join(lines)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_devnet_cli(
    *,
    chain_ids: Sequence[int] = DEFAULT_CHAIN_IDS,
    wallets: int = 10,
    extra_tokens: int = 0,
    json_path: Path | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Start the devnet, print how to reach it, block until Ctrl-C/SIGTERM, stop it; exit code.

    With `json_path`, the deployments are also written there as JSON (a list, one per chain).
    """
    if threading.current_thread() is threading.main_thread():
        # Whatever was inherited (`cmd &` starts us with SIGINT ignored): Ctrl-C and SIGTERM stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
    devnet = Devnet(chain_ids=chain_ids, wallets=wallets, extra_tokens=extra_tokens)
    try:
        started = time.monotonic()
        devnet.start()
        for deployment in devnet.chains:
            print(describe(deployment), file=out)
        if json_path is not None:
            payload = [dataclasses.asdict(d) for d in devnet.chains]
            json_path.write_text(json.dumps(payload, indent=2) + "\n")
            print(f"deployments written to {json_path}", file=out)
        elapsed = time.monotonic() - started
        print(f"devnet ready in {elapsed:.1f} s; Ctrl-C to stop", file=out, flush=True)
        while True:
            dead = [node for node in devnet.nodes if not node.running]
            if dead:
                for node in dead:
                    print(f"chain {node.chain_id} node died:\n{node.log_tail()}", file=out)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping devnet", file=out)
        return 0
    finally:
        devnet.stop()
