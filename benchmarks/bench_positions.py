"""200 Uniswap V3 positions across 20 wallets, read by the chain reader vs one call at a time.

Run: python benchmarks/bench_positions.py [--wallets 20] [--per-wallet 10] [--repeats 5]

One Hardhat node with the real Uniswap V3 factory and position manager (npm artifacts); two
WETH/USDC pools (0.05 % and 0.3 %), positions in and out of range, a few swaps for fees.
Measured in the same run:
* reader: `EvmChainReader.read(wallets)` — the block-pinned Multicall3 read of balances and
  positions. Round trips are HTTP requests counted by the RPC client (`eth_blockNumber` plus
  the Multicall3 rounds); "cold" is the first read of a fresh process, the figure is the warm
  median.
* baseline: the same answers with one `eth_call` per view (balanceOf, tokenOfOwnerByIndex,
  positions, slot0, feeGrowthGlobal0/1, ticks x 2) one after another, as a per-position
  resolver would do. Amounts are compared between the two.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainfolio.core.domain import Category
from chainfolio.devnet import DevnetDeployment, start_devnet
from chainfolio.devnet.uniswap import (
    TICK_SPACING,
    UniswapDeployment,
    create_v3_pool,
    deploy_uniswap,
    fund_and_approve,
    mint_v3_position,
    nearest_tick,
    raw_price,
    swap_v3,
)
from chainfolio.fetchers import ChainsConfig, config_from_devnet, open_chains
from chainfolio.fetchers.config import UniswapV3Config
from chainfolio.fetchers.multicall import BALANCE_OF, CallResult, with_address, with_uint
from chainfolio.fetchers.positions import (
    FEE_GROWTH_GLOBAL0,
    FEE_GROWTH_GLOBAL1,
    POSITIONS,
    SLOT0,
    TICKS,
    TOKEN_OF_OWNER_BY_INDEX,
    V3Position,
    signed,
    v3_pool_address,
    value_position,
    with_int,
)

CHAIN_ID = 31337
ETH_USDC = Fraction(3000 * 10**6, 10**18)


def setup(d: DevnetDeployment, wallets: int, per_wallet: int) -> UniswapDeployment:
    """Deploy Uniswap, two pools, `per_wallet` positions for each of the first wallets."""
    uni = deploy_uniswap(d)
    weth, usdc = d.tokens["WETH"].address, d.tokens["USDC"].address
    for fee in (500, 3000):
        create_v3_pool(d, uni, token_a=weth, token_b=usdc, fee=fee, b_per_a=ETH_USDC)
    for i, owner in enumerate(d.wallets[:wallets]):
        for token in (weth, usdc):
            amount = 10**30
            fund_and_approve(
                d, owner=owner, token=token, amount=amount, spender=uni.position_manager
            )
        for j in range(per_wallet):
            fee = (500, 3000)[j % 2]
            spacing = TICK_SPACING[fee]
            tick = nearest_tick(raw_price(weth, usdc, ETH_USDC), spacing)
            offset = (j - per_wallet // 2) * 3 * spacing + (i % 3) * spacing
            mint_v3_position(
                d,
                uni,
                owner=owner,
                token_a=weth,
                token_b=usdc,
                fee=fee,
                tick_lower=tick + offset - 10 * spacing,
                tick_upper=tick + offset + 10 * spacing,
                amount_a=10**18,
                amount_b=3000 * 10**6,
                funded=True,
            )
    for fee in (500, 3000):
        swap_v3(d, uni, token_in=weth, token_out=usdc, fee=fee, amount_in=2 * 10**18)
        swap_v3(d, uni, token_in=usdc, token_out=weth, fee=fee, amount_in=5000 * 10**6)
    return uni


def bench_config(d: DevnetDeployment, uni: UniswapDeployment) -> ChainsConfig:
    base = config_from_devnet([d], read_decimals=False)
    chain = base.chains[0]
    tokens = [t for t in chain.tokens if t.symbol in ("WETH", "USDC")]
    v3 = UniswapV3Config(factory=uni.v3_factory, position_manager=uni.position_manager)
    update: dict[str, Any] = {"tokens": tokens, "vaults": [], "lending": [], "uniswap_v3": v3}
    return base.model_copy(update={"chains": [chain.model_copy(update=update)]})


def _amounts(holdings: dict[str, list[Any]]) -> dict[tuple[str, str, Category], int | None]:
    return {
        (h.extra["token_id"], h.extra["leg"], h.category): h.amount
        for hs in holdings.values()
        for h in hs
        if "token_id" in h.extra
    }


async def reader(config: ChainsConfig, wallets: list[str], repeats: int) -> dict[str, Any]:
    async with open_chains(config) as chains:
        r = chains.readers[CHAIN_ID]
        stats = r.rpc.stats
        times, trips = [], []
        result = None
        for _ in range(repeats + 1):
            before = stats.http_requests
            started = time.perf_counter()
            result = await r.read(wallets)
            times.append(time.perf_counter() - started)
            trips.append(stats.http_requests - before)
        assert result is not None
        return {
            "cold_s": times[0],
            "cold_trips": trips[0],
            "warm_s": statistics.median(times[1:]),
            "warm_trips": trips[-1],
            "amounts": _amounts(result.holdings),
        }


async def naive(d: DevnetDeployment, uni: UniswapDeployment, wallets: list[str]) -> dict[str, Any]:
    """One eth_call per view, in sequence, at one pinned block."""
    calls = 0
    async with httpx.AsyncClient(timeout=60) as http:

        async def call(to: str, data: bytes, block: str) -> CallResult:
            nonlocal calls
            calls += 1
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_call",
                "params": [{"to": to, "data": "0x" + data.hex()}, block],
            }
            answer = (await http.post(d.rpc_url, json=body)).json()
            return CallResult(True, bytes.fromhex(answer["result"][2:]))

        started = time.perf_counter()
        block = (
            await http.post(
                d.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
            )
        ).json()["result"]
        amounts: dict[tuple[str, str, Category], int | None] = {}
        manager = uni.position_manager
        for wallet in wallets:
            raw = await call(manager, with_address(BALANCE_OF, wallet), block)
            count = int.from_bytes(raw.data[:32], "big")
            for index in range(count):
                data = with_address(TOKEN_OF_OWNER_BY_INDEX, wallet) + index.to_bytes(32, "big")
                token_id = int.from_bytes((await call(manager, data, block)).data[:32], "big")
                p = V3Position.decode(
                    token_id, await call(manager, with_uint(POSITIONS, token_id), block)
                )
                pool = v3_pool_address(
                    uni.v3_factory, p.token0, p.token1, p.fee, uni.pool_init_code_hash
                )
                slot0 = await call(pool, SLOT0, block)
                g0 = await call(pool, FEE_GROWTH_GLOBAL0, block)
                g1 = await call(pool, FEE_GROWTH_GLOBAL1, block)
                lower = await call(pool, with_int(TICKS, p.tick_lower), block)
                upper = await call(pool, with_int(TICKS, p.tick_upper), block)

                def word(r: CallResult, i: int) -> int:
                    return int.from_bytes(r.data[32 * i : 32 * i + 32], "big")

                value = value_position(
                    p,
                    pool=pool,
                    sqrt_price=word(slot0, 0),
                    tick=signed(word(slot0, 1)),
                    global0=word(g0, 0),
                    global1=word(g1, 0),
                    lower=(word(lower, 2), word(lower, 3)),
                    upper=(word(upper, 2), word(upper, 3)),
                )
                tid = str(token_id)
                amounts[(tid, "0", Category.DEPOSIT)] = value.amount0
                amounts[(tid, "1", Category.DEPOSIT)] = value.amount1
                amounts[(tid, "0", Category.REWARD)] = value.fees0
                amounts[(tid, "1", Category.REWARD)] = value.fees1
        return {"seconds": time.perf_counter() - started, "trips": calls + 1, "amounts": amounts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=20)
    parser.add_argument("--per-wallet", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with start_devnet(chain_ids=(CHAIN_ID,), wallets=args.wallets) as devnet:
        d = devnet.chain(CHAIN_ID)
        started = time.perf_counter()
        uni = setup(d, args.wallets, args.per_wallet)
        count = args.wallets * args.per_wallet
        print(f"setup: {count} positions in {time.perf_counter() - started:.1f} s")
        wallets = d.wallets[: args.wallets]
        fast = asyncio.run(reader(bench_config(d, uni), wallets, args.repeats))
        slow = asyncio.run(naive(d, uni, wallets))
        positions = len({k[0] for k in fast["amounts"]})
        assert fast["amounts"] == slow["amounts"], "reader and per-call baseline disagree"
        print(f"positions read: {positions} across {len(wallets)} wallets (amounts equal)")
        print(
            f"reader: warm median {fast['warm_s'] * 1000:.1f} ms, {fast['warm_trips']} HTTP "
            f"requests (eth_blockNumber + Multicall3 rounds); cold {fast['cold_s'] * 1000:.1f} ms, "
            f"{fast['cold_trips']} requests"
        )
        print(
            f"baseline, one eth_call per view: {slow['seconds'] * 1000:.1f} ms, "
            f"{slow['trips']} requests"
        )
        print(f"ratio: {slow['seconds'] / fast['warm_s']:.1f}x faster")


if __name__ == "__main__":
    main()
