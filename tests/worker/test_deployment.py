"""The multi-process deployment, without Docker: 2 `chainfolio serve` + 2 `chainfolio worker`
processes on the session database and the private Redis.

Several users track devnet wallets; each has a `/v1/ws` subscriber, on alternating API
processes. An ETH price move on the devnet changes every portfolio: every subscriber must get
an update whose total equals what `/v1/portfolio` answers, and no second one.

"Each wallet refreshed exactly once per cycle by exactly one worker" is observed in the
database itself: a test-only trigger on `portfolio_assets` records every row a refresh writes,
with its transaction id (one worker cycle writes all its holdings in one transaction) and the
chain name the writing process was configured with (each worker gets its own name for chain 1,
so every write says which process made it, over TCP or a unix socket alike; a holding whose
read failed — the devnet's reverting token — only has its stale flag updated, keeping the name
of whoever wrote it first, so only rows actually read name the writer). The workers'
shard leases are told apart by start order: the first worker runs alone until it holds every
shard, so the only lease session then is its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.devnet import Devnet, set_price
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.storage.accounts import user_id_for
from chainfolio.worker.leases import _SHARD_LOCK_BASE, SHARDS, WORKER_APPLICATION, shard_of
from tests.api.conftest import SECRET
from tests.fixtures.redis import RedisServer
from tests.servers import serve, worker_process

USERS_PER_HALF = 3
WALLETS_PER_USER = 2
HANG = 60.0  # seconds: a guard against hanging, never an assertion about speed
TAGS = ("deploy-w1", "deploy-w2")  # chain 1's name as each worker process is configured

_AUDIT_DDL = (
    """CREATE TABLE deployment_refresh_audit (
        txid bigint NOT NULL, tx_start timestamptz NOT NULL, chain text NOT NULL,
        wallet_id uuid NOT NULL, contract text NOT NULL, category text NOT NULL,
        read boolean NOT NULL)""",
    """CREATE FUNCTION deployment_refresh_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO deployment_refresh_audit
        VALUES (txid_current(), now(), NEW.chain, NEW.wallet_id, NEW.contract, NEW.category,
                NEW.amount IS NOT NULL);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER deployment_refresh_audit AFTER INSERT OR UPDATE ON portfolio_assets
       FOR EACH ROW EXECUTE FUNCTION deployment_refresh_audit()""",
)
_AUDIT_DROP = (
    "DROP TRIGGER IF EXISTS deployment_refresh_audit ON portfolio_assets",
    "DROP FUNCTION IF EXISTS deployment_refresh_audit()",
    "DROP TABLE IF EXISTS deployment_refresh_audit",
)


@pytest.fixture
async def refresh_audit(engine: AsyncEngine) -> AsyncIterator[None]:
    """The audit trigger on `portfolio_assets` for the test, removed afterwards."""
    async with engine.begin() as db:
        for statement in _AUDIT_DROP + _AUDIT_DDL:
            await db.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as db:
            for statement in _AUDIT_DROP:
                await db.execute(text(statement))


async def _leases(engine: AsyncEngine) -> dict[int, set[int]]:
    """Lease session pid -> the shards it holds (advisory locks granted right now)."""
    async with engine.connect() as db:
        rows = await db.execute(
            text(
                """SELECT l.pid, l.objid::bigint - :lo FROM pg_locks l
                   JOIN pg_stat_activity a USING (pid)
                   WHERE l.locktype = 'advisory' AND l.granted
                     AND a.datname = current_database() AND a.application_name = :app
                     AND l.objid BETWEEN :lo AND :hi"""
            ),
            {
                "app": WORKER_APPLICATION,
                "lo": _SHARD_LOCK_BASE,
                "hi": _SHARD_LOCK_BASE + SHARDS - 1,
            },
        )
        held: dict[int, set[int]] = defaultdict(set)
        for pid, shard in rows:
            held[int(pid)].add(int(shard))
        return dict(held)


async def _until_leases(
    engine: AsyncEngine, wanted: list[int], workers: list[subprocess.Popen[bytes]]
) -> dict[int, set[int]]:
    """Poll until the lease sessions' shard counts, sorted, are `wanted`."""
    while True:
        for proc in workers:
            assert proc.poll() is None, "a worker process exited"
        leases = await _leases(engine)
        if sorted(len(s) for s in leases.values()) == wanted:
            return leases
        await asyncio.sleep(0.1)


async def _db_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as db:
        moment: datetime = await db.scalar(text("SELECT clock_timestamp()"))
        return moment


async def _audit(engine: AsyncEngine, wallet_ids: list[uuid.UUID]) -> list[Any]:
    async with engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT txid, tx_start, chain, wallet_id, contract, category, read "
                "FROM deployment_refresh_audit WHERE wallet_id = ANY(:w)"
            ),
            {"w": wallet_ids},
        )
        return list(rows)


def _cycles(rows: list[Any], after: datetime) -> dict[str, list[int]]:
    """Worker tag -> the transactions (cycles) that started after `after`."""
    cycles: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.tx_start > after and row.read:
            cycles[row.chain].add(row.txid)
    return {tag: sorted(txids) for tag, txids in cycles.items()}


async def _until_cycles(
    engine: AsyncEngine, wallet_ids: list[uuid.UUID], after: datetime, count: int
) -> None:
    """Poll until each worker has written at least `count` cycles that started after `after`."""
    while True:
        cycles = _cycles(await _audit(engine, wallet_ids), after)
        if all(len(cycles.get(tag, [])) >= count for tag in TAGS):
            return
        await asyncio.sleep(0.1)


def _token(subject: str) -> str:
    return issue_token(Settings(jwt_secret=SecretStr(SECRET)), subject=subject)


def _subjects() -> list[str]:
    """Users in both halves of the shards (the first worker keeps the low half)."""
    low: list[str] = []
    high: list[str] = []
    while len(low) < USERS_PER_HALF or len(high) < USERS_PER_HALF:
        subject = f"deploy-{uuid.uuid4().hex[:8]}"
        half = low if shard_of(user_id_for(subject)) < SHARDS // 2 else high
        if len(half) < USERS_PER_HALF:
            half.append(subject)
    return [s for pair in zip(low, high, strict=True) for s in pair]


async def _next_update(ws: websockets.ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), HANG))
    assert message["type"] == "portfolio_update", message
    return message


async def _total(http: httpx.AsyncClient, subject: str) -> float:
    response = await http.get(
        "/v1/portfolio", headers={"Authorization": f"Bearer {_token(subject)}"}
    )
    assert response.status_code == 200, response.text
    total: float = response.json()["data"]["totalValue"]
    return total


async def _no_more_updates(ws: websockets.ClientConnection) -> None:
    """Ping; anything before the pong is an update nobody should have sent."""
    await ws.send('{"type": "ping"}')
    message = orjson.loads(await asyncio.wait_for(ws.recv(), HANG))
    assert message == {"type": "pong"}, f"unexpected extra message {message}"


async def test_two_apis_two_workers_refresh_each_wallet_once_and_reach_every_subscriber(
    engine: AsyncEngine,
    database_url: str,
    redis_server: RedisServer,
    restore_devnet: Devnet,
    refresh_audit: None,
    tmp_path: Path,
) -> None:
    chain = restore_devnet.chain(1)
    config = config_from_devnet([chain])
    api_chains = tmp_path / "chains.json"
    api_chains.write_bytes(orjson.dumps(config.model_dump(mode="json")))
    common = {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_REDIS_URL": redis_server.url,
        "CHAINFOLIO_DATA_DIR": str(tmp_path),
    }
    api_env = {**common, "CHAINFOLIO_JWT_SECRET": SECRET, "CHAINFOLIO_CHAINS_FILE": str(api_chains)}
    worker_envs = []
    for tag in TAGS:
        tagged = config.model_copy(
            update={"chains": [config.chains[0].model_copy(update={"name": tag})]}
        )
        path = tmp_path / f"chains-{tag}.json"
        path.write_bytes(orjson.dumps(tagged.model_dump(mode="json")))
        worker_envs.append(
            {
                **common,
                "CHAINFOLIO_CHAINS_FILE": str(path),
                "CHAINFOLIO_REFRESH_INTERVAL_S": "0.5",
            }
        )

    subjects = _subjects()
    with serve(api_env) as api_a, serve(api_env) as api_b:
        apis = [api_a, api_b]
        clients = [httpx.AsyncClient(base_url=base, timeout=HANG) for base in apis]
        sockets: list[websockets.ClientConnection] = []
        try:
            # Users and wallets through the API processes, alternately.
            wallet_ids: dict[uuid.UUID, uuid.UUID] = {}  # wallet id -> user id
            for i, subject in enumerate(subjects):
                for j in range(WALLETS_PER_USER):
                    address = chain.wallets[i * WALLETS_PER_USER + j]
                    added = await clients[(i + j) % 2].post(
                        "/v1/wallets",
                        json={"chainId": 1, "address": address},
                        headers={"Authorization": f"Bearer {_token(subject)}"},
                    )
                    assert added.status_code == 201, added.text
                    wallet_ids[uuid.UUID(added.json()["data"]["id"])] = user_id_for(subject)
            tracked = list(wallet_ids)
            # One subscriber per user, on alternating API processes, before any refresh.
            for i, subject in enumerate(subjects):
                ws_base = apis[i % 2].replace("http", "ws")
                ws = await websockets.connect(f"{ws_base}/v1/ws?token={_token(subject)}")
                sockets.append(ws)
                await ws.send(
                    orjson.dumps(
                        {"type": "subscribe", "channel": "portfolio", "userId": subject}
                    ).decode()
                )
                ack = orjson.loads(await asyncio.wait_for(ws.recv(), HANG))
                assert ack["type"] == "subscribed", ack

            logs = [tmp_path / f"{tag}.log" for tag in TAGS]
            with worker_process(worker_envs[0], logs[0]) as first:
                (first_lease,) = await asyncio.wait_for(
                    _until_leases(engine, [SHARDS], [first]), HANG
                )
                with worker_process(worker_envs[1], logs[1]) as second:
                    leases = await asyncio.wait_for(
                        _until_leases(engine, [SHARDS // 2, SHARDS // 2], [first, second]), HANG
                    )
                    # From here on the split is final. A cycle that began before the split
                    # (its wallets read with all 64 shards) can still write after it: wait for
                    # one cycle of each worker written after the split. A worker's cycles run
                    # one after another, so every cycle written after that began after the
                    # split, with its final share of shards.
                    split = await _db_now(engine)
                    await asyncio.wait_for(_until_cycles(engine, tracked, split, 1), HANG)
                    steady = await _db_now(engine)
                    assert first_lease in leases
                    (second_lease,) = set(leases) - {first_lease}
                    shards = {TAGS[0]: leases[first_lease], TAGS[1]: leases[second_lease]}
                    assert shards[TAGS[0]].isdisjoint(shards[TAGS[1]])
                    assert shards[TAGS[0]] | shards[TAGS[1]] == set(range(SHARDS))
                    owned = {
                        tag: {w for w, u in wallet_ids.items() if shard_of(u) in held}
                        for tag, held in shards.items()
                    }
                    assert all(owned.values()), "every worker owns some of the users"

                    # Every subscriber got its first valuation, equal to the API's answer.
                    before = []
                    for i, (subject, ws) in enumerate(zip(subjects, sockets, strict=True)):
                        first_update = await _next_update(ws)
                        total = await _total(clients[(i + 1) % 2], subject)
                        assert first_update["data"]["totalValue"] == total
                        before.append(total)
                    await asyncio.wait_for(_until_cycles(engine, tracked, steady, 1), HANG)

                    # ETH from 3000 to 3300 USD: every wallet holds ETH, every total moves.
                    set_price(chain, "ETH", 3_300_00000000)
                    for i, (subject, ws) in enumerate(zip(subjects, sockets, strict=True)):
                        moved = await _next_update(ws)
                        total = await _total(clients[(i + 1) % 2], subject)
                        assert moved["data"]["totalValue"] != before[i], subject
                        assert moved["data"]["totalValue"] == total, subject
                        assert moved["data"]["change"] == pytest.approx(total - before[i])
                    settled = await _db_now(engine)
                    await asyncio.wait_for(_until_cycles(engine, tracked, settled, 2), HANG)
                    for ws in sockets:
                        await _no_more_updates(ws)
                    for proc in (first, second):
                        assert proc.poll() is None, "a worker process exited"
                    # Stopping the workers is not steady state: once the second has let its
                    # shards go (SIGTERM ends it gracefully), the first takes them all for its
                    # last cycles. Only the cycles written while both ran are audited.
                    finished = await _db_now(engine)
        finally:
            for ws in sockets:
                await ws.close()
            for client in clients:
                await client.aclose()

    rows = [row for row in await _audit(engine, tracked) if row.tx_start < finished]
    window = [row for row in rows if row.tx_start > steady]
    # No holding row written twice in one transaction: no wallet refreshed twice in a cycle.
    written = Counter((r.txid, r.wallet_id, r.contract, r.category) for r in window)
    assert max(written.values()) == 1
    by_cycle: dict[int, set[uuid.UUID]] = defaultdict(set)
    tag_of: dict[int, set[str]] = defaultdict(set)
    for row in window:
        by_cycle[row.txid].add(row.wallet_id)
        if row.read:
            tag_of[row.txid].add(row.chain)
    cycles = _cycles(rows, steady)
    assert set(cycles) == set(TAGS)
    for tag in TAGS:
        assert len(cycles[tag]) >= 4  # one before the move, the move's, two after it
        for txid in cycles[tag]:
            assert tag_of[txid] == {tag}
            # every cycle refreshes exactly the wallets of the shards this worker holds
            assert by_cycle[txid] == owned[tag], (tag, txid)
    assert owned[TAGS[0]].isdisjoint(owned[TAGS[1]])
    assert owned[TAGS[0]] | owned[TAGS[1]] == set(tracked)
