"""Pricing N discovered tokens by address on a local Hardhat node with the real Uniswap contracts.

Run: python benchmarks/bench_pricing.py [--tokens 50] [--rounds 3]

N fresh ERC-20s nobody configured: half with a V3 pool against WETH (liquidity either side of
the price), half with a V2 pair against USDC, all deep enough for the liquidity floor. Measured:
`chains.prices.prices()` of their N address keys `"1:<address>"`, through the composite order
(Chainlink, then Uniswap: factories over 4 fee tiers x the quote tokens, then the pools' state),
round trips counted by the RPC client. Cold: a fresh ChainSet (no pool known); warm: the same
ChainSet again (pools kept). Baseline in the same run: a naive per-token loop, one `eth_call`
at a time — `getPool` per quote token and fee tier, `getPair` per quote token, `decimals`, then
each found pool's `slot0` + `observe` + quote balance (V3) or `getReserves` (V2) and the quote
feeds' `latestRoundData` — the calls the batched source makes, one round trip each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainfolio.devnet import DevnetDeployment, start_devnet
from chainfolio.devnet.uniswap import (
    UniswapDeployment,
    create_v2_pair,
    deploy_uniswap,
)
from chainfolio.fetchers import ChainsConfig, open_chains
from chainfolio.fetchers.config import TokenListsConfig, UniswapV2Config, UniswapV3Config
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    DECIMALS,
    GET_RESERVES,
    LATEST_ROUND_DATA,
    with_address,
    with_addresses,
)
from chainfolio.fetchers.positions import SLOT0
from chainfolio.fetchers.prices import address_key
from chainfolio.fetchers.prices.uniswap import GET_PAIR, GET_POOL, OBSERVE
from tests.fetchers.tokens import deploy_token
from tests.fetchers.uniswap import deep_pool

UNIT = 10**18
USDC = 10**6
FEE = 3000


def _pools(deployment: DevnetDeployment, uniswap: UniswapDeployment, n: int) -> list[str]:
    """N tokens, the first half in a V3 pool at 2 USD, the rest in a V2 pair at 4 USDC."""
    weth = deployment.tokens["WETH"].address
    usdc = deployment.tokens["USDC"].address
    tokens = []
    for i in range(n):
        token = deploy_token(deployment, "MintableERC20", f"Bench {i}", f"BP{i}", 18)
        if i < n // 2:
            deep_pool(
                deployment, uniswap, token, weth, Fraction(2, 3000), (300_000 * UNIT, 200 * UNIT)
            )
        else:
            create_v2_pair(
                deployment,
                uniswap,
                token_a=token,
                token_b=usdc,
                amount_a=50_000 * UNIT,
                amount_b=200_000 * USDC,
            )
        tokens.append(token)
    return tokens


def _config(deployment: DevnetDeployment, uniswap: UniswapDeployment) -> ChainsConfig:
    base = config_from_devnet([deployment]).model_copy(
        update={"token_lists": TokenListsConfig(shipped=False)}
    )
    v3 = UniswapV3Config(
        factory=uniswap.v3_factory, pool_init_code_hash=uniswap.pool_init_code_hash
    )
    chain = base.chains[0].model_copy(
        update={"uniswap_v3": v3, "uniswap_v2": UniswapV2Config(factory=uniswap.v2_factory)}
    )
    return base.model_copy(update={"chains": [chain]})


async def _batched(config: ChainsConfig, keys: list[str], rounds: int) -> None:
    cold: list[float] = []
    cold_trips: list[int] = []
    warm: list[float] = []
    warm_trips: list[int] = []
    priced = 0
    for _ in range(rounds):
        async with open_chains(config) as chains:
            rpc = chains.reader(1).rpc
            for times, trips in ((cold, cold_trips), (warm, warm_trips)):
                before = rpc.stats.http_requests
                started = time.perf_counter()
                prices = await chains.prices.prices(set(keys))
                times.append(time.perf_counter() - started)
                trips.append(rpc.stats.http_requests - before)
                priced = len(prices)
    print(f"pricing {len(keys)} discovered tokens by address ({priced} priced)")
    print(f"  batched, cold (pools found): median {_ms(cold)}, round trips {cold_trips}")
    print(f"  batched, warm (pools kept): median {_ms(warm)}, round trips {warm_trips}")
    _result["cold"] = statistics.median(cold)
    _result["warm"] = statistics.median(warm)


_result: dict[str, float] = {}


def _ms(values: list[float]) -> str:
    each = ", ".join(f"{v * 1000:.0f}" for v in values)
    return f"{statistics.median(values) * 1000:.0f} ms (each: {each})"


async def _naive(config: ChainsConfig, tokens: list[str]) -> tuple[float, int]:
    """The same reads, one eth_call per round trip, per token and per fee tier."""
    chain = config.chains[0]
    v3, v2 = chain.uniswap_v3, chain.uniswap_v2
    assert v3 is not None
    assert v2 is not None
    quotes = [chain.token(q) for q in v3.quote_tokens if _has(chain, q)]
    trips = 0
    async with httpx.AsyncClient(timeout=60) as http:

        async def call(to: str, data: bytes) -> bytes:
            nonlocal trips
            trips += 1
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_call",
                "params": [{"to": to, "data": "0x" + data.hex()}, "latest"],
            }
            answer = (await http.post(chain.rpc_urls[0], json=body)).json()
            return bytes.fromhex(str(answer.get("result", "0x"))[2:])

        started = time.perf_counter()
        for quote in quotes:
            feed = chain.price_feeds.get(quote.price_key)
            if feed is not None:
                await call(feed.aggregator, LATEST_ROUND_DATA)
        for token in tokens:
            await call(token, DECIMALS)
            for quote in quotes:
                for fee in v3.fee_tiers:
                    data = with_addresses(GET_POOL, token, quote.address) + fee.to_bytes(32, "big")
                    pool = await call(v3.factory, data)
                    if int.from_bytes(pool or b"\0"):
                        address = "0x" + pool[12:].hex()
                        await call(address, SLOT0)
                        observe = (
                            (32).to_bytes(32, "big")
                            + (2).to_bytes(32, "big")
                            + v3.twap_seconds.to_bytes(32, "big")
                            + bytes(32)
                        )
                        await call(address, OBSERVE + observe)
                        await call(quote.address, with_address(BALANCE_OF, address))
                pair = await call(v2.factory, with_addresses(GET_PAIR, token, quote.address))
                if int.from_bytes(pair or b"\0"):
                    await call("0x" + pair[12:].hex(), GET_RESERVES)
        return time.perf_counter() - started, trips


def _has(chain: object, ref: str) -> bool:
    try:
        chain.token(ref)  # type: ignore[attr-defined]
    except ValueError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with start_devnet(chain_ids=(1,), wallets=1) as devnet:
        deployment = devnet.chain(1)
        uniswap = deploy_uniswap(deployment)
        started = time.perf_counter()
        tokens = _pools(deployment, uniswap, args.tokens)
        print(f"set-up: {args.tokens} tokens with pools in {time.perf_counter() - started:.1f} s")
        config = _config(deployment, uniswap)
        keys = [address_key(1, t) for t in tokens]
        asyncio.run(_batched(config, keys, args.rounds))
        naive = [asyncio.run(_naive(config, tokens)) for _ in range(2)]
        naive_s = statistics.median(n[0] for n in naive)
        print(
            f"  naive per-token per-fee-tier loop: median {naive_s * 1000:.0f} ms, "
            f"{naive[0][1]} round trips"
        )
        print(
            f"  cold {naive_s / _result['cold']:.1f}x faster than naive, "
            f"warm {naive_s / _result['warm']:.1f}x"
        )


if __name__ == "__main__":
    main()
