"""Balances of 1,000 wallets x 50 tokens on one local Hardhat node: Multicall3 + loader vs naive.

Run: python benchmarks/bench_balances.py [--wallets 1000] [--naive-sample 20]

Measured in the same run on the same node:
* batched: `BalanceLoader` with every (chain, wallet) key in one tick -> `EvmChainReader`
  -> Multicall3 `aggregate3` chunks of 400 calls, 8 chunks per JSON-RPC batch request,
  all pinned to one block. Round trips are HTTP requests counted by the RPC client.
* naive: one `eth_call balanceOf` (or `eth_getBalance`) HTTP request per balance, pinned to
  the same kind of block tag, measured twice on a sample of wallets: one request at a time (what
  an N+1 resolver chain does) and 8 in flight (a gather over per-balance calls). Its time is
  extrapolated linearly to all wallets (said so in the output).

Hardhat needs a first read at a new block to warm its state cache: the first batched read is
reported apart ("cold"); the figures compared are warm medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainfolio.devnet import DevnetDeployment, start_devnet
from chainfolio.fetchers import BalanceLoader, ChainsConfig, open_chains
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    GET_ETH_BALANCE,
    Call,
    encode_aggregate3,
    with_address,
)

CHAIN_ID = 31337
NAIVE_IN_FLIGHT = (1, 8)


def bench_config(deployment: DevnetDeployment) -> ChainsConfig:
    """Only the 50 ERC-20s plus the native coin: 51 balances per wallet."""
    tokens = [
        {"address": t.address, "symbol": s, "decimals": t.decimals}
        for s, t in deployment.tokens.items()
    ]
    chain = {
        "chain_id": deployment.chain_id,
        "name": "bench",
        "native_symbol": "ETH",
        "rpc_urls": [deployment.rpc_url],
        "multicall3": deployment.multicall3,
        "rpc": {"timeout_s": 120.0},
        "tokens": tokens,
    }
    return ChainsConfig.model_validate({"chains": [chain]})


async def batched(deployment: DevnetDeployment, config: ChainsConfig) -> dict[str, Any]:
    """One loader tick for every wallet; returns timings, round trips and the amounts."""
    async with open_chains(config) as chains:
        stats = chains.readers[CHAIN_ID].rpc.stats
        loader = BalanceLoader(chains)
        started = time.perf_counter()
        results = await asyncio.gather(*(loader.load((CHAIN_ID, w)) for w in deployment.wallets))
        elapsed = time.perf_counter() - started
        return {
            "seconds": elapsed,
            "round_trips": stats.http_requests,
            "rpc_calls": stats.rpc_calls,
            "amounts": {
                (w, h.symbol): h.amount
                for w, hs in zip(deployment.wallets, results, strict=True)
                for h in hs
            },
        }


async def naive(deployment: DevnetDeployment, wallets: list[str], in_flight: int) -> dict[str, Any]:
    """One HTTP request per balance (`in_flight` at a time) for `wallets`."""
    gate = asyncio.Semaphore(in_flight)
    block = None
    amounts: dict[tuple[str, str], int] = {}
    async with httpx.AsyncClient(timeout=120) as http:

        async def rpc(method: str, params: list[Any]) -> Any:
            async with gate:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                return (await http.post(deployment.rpc_url, json=body)).json()["result"]

        async def one(wallet: str, symbol: str, token: str | None) -> None:
            if token is None:
                value = await rpc("eth_getBalance", [wallet, block])
            else:
                data = "0x" + with_address(BALANCE_OF, wallet).hex()
                value = await rpc("eth_call", [{"to": token, "data": data}, block])
            amounts[(wallet, symbol)] = int(value, 16)

        started = time.perf_counter()
        block = await rpc("eth_blockNumber", [])
        jobs = [one(w, "ETH", None) for w in wallets]
        jobs += [one(w, s, t.address) for w in wallets for s, t in deployment.tokens.items()]
        await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "round_trips": len(jobs) + 1, "amounts": amounts}


async def floor(deployment: DevnetDeployment) -> float:
    """Seconds the node alone needs: the same aggregate3 chunks, pre-encoded, sent one by one."""
    tokens = [t.address for t in deployment.tokens.values()]
    calls = [
        Call(deployment.multicall3, with_address(GET_ETH_BALANCE, w)) for w in deployment.wallets
    ] + [Call(t, with_address(BALANCE_OF, w)) for w in deployment.wallets for t in tokens]
    bodies = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_call",
            "params": [
                {"to": deployment.multicall3, "data": "0x" + encode_aggregate3(chunk).hex()},
                "latest",
            ],
        }
        for chunk in (calls[i : i + 400] for i in range(0, len(calls), 400))
    ]
    async with httpx.AsyncClient(timeout=120) as http:
        started = time.perf_counter()
        for body in bodies:
            (await http.post(deployment.rpc_url, json=body)).raise_for_status()
        return time.perf_counter() - started


async def measure(deployment: DevnetDeployment, *, sample: int, repeats: int) -> None:
    """Run the paths in alternation (the machine is shared: load drifts) and print figures."""
    config = bench_config(deployment)
    wallets = len(deployment.wallets)
    tokens = len(deployment.tokens)
    balances = wallets * (tokens + 1)
    subset = deployment.wallets[:sample]
    print(f"node: Hardhat, 1 chain; {wallets} wallets x ({tokens} ERC-20 + native) = {balances}")

    cold = await batched(deployment, config)
    rounds: list[dict[str, Any]] = []
    for _ in range(repeats):
        fast = await batched(deployment, config)
        node_only = await floor(deployment)
        plain = {n: await naive(deployment, subset, n) for n in NAIVE_IN_FLIGHT}
        rounds.append({"batched": fast, "floor": node_only, "naive": plain})

    def median(values: list[float]) -> float:
        return statistics.median(values)

    seconds = median([r["batched"]["seconds"] for r in rounds])
    first = rounds[0]["batched"]
    trips = first["round_trips"]
    print(
        f"batched (Multicall3 aggregate3 + BalanceLoader): median {seconds:.2f} s over {repeats} "
        f"rounds (cold first read after deploy: {cold['seconds']:.2f} s); {trips} HTTP round "
        f"trips ({first['rpc_calls']} JSON-RPC calls) = {balances / trips:.0f} balances per "
        f"round trip (goal <= 1 round trip per 400 balances: {trips} <= {balances // 400})"
    )
    node_only = median([r["floor"] for r in rounds])
    print(
        f"node floor (same 400-call aggregate3 chunks pre-encoded, sent one by one, no fetchers "
        f"code): median {node_only:.2f} s = {node_only / balances * 1e6:.0f} us per balanceOf "
        "inside Multicall3 on Hardhat"
    )
    expected = {(w, s): a for w in subset for s, a in deployment.token_balances[w].items()}
    expected |= {(w, "ETH"): deployment.native_balances[w] for w in subset}
    wrong = [k for k, v in expected.items() if first["amounts"].get(k) != v]
    print(f"check: batched amounts == funded amounts on the {sample}-wallet sample: {not wrong}")
    for in_flight in NAIVE_IN_FLIGHT:
        naive_runs = [r["naive"][in_flight] for r in rounds]
        same = all(
            first["amounts"].get(k) == v for run in naive_runs for k, v in run["amounts"].items()
        )
        measured = median([run["seconds"] for run in naive_runs])
        total = measured / len(subset) * wallets
        ratios = [
            r["naive"][in_flight]["seconds"] / len(subset) * wallets / r["batched"]["seconds"]
            for r in rounds
        ]
        print(
            f"naive (1 eth_call per balance, {in_flight} in flight): measured on {len(subset)} "
            f"wallets = {naive_runs[0]['round_trips']} round trips, median {measured:.2f} s; "
            f"EXTRAPOLATED to {wallets} wallets: {total:.1f} s, {balances + 1} round trips; "
            f"same amounts: {same}"
        )
        print(
            f"  speed-up batched vs this naive: median {median(ratios):.1f}x wall time per "
            f"round (rounds: {', '.join(f'{x:.1f}' for x in ratios)}; goal >= 20x), "
            f"{(balances + 1) / trips:.0f}x fewer round trips"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--extra-tokens", type=int, default=45)
    parser.add_argument("--naive-sample", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    with start_devnet(
        chain_ids=(CHAIN_ID,),
        wallets=args.wallets,
        extra_tokens=args.extra_tokens,
        position_wallets=0,
        timeout=600,
    ) as devnet:
        print(f"devnet deployed and funded in {time.perf_counter() - started:.1f} s")
        asyncio.run(measure(devnet.chains[0], sample=args.naive_sample, repeats=args.repeats))


if __name__ == "__main__":
    main()
