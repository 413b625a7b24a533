"""Token discovery on a local Hardhat node: the full Ethereum token list, and 1 M blocks of logs.

Run: python benchmarks/bench_tokens.py [--blocks 1000000] [--limit 10000] [--rounds 5]

1. List scan: every token the shipped Uniswap default list names on Ethereum (400+), at its
   real address — the devnet gets MintableERC20 code there (`hardhat_setCode`) and the wallet
   holds 25 of them. Measured: `read_portfolio` of one wallet (configured devnet tokens plus the
   list, non-zero balances only), round trips counted by the RPC client, warm median. Baseline
   in the same run: one `eth_call balanceOf` per listed token, one at a time.
2. Discovery: `--blocks` blocks (mined empty by `hardhat_mine`, with 20 transfers to the wallet
   spread over them) behind a proxy that refuses eth_getLogs over more than `--limit` blocks,
   as providers do. Measured: `discover_tokens` told the limit (ranges of `--limit` blocks, ten
   per JSON-RPC batch), and told nothing (starts at the whole range, halves on each refusal).
   Baseline: a naive loop, one eth_getLogs request per `--limit`-block range, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainfolio.devnet import (
    DevnetDeployment,
    encode_call,
    load_artifact,
    mine,
    start_devnet,
)
from chainfolio.fetchers import open_chains, read_portfolio
from chainfolio.fetchers.config import TokenListsConfig
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.discovery import discover_tokens
from chainfolio.fetchers.multicall import BALANCE_OF, Call, encode_aggregate3, with_address
from chainfolio.fetchers.rpc import RpcClient
from chainfolio.fetchers.tokenlists import shipped_tokens, tokens_by_chain
from chainfolio.fetchers.transfers import TRANSFER_TOPIC
from tests.fetchers.servers import rpc_proxy
from tests.fetchers.tokens import deploy_token, fresh_wallet, mint

HELD = 25


def _rpc(deployment: DevnetDeployment, method: str, *params: object) -> object:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = httpx.post(deployment.rpc_url, json=body, timeout=600).json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


async def _naive_list(url: str, tokens: Sequence[str], wallet: str) -> float:
    """One eth_call balanceOf per token, one at a time (what a per-token loop does)."""
    data = encode_call("MintableERC20", "balanceOf", wallet)
    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        for token in tokens:
            call = {"to": token, "data": data}
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [call, "latest"]}
            (await http.post(url, json=body)).raise_for_status()
        return time.perf_counter() - started


async def _node_floor(deployment: DevnetDeployment, tokens: Sequence[str], wallet: str) -> float:
    """The one aggregate3 eth_call of those balances, pre-encoded: the node's own time."""
    calls = [Call(t, with_address(BALANCE_OF, wallet)) for t in tokens]
    call = {"to": deployment.multicall3, "data": "0x" + encode_aggregate3(calls).hex()}
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [call, "latest"]}
    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        (await http.post(deployment.rpc_url, json=body)).raise_for_status()
        return time.perf_counter() - started


async def bench_list(deployment: DevnetDeployment, rounds: int) -> None:
    listed = tokens_by_chain([shipped_tokens()], chain_ids=[1])[1]
    addresses = [t.address for t in listed]
    code = load_artifact("MintableERC20").deployed_bytecode
    wallet = fresh_wallet(1000)
    for token in addresses:  # the list's addresses get ERC-20 code (decimals: an immutable 18)
        _rpc(deployment, "hardhat_setCode", token, code)
    for token in addresses[:HELD]:
        data = encode_call("MintableERC20", "mint", wallet, 10**18 + 7)
        tx = {"from": deployment.deployer, "to": token, "data": data}
        _rpc(deployment, "eth_sendTransaction", tx)
    config = config_from_devnet([deployment]).model_copy(
        update={"token_lists": TokenListsConfig(shipped=True)}
    )
    times: list[float] = []
    floors: list[float] = []
    naive: list[float] = []
    trips: list[int] = []
    async with open_chains(config) as chains:
        reader = chains.reader(1)
        await read_portfolio(chains, [(1, wallet)], with_prices=False)  # cold: decimals learnt
        for round_ in range(rounds):  # alternated: the machine is shared, load drifts
            before = reader.rpc.stats.http_requests
            started = time.perf_counter()
            read = await read_portfolio(chains, [(1, wallet)], with_prices=False)
            times.append(time.perf_counter() - started)
            trips.append(reader.rpc.stats.http_requests - before)
            floors.append(await _node_floor(deployment, addresses, wallet))
            if round_ < 2:
                naive.append(await _naive_list(deployment.rpc_url, addresses, wallet))
    found = {h.contract for h in read.chains[1].holdings[wallet]}
    held = set(addresses[:HELD])
    print(f"list scan: {len(listed)} listed Ethereum tokens, wallet holds {HELD}")
    print(f"  batched read_portfolio: median {_ms(times)}, round trips per read {trips}")
    print(f"  node floor (the one aggregate3 eth_call, pre-encoded): median {_ms(floors)}")
    print(f"  naive one eth_call at a time: median {_ms(naive)}, {len(listed)} round trips")
    ratio = statistics.median(naive) / statistics.median(times)
    print(
        f"  {ratio:.1f}x faster than naive; held found: {held <= found}; "
        f"unheld listed kept: {bool(found & set(addresses[HELD:]))}"
    )


async def bench_discovery(deployment: DevnetDeployment, blocks: int, limit: int) -> None:
    wallet = fresh_wallet(2000)
    start = int(str(_rpc(deployment, "eth_blockNumber")), 16) + 1
    tokens = [
        deploy_token(deployment, "MintableERC20", f"Long tail {i}", f"LT{i}", 18) for i in range(20)
    ]
    step = blocks // len(tokens)
    for token in tokens:
        _rpc(deployment, "hardhat_mine", hex(step - 1))
        mint(deployment, "MintableERC20", token, wallet, 10**18)
    mine(deployment, 1)
    last = int(str(_rpc(deployment, "eth_blockNumber")), 16)
    total = last - start + 1
    print(
        f"discovery: {total:,} blocks, provider limit {limit:,} blocks per eth_getLogs, "
        f"{len(tokens)} tokens to find"
    )
    async with (
        rpc_proxy(deployment.rpc_url) as (url, proxy),
        httpx.AsyncClient(timeout=600) as http,
    ):
        proxy.max_log_range = limit
        for label, max_range in (("told the limit", limit), ("told nothing", total)):
            proxy.reset()
            rpc = RpcClient(
                [url],
                http=http,
                settings=config_from_devnet([deployment]).chains[0].rpc,
                chain="bench",
            )
            started = time.perf_counter()
            scan = await discover_tokens(
                rpc, wallets=[wallet], first_block=start, last_block=last, max_range=max_range
            )
            elapsed = time.perf_counter() - started
            found = {c.contract for c in scan.candidates} >= set(tokens)
            print(
                f"  discover_tokens, {label}: {elapsed:.2f} s, {proxy.http_requests} round trips, "
                f"{scan.log_queries} log queries, {scan.halvings} halvings, all found: {found}"
            )
        proxy.reset()
        started = time.perf_counter()
        seen: set[str] = set()
        topic = "0x" + "00" * 12 + wallet.lower()[2:]
        for first in range(start, last + 1, limit):
            query = {
                "fromBlock": hex(first),
                "toBlock": hex(min(first + limit - 1, last)),
                "topics": [TRANSFER_TOPIC, None, topic],
            }
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]}
            answer = (await http.post(url, json=body)).json()
            seen.update(entry["address"] for entry in answer["result"])
        naive = time.perf_counter() - started
        print(
            f"  naive per-range loop: {naive:.2f} s, {proxy.http_requests} round trips, "
            f"all found: {len(seen) >= len(tokens)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with start_devnet(chain_ids=(1,), wallets=1) as devnet:
        deployment = devnet.chain(1)
        asyncio.run(bench_list(deployment, args.rounds))
        asyncio.run(bench_discovery(deployment, args.blocks, args.limit))


if __name__ == "__main__":
    main()
