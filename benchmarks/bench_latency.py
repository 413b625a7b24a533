"""Block mined → update at the client, on a devnet chain mining a block every second.

`chainfolio serve --with-worker` with the production refresh settings (a full cycle every 30 s,
heads polled every second) follows a few users, each with one wallet and a `/v1/ws`
subscriber. Each sample sends 0.01 ETH from an untracked wallet to one tracked wallet; the
moment its block is mined is when the benchmark first sees the receipt (polled every 20 ms
against the node itself); the latency is from then to the subscriber's update.

Two runs in the same process of the benchmark, on the same chain:
- ours: each new head is looked into and the wallets it touched re-read at once
  (`CHAINFOLIO_REFRESH_TOUCHED=true`, the default);
- baseline: the same worker without it (`false`): a new head only brings the next full cycle
  forward, no sooner than `CHAINFOLIO_REFRESH_MIN_INTERVAL_S` (10 s) after the last one.

    python benchmarks/bench_latency.py [--samples 20] [--users 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from eth_account import Account
from processes import create_database, drop_database, free_port, running

from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.devnet import DevnetDeployment, start_devnet
from chainfolio.fetchers.devnet_config import config_from_devnet

SECRET = "bench-secret-that-is-long-enough-for-hs256!"
BLOCK_TIME_MS = 1000
VALUE = 10**16  # 0.01 ETH


async def rpc(http: httpx.AsyncClient, url: str, method: str, *params: Any) -> Any:
    answer = (
        await http.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )
    ).json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


async def mined_at(http: httpx.AsyncClient, url: str, tx_hash: str) -> float:
    """When the benchmark first sees the transaction's receipt (polled every 20 ms)."""
    while True:
        if await rpc(http, url, "eth_getTransactionReceipt", tx_hash) is not None:
            return time.perf_counter()
        await asyncio.sleep(0.02)


async def send(http: httpx.AsyncClient, chain: DevnetDeployment, sender: str, to: str) -> str:
    nonce = int(await rpc(http, chain.rpc_url, "eth_getTransactionCount", sender, "pending"), 16)
    gas_price = int(await rpc(http, chain.rpc_url, "eth_gasPrice"), 16)
    tx = {
        "to": to,
        "value": VALUE,
        "gas": 21_000,
        "gasPrice": gas_price * 2,
        "nonce": nonce,
        "chainId": chain.chain_id,
    }
    signed = Account.sign_transaction(tx, chain.private_keys[sender])
    raw = "0x" + signed.raw_transaction.hex().removeprefix("0x")
    return str(await rpc(http, chain.rpc_url, "eth_sendRawTransaction", raw))


async def measure(base: str, chain: DevnetDeployment, users: int, samples: int) -> list[float]:
    """Latencies (s) of `samples` transfers, round-robin over `users` tracked wallets."""
    settings = Settings(jwt_secret=SECRET)  # type: ignore[arg-type]
    sender = chain.wallets[-1]
    wallets = chain.wallets[:users]
    sockets = []
    async with httpx.AsyncClient(timeout=30) as http:
        for wallet in wallets:
            subject = f"latency-{uuid.uuid4().hex[:8]}"
            token = issue_token(settings, subject=subject)
            ws = await websockets.connect(f"{base.replace('http', 'ws')}/v1/ws?token={token}")
            await ws.send(
                orjson.dumps(
                    {"type": "subscribe", "channel": "portfolio", "userId": subject}
                ).decode()
            )
            assert orjson.loads(await ws.recv())["type"] == "subscribed"
            added = await http.post(
                f"{base}/v1/wallets",
                json={"chainId": chain.chain_id, "address": wallet},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert added.status_code == 201, added.text
            await asyncio.wait_for(ws.recv(), 60)  # its first valuation
            sockets.append(ws)
        await asyncio.sleep(2)  # let any cycle the additions started finish
        for ws in sockets:  # drop what those cycles pushed
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.3)
                except TimeoutError:
                    break
        latencies = []
        for i in range(-1, samples):  # -1: a warm-up, not counted (the worker's first new head)
            ws, wallet = sockets[i % users], wallets[i % users]
            tx_hash = await send(http, chain, sender, wallet)
            mined = asyncio.create_task(mined_at(http, chain.rpc_url, tx_hash))
            while True:  # the update whose total moved (a full cycle may push other changes)
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                received = time.perf_counter()
                if message["type"] == "portfolio_update" and message["data"]["change"] > 0:
                    break
            latency = received - await asyncio.wait_for(mined, 30)
            print(f"  sample {i + 1}: {latency:.2f} s", flush=True)
            if i >= 0:
                latencies.append(latency)
            await asyncio.sleep(0.5 + (i % 3) * 0.37)  # spread the sends over the block time
        for ws in sockets:
            await ws.close()
    return latencies


def report(name: str, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{name}: n={len(ordered)} median {statistics.median(ordered):.2f} s, "
        f"p95 {p95:.2f} s, max {ordered[-1]:.2f} s, min {ordered[0]:.2f} s"
    )
    return p95


def run(
    chain: DevnetDeployment,
    chains_file: Path,
    database_url: str,
    touched: bool,
    args: argparse.Namespace,
) -> list[float]:
    name, db_url = asyncio.run(create_database(database_url, "chainfolio_bench_latency"))
    try:
        port = free_port()
        env = {
            "CHAINFOLIO_DATABASE_URL": db_url,
            "CHAINFOLIO_JWT_SECRET": SECRET,
            "CHAINFOLIO_CHAINS_FILE": str(chains_file),
            "CHAINFOLIO_BACKFILL_HOURS": "0",
            "CHAINFOLIO_REFRESH_TOUCHED": str(touched).lower(),
            "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "0",
            "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0",
        }
        argv = [sys.executable, "-m", "chainfolio", "serve", "--with-worker", "--port", str(port)]
        base = f"http://127.0.0.1:{port}"
        with running(argv, env, f"{base}/healthz"):
            return asyncio.run(measure(base, chain, args.users, args.samples))
    finally:
        asyncio.run(drop_database(database_url, name))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--baseline-samples", type=int, default=8)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    with (
        start_devnet(chain_ids=(1,), wallets=args.users + 1) as devnet,
        tempfile.TemporaryDirectory() as tmp,
    ):
        chain = devnet.chain(1)
        with httpx.Client() as http:  # a block every second, transactions wait for it
            for method, params in (
                ("evm_setAutomine", [False]),
                ("evm_setIntervalMining", [BLOCK_TIME_MS]),
            ):
                http.post(
                    chain.rpc_url,
                    json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                ).raise_for_status()
        chains_file = Path(tmp) / "chains.json"
        chains_file.write_bytes(orjson.dumps(config_from_devnet([chain]).model_dump(mode="json")))
        print(
            f"block time {BLOCK_TIME_MS} ms, {args.users} users, "
            "refresh interval 30 s, heads polled every 1 s"
        )
        ours = run(chain, chains_file, args.database_url, True, args)
        baseline_args = argparse.Namespace(**{**vars(args), "samples": args.baseline_samples})
        baseline = run(chain, chains_file, args.database_url, False, baseline_args)
    ours_p95 = report("targeted re-read of touched wallets", ours)
    base_p95 = report("baseline: next full cycle (min interval 10 s)", baseline)
    verdict = "met" if ours_p95 <= 3 else "not met"
    print(f"p95 ratio (baseline / ours): {base_p95 / ours_p95:.1f}x; goal p95 <= 3 s: {verdict}")


if __name__ == "__main__":
    main()
