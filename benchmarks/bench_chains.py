"""Refresh time as the number of chains grows: 1, 5 and 10 local Hardhat nodes.

Run: python benchmarks/bench_chains.py [--wallets 100] [--rounds 5]

Each chain is a Hardhat node with the devnet contracts; every wallet is read with its native
coin, 5 ERC-20s, an NFT, a reverting token, an ERC-4626 vault and a lending market (11 calls),
plus Chainlink prices. `read_portfolio` reads the chains concurrently; the baseline measured in
the same run reads the same chains one after the other with the same code. Figures are medians
over rounds that alternate the two (the machine is shared, so load drifts).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainfolio.devnet import Devnet, start_devnet
from chainfolio.fetchers import (
    ChainSet,
    ChainState,
    config_from_devnet,
    open_chains,
    read_portfolio,
)

CHAIN_IDS = (1, 10, 56, 100, 137, 250, 8453, 42161, 43114, 59144)
COUNTS = (1, 5, 10)


async def concurrent(chains: ChainSet, pairs: list[tuple[int, str]]) -> float:
    """One read_portfolio over every pair; seconds."""
    started = time.perf_counter()
    result = await read_portfolio(chains, pairs)
    elapsed = time.perf_counter() - started
    assert {c.status.state for c in result.chains.values()} == {ChainState.OK}
    return elapsed


async def sequential(chains: ChainSet, pairs: list[tuple[int, str]]) -> float:
    """The same reads, one chain after the other, then the same one price read; seconds."""
    started = time.perf_counter()
    symbols: set[str] = set()
    for chain_id in dict.fromkeys(c for c, _ in pairs):
        mine = [p for p in pairs if p[0] == chain_id]
        result = await read_portfolio(chains, mine, with_prices=False)
        assert result.chains[chain_id].status.state is ChainState.OK
        symbols |= chains.readers[chain_id].chain.price_keys()
    await chains.prices.prices(symbols)
    return time.perf_counter() - started


async def measure(devnet: Devnet, *, rounds: int) -> None:
    """Print one line per chain count."""
    async with open_chains(config_from_devnet(devnet.chains)) as chains:
        everything = [(d.chain_id, w) for d in devnet.chains for w in d.wallets]
        await read_portfolio(chains, everything)  # warm up: decimals, node caches
        wallets = len(devnet.chains[0].wallets)
        print(f"{wallets} wallets per chain, 11 calls per wallet + prices; medians of {rounds}")
        for count in COUNTS:
            ids = set(CHAIN_IDS[:count])
            pairs = [p for p in everything if p[0] in ids]
            together, apart, trips = [], [], []
            for _ in range(rounds):
                before = sum(chains.readers[c].rpc.stats.http_requests for c in ids)
                together.append(await concurrent(chains, pairs))
                trips.append(sum(chains.readers[c].rpc.stats.http_requests for c in ids) - before)
                apart.append(await sequential(chains, pairs))
            fast, slow = statistics.median(together), statistics.median(apart)
            print(
                f"{count:>2} chains ({len(pairs)} wallets, {len(pairs) * 11} balances): "
                f"concurrent {fast:.2f} s | sequential baseline {slow:.2f} s | "
                f"{slow / fast:.1f}x | {statistics.median(trips):.0f} RPC round trips per refresh"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    with start_devnet(
        chain_ids=CHAIN_IDS, wallets=args.wallets, position_wallets=20, timeout=600
    ) as devnet:
        print(f"{len(CHAIN_IDS)} Hardhat nodes deployed in {time.perf_counter() - started:.1f} s")
        asyncio.run(measure(devnet, rounds=args.rounds))


if __name__ == "__main__":
    main()
