"""Subscriptions at the seed's scale: 10,000 live `/v1/ws` clients fed through Redis.

    python benchmarks/bench_subscriptions.py [--clients 10000] [--rounds 3]

Starts `chainfolio serve` (Redis bus, fresh database) and, as the same-run baseline, a bare
Starlette websocket server doing only Redis PSUBSCRIBE → socket (`bare_ws.py`). For each, it
opens N websocket clients (one user each, a JWT per user on ours), subscribes them, then
publishes one portfolio update per user on Redis and measures the time until every client has
its update (fan-out time, per-client latency percentiles), plus the server's memory per
connection and the CPU time the server and this process spent in the fan-out (to tell whether
the server or the client limits). Clients and publisher share one process, so both servers
face the same client cost.

Then memory at the caps (issue 21): `--graphql-users` users each open the most GraphQL
websockets (graphql-transport-ws) the server allows one user, each with the most subscriptions
it allows one socket; the server's RSS before, with the sockets open and with the
subscriptions running gives the bytes per socket and per subscription, and the bound one user
can hold: sockets per user x (a socket + subscriptions per socket x a subscription).
`--skip-fanout` runs only this part.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
import redis.asyncio as redis
import websockets
from processes import create_database, drop_database, free_port, running

from chainfolio.api.auth import issue_token
from chainfolio.bus.broadcast import portfolio_channel, stamp
from chainfolio.core.settings import Settings
from chainfolio.resolvers.updates import PortfolioUpdate
from chainfolio.storage.database import to_asyncpg_dsn

SECRET = "bench-subscriptions-secret-0123456789"
HERE = Path(__file__).parent


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Round:
    connect_s: float
    fanout_s: float
    latencies: list[float]
    rss_idle_kib: int
    rss_connected_kib: int
    server_cpu_s: float  # CPU time each process spent during the fan-out
    client_cpu_s: float


def resp_command(*parts: bytes) -> bytes:
    """One Redis command in RESP."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


async def open_redis(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to Redis (authenticated if the URL has a password)."""
    parsed = urlsplit(url)
    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port or 6379)
    if parsed.password:
        user = (parsed.username or "default").encode()
        writer.write(resp_command(b"AUTH", user, parsed.password.encode()))
        if not (await reader.readline()).startswith(b"+OK"):
            raise RuntimeError("Redis AUTH failed")
    return reader, writer


async def wait_subscribed(client: redis.Redis, n: int) -> None:
    """Until Redis counts the server's subscriptions (the ack can precede SUBSCRIBE)."""
    while True:
        channels = await client.pubsub_channels("chainfolio:portfolio:*")
        patterns = await client.pubsub_numpat()
        if len(channels) >= n or patterns >= 1:
            return
        await asyncio.sleep(0.05)


async def run_round(
    *,
    users: list[str],
    url_of: Callable[[str], str],
    subscribe_of: Callable[[str], str | None],
    redis_url: str,
    pid: int,
    needs_all_channels: bool,
    channels_of: Callable[[list[str]], Awaitable[dict[str, str]]],
) -> Round:
    rss_idle = rss_kib(pid)
    received: dict[str, float] = {}
    all_in = asyncio.Event()
    ready = asyncio.Semaphore(64)  # handshakes in flight
    subscribed = 0
    sockets: list[websockets.ClientConnection] = []

    async def client(user: str) -> None:
        nonlocal subscribed
        async with ready:
            ws = await websockets.connect(
                url_of(user), max_size=2**20, compression=None, open_timeout=60, ping_interval=None
            )
            message = subscribe_of(user)
            if message is not None:
                await ws.send(message)
            await ws.recv()  # the subscribed ack
            subscribed += 1
        sockets.append(ws)
        await ws.recv()  # the update
        received[user] = time.perf_counter()
        if len(received) == len(users):
            all_in.set()

    started = time.perf_counter()
    tasks = [asyncio.create_task(client(u)) for u in users]
    while subscribed < len(users):
        await asyncio.sleep(0.05)
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    connect_s = time.perf_counter() - started
    channels = await channels_of(users)
    publisher = redis.from_url(redis_url)
    await wait_subscribed(publisher, len(users) if needs_all_channels else 1)
    rss_connected = rss_kib(pid)
    now = datetime.now(UTC)
    # as the worker publishes them (Bus.publish): in the envelope with the publication time,
    # which ours strips (observing the bus lag) and bare_ws forwards as it is
    payloads = [
        stamp(
            PortfolioUpdate(
                u, Decimal("12345.67"), Decimal("12.5"), Decimal("0.1013"), now
            ).to_json()
        )
        for u in users
    ]
    # The PUBLISH commands are encoded before the clock starts and written in one go on a raw
    # connection: the fan-out time is the servers', not redis-py's pipeline packing (about
    # 50 µs per command in this process, which both servers used to wait for).
    commands = b"".join(
        resp_command(b"PUBLISH", channels[user].encode(), payload.encode())
        for user, payload in zip(users, payloads, strict=True)
    )
    reader, writer = await open_redis(redis_url)
    cpu0 = cpu_s(pid), cpu_s(os.getpid())
    t0 = time.perf_counter()
    writer.write(commands)
    delivered = 0
    for _ in users:  # one ":<receivers>" reply per PUBLISH
        delivered += int((await reader.readline())[1:])
    writer.close()
    if delivered < len(users):
        print(f"  warning: Redis delivered {delivered} of {len(users)} publishes")
    try:
        await asyncio.wait_for(all_in.wait(), timeout=60)
    except TimeoutError:
        missing = len(users) - len(received)
        raise RuntimeError(f"{missing} of {len(users)} clients got no update in 60 s") from None
    fanout_s = time.perf_counter() - t0
    server_cpu, client_cpu = cpu_s(pid) - cpu0[0], cpu_s(os.getpid()) - cpu0[1]
    await asyncio.gather(*tasks)
    await asyncio.gather(*(ws.close() for ws in sockets))
    await publisher.aclose()
    return Round(
        connect_s,
        fanout_s,
        sorted(t - t0 for t in received.values()),
        rss_idle,
        rss_connected,
        server_cpu,
        client_cpu,
    )


async def same_channels(users: list[str]) -> dict[str, str]:
    """bare_ws's channels: the user's name."""
    return {user: portfolio_channel(user) for user in users}


def stored_channels(database_url: str) -> Callable[[list[str]], Awaitable[dict[str, str]]]:
    """Ours: the channel of each user's stored id (users are keyed by their token's issuer and
    subject and have ids of their own, made at their first request)."""

    async def channels(users: list[str]) -> dict[str, str]:
        conn = await asyncpg.connect(to_asyncpg_dsn(database_url))
        try:
            rows = await conn.fetch("SELECT subject, id FROM users")
        finally:
            await conn.close()
        ids = {row["subject"]: row["id"] for row in rows}
        return {user: portfolio_channel(ids[user]) for user in users}

    return channels


def caps() -> tuple[int, int]:
    """(sockets per user, subscriptions per socket) the server applies (its defaults)."""
    settings = Settings()
    return settings.ws_max_sockets_per_user, settings.ws_max_subscriptions_per_socket


async def subscribers(base: str) -> float:
    """The server's `chainfolio_bus_subscribers` gauge."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    for line in text.splitlines():
        if line.startswith("chainfolio_bus_subscribers"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def memory_at_caps(*, base: str, pid: int, tokens: list[str]) -> tuple[float, float, int]:
    """(KiB per socket, KiB per subscription, subscriptions) with each user at both caps."""
    settings = Settings()
    per_user, per_socket = (
        settings.ws_max_sockets_per_user,
        settings.ws_max_subscriptions_per_socket,
    )
    url = base.replace("http", "ws") + "/graphql"
    before_subs = await subscribers(base)
    rss_idle = rss_kib(pid)
    sockets: list[websockets.ClientConnection] = []
    for token in tokens:
        for _ in range(per_user):
            ws = await websockets.connect(
                url,
                subprotocols=["graphql-transport-ws"],
                ping_interval=None,  # type: ignore[list-item]
            )
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            await ws.send(orjson.dumps(init).decode())
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"
            sockets.append(ws)
    await asyncio.sleep(1)
    rss_sockets = rss_kib(pid)
    query = "subscription { portfolioUpdates { totalValue } }"
    for ws in sockets:
        for i in range(per_socket):
            message = {"id": str(i), "type": "subscribe", "payload": {"query": query}}
            await ws.send(orjson.dumps(message).decode())
    wanted = before_subs + len(sockets) * per_socket
    for _ in range(600):
        if await subscribers(base) >= wanted:
            break
        await asyncio.sleep(0.2)
    else:
        raise RuntimeError(f"the server runs {await subscribers(base)} of {wanted} subscriptions")
    await asyncio.sleep(1)
    rss_subscribed = rss_kib(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    count = len(sockets) * per_socket
    return (rss_sockets - rss_idle) / len(sockets), (rss_subscribed - rss_sockets) / count, count


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def report(name: str, rounds: list[Round], n: int) -> float:
    best = min(rounds, key=lambda r: r.fanout_s)
    lat = best.latencies
    # memory per connection from the first round: later rounds start from a warmed heap
    first = rounds[0]
    per_conn = (first.rss_connected_kib - first.rss_idle_kib) / n
    print(
        f"{name:<24} connect {statistics.median(r.connect_s for r in rounds):6.2f} s   "
        f"fan-out {statistics.median(r.fanout_s for r in rounds):6.3f} s   "
        f"p50 {pct(lat, 0.5) * 1000:6.0f} ms  p95 {pct(lat, 0.95) * 1000:6.0f} ms  "
        f"p99 {pct(lat, 0.99) * 1000:6.0f} ms  "
        f"max {lat[-1] * 1000:6.0f} ms   RSS {first.rss_connected_kib / 1024:5.0f} MiB "
        f"(+{per_conn:4.1f} KiB/conn)   CPU in fan-out: server "
        f"{statistics.median(r.server_cpu_s for r in rounds):.2f} s, client "
        f"{statistics.median(r.client_cpu_s for r in rounds):.2f} s"
    )
    for i, r in enumerate(rounds, 1):
        print(
            f"  round {i}: fan-out {r.fanout_s:.3f} s, p99 {pct(r.latencies, 0.99) * 1000:.0f} ms,"
            f" CPU server {r.server_cpu_s:.2f} s / client {r.client_cpu_s:.2f} s"
        )
    return statistics.median(r.fanout_s for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CHAINFOLIO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--graphql-users", type=int, default=20)
    parser.add_argument("--skip-fanout", action="store_true")
    args = parser.parse_args()
    n = args.clients
    users = [str(uuid.uuid4()) for _ in range(n)]
    settings = Settings(jwt_secret=SECRET)
    tokens = {u: issue_token(settings, subject=u) for u in users}
    print(f"clients: {n}, rounds: {args.rounds}, cores: {os.cpu_count()}")

    name, db_url = asyncio.run(create_database(args.database_url, "chainfolio_bench_subs"))
    try:
        port = free_port()
        env = {
            "CHAINFOLIO_DATABASE_URL": db_url,
            "CHAINFOLIO_REDIS_URL": args.redis_url,
            "CHAINFOLIO_JWT_SECRET": SECRET,
            "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "0",
            "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0",
        }
        argv = [sys.executable, "-m", "chainfolio", "serve", "--port", str(port)]
        with running(argv, env, f"http://127.0.0.1:{port}/healthz") as pid:
            caps = asyncio.run(
                memory_at_caps(
                    base=f"http://127.0.0.1:{port}",
                    pid=pid,
                    # users of their own: the fan-out's users open a socket each right after
                    tokens=[
                        issue_token(settings, subject=str(uuid.uuid4()))
                        for _ in range(args.graphql_users)
                    ],
                )
            )
            if args.skip_fanout:
                report_caps(*caps)
                return
            ours = [
                asyncio.run(
                    run_round(
                        users=users,
                        url_of=lambda u: f"ws://127.0.0.1:{port}/v1/ws?token={tokens[u]}",
                        subscribe_of=lambda u: (
                            f'{{"type":"subscribe","channel":"portfolio","userId":"{u}"}}'
                        ),
                        redis_url=args.redis_url,
                        pid=pid,
                        needs_all_channels=True,
                        channels_of=stored_channels(db_url),
                    )
                )
                for _ in range(args.rounds)
            ]
        bare_port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "bare_ws:app", "--port", str(bare_port)]
        argv += ["--log-level", "warning", "--ws-per-message-deflate", "false"]
        bare_env = {"BARE_REDIS_URL": args.redis_url}
        with running(argv, bare_env, f"http://127.0.0.1:{bare_port}/", cwd=HERE) as pid:
            bare = [
                asyncio.run(
                    run_round(
                        users=users,
                        url_of=lambda u: f"ws://127.0.0.1:{bare_port}/ws?user={u}",
                        subscribe_of=lambda _u: None,
                        redis_url=args.redis_url,
                        pid=pid,
                        needs_all_channels=False,
                        channels_of=same_channels,
                    )
                )
                for _ in range(args.rounds)
            ]
    finally:
        asyncio.run(drop_database(args.database_url, name))
    ours_s = report("chainfolio /v1/ws", ours, n)
    bare_s = report("bare Starlette+Redis", bare, n)
    print(f"fan-out time ratio (ours / bare): {ours_s / bare_s:.2f}x")
    report_caps(*caps)


def report_caps(socket_kib: float, subscription_kib: float, count: int) -> None:
    """Memory per GraphQL socket and subscription, and the bound per user at the caps."""
    settings = Settings()
    per_user, per_socket = (
        settings.ws_max_sockets_per_user,
        settings.ws_max_subscriptions_per_socket,
    )
    bound = per_user * (socket_kib + per_socket * subscription_kib)
    print(
        f"GraphQL websockets at the caps ({count} subscriptions): {socket_kib:.1f} KiB per "
        f"socket, {subscription_kib:.1f} KiB per subscription; one user at the caps "
        f"({per_user} sockets x {per_socket} subscriptions): {bound / 1024:.2f} MiB"
    )


if __name__ == "__main__":
    main()
