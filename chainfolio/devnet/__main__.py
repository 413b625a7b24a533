"""`python -m chainfolio.devnet`: run the local devnet until Ctrl-C."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from chainfolio.devnet.cli import run_devnet_cli
from chainfolio.devnet.network import DEFAULT_CHAIN_IDS


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m chainfolio.devnet") -> int:
    """Parse arguments and run the devnet in the foreground (also `chainfolio devnet`)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    chains = ",".join(map(str, DEFAULT_CHAIN_IDS))
    parser.add_argument(
        "--chain-id",
        type=int,
        action="append",
        dest="chain_ids",
        help=f"a chain to run; repeat for several (default: {chains})",
    )
    parser.add_argument(
        "--wallets", type=int, default=10, help="funded wallets per chain (default: %(default)s)"
    )
    parser.add_argument(
        "--extra-tokens",
        type=int,
        default=0,
        help="ERC-20 tokens beyond the standard ones (default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        dest="json_path",
        help="also write the deployments to this file (default: no)",
    )
    args = parser.parse_args(argv)
    return run_devnet_cli(
        chain_ids=args.chain_ids or DEFAULT_CHAIN_IDS,
        wallets=args.wallets,
        extra_tokens=args.extra_tokens,
        json_path=args.json_path,
    )


if __name__ == "__main__":
    raise SystemExit(main())
