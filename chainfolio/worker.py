"""The refresh worker: reads tracked wallets, stores holdings, publishes changes, snapshots.

Each cycle reads every wallet of this worker's shards (all chains concurrently, Multicall3
batches pinned to one block per chain), stores the holdings (a chain that fails keeps its last
values, flagged stale), publishes an update for every user whose total or holdings changed,
and writes the user's snapshot for the current hour once (idempotent on user and hour).

Several workers may run: users are split into shards held with PostgreSQL session advisory
locks. A worker holds at most its fair share (shards / live workers); a worker that dies
drops its connection, its locks go with it, and the others take its shards on the next cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.bus import Bus, portfolio_channel
from chainfolio.domain import Holding
from chainfolio.fetchers.portfolio import ChainSet, ChainState, read_portfolio
from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.resolvers.updates import HoldingChange, PortfolioUpdate, percent_change
from chainfolio.storage import accounts, timeseries
from chainfolio.storage import holdings as holdings_store
from chainfolio.storage.holdings import StoredHolding

log = logging.getLogger(__name__)

SHARDS = 64
_SHARD_LOCK_BASE = 0x63660000  # advisory lock ids 0x63660000 + shard
WORKER_APPLICATION = "chainfolio-worker"


def shard_of(user_id: uuid.UUID) -> int:
    """Which shard a user belongs to."""
    return user_id.int % SHARDS


@dataclass
class CycleReport:
    """What one refresh cycle did (for logs, metrics and tests)."""

    wallets: int = 0
    users: int = 0
    published: int = 0
    snapshots: int = 0
    stale_chains: dict[int, str] = field(default_factory=dict)
    blocks: dict[int, int] = field(default_factory=dict)
    duration_s: float = 0.0


class ShardLease:
    """The shards this worker holds, on one dedicated database connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.held: set[int] = set()

    async def rebalance(self) -> set[int]:
        """Release above the fair share, then claim free shards up to it."""
        live = int(
            await self._conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                {"a": WORKER_APPLICATION},
            )
            or 1
        )
        fair = math.ceil(SHARDS / max(live, 1))
        for shard in sorted(self.held, reverse=True)[: max(len(self.held) - fair, 0)]:
            await self._conn.scalar(
                text("SELECT pg_advisory_unlock(:k)"), {"k": _SHARD_LOCK_BASE + shard}
            )
            self.held.discard(shard)
        for shard in range(SHARDS):
            if len(self.held) >= fair:
                break
            if shard in self.held:
                continue
            got = await self._conn.scalar(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": _SHARD_LOCK_BASE + shard}
            )
            if got:
                self.held.add(shard)
        await self._conn.commit()
        return set(self.held)


def _changes(before: list[Holding], after: list[Holding]) -> tuple[HoldingChange, ...]:
    def key(h: Holding) -> tuple[int, str, str, str]:
        return (h.chain_id, h.wallet, h.contract, h.category.value)

    old = {key(h): (h.amount, h.value_usd) for h in before}
    changed = []
    for h in after:
        if old.get(key(h)) != (h.amount, h.value_usd):
            amount = None if h.amount is None else str(h.amount)
            changed.append(
                HoldingChange(h.chain_id, h.wallet, h.symbol, h.category.value, amount, h.value_usd)
            )
    return tuple(changed)


class Worker:
    """Refreshes the wallets of the shards it holds."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        bus: Bus,
        chains: ChainSet,
        clock: Callable[[], datetime],
        chain_names: Mapping[int, str],
        interval_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._chains = chains
        self._clock = clock
        self._names = chain_names
        self.interval_s = interval_s
        self._last_totals: dict[uuid.UUID, Decimal] = {}

    def _now(self) -> datetime:
        return self._clock()

    async def refresh(self, shards: set[int] | None = None) -> CycleReport:
        """One cycle over the wallets of `shards` (all when None)."""
        started = time.perf_counter()
        report = CycleReport()
        async with self._engine.connect() as db:
            wallets = [
                w
                for w in await accounts.all_wallets(db)
                if (shards is None or shard_of(w.user_id) in shards)
                and w.chain_id in self._chains.readers
            ]
            before = {
                user_id: await holdings_store.current_holdings(db, user_id=user_id)
                for user_id in {w.user_id for w in wallets}
            }
        report.wallets = len(wallets)
        if not wallets:
            return report
        last_known: dict[tuple[int, str], list[Holding]] = defaultdict(list)
        for stored_holdings in before.values():
            for stored in stored_holdings:
                last_known[(stored.holding.chain_id, stored.holding.wallet)].append(stored.holding)
        read = await read_portfolio(
            self._chains, [(w.chain_id, w.address) for w in wallets], last_known=last_known
        )
        now = self._now()
        async with self._engine.begin() as db:
            for wallet in wallets:
                chain = read.chains[wallet.chain_id]
                if chain.status.state is ChainState.STALE:
                    report.stale_chains[wallet.chain_id] = chain.status.error or "unavailable"
                    await holdings_store.mark_wallet_stale(
                        db, wallet_id=wallet.id, error=chain.status.error or "chain unavailable"
                    )
                    continue
                if chain.status.block_number is not None:
                    report.blocks[wallet.chain_id] = chain.status.block_number
                await holdings_store.replace_wallet_holdings(
                    db,
                    user_id=wallet.user_id,
                    wallet_id=wallet.id,
                    chain=self._names.get(wallet.chain_id, str(wallet.chain_id)),
                    holdings=chain.holdings.get(wallet.address, []),
                    observed_at=now,
                )
            await timeseries.write_prices(
                db,
                [
                    timeseries.PricePoint(p.updated_at, symbol, p.usd, p.source)
                    for symbol, p in read.prices.items()
                ],
            )
        await self._publish_and_snapshot({w.user_id for w in wallets}, before, now, report)
        report.duration_s = time.perf_counter() - started
        return report

    async def _publish_and_snapshot(
        self,
        users: set[uuid.UUID],
        before: Mapping[uuid.UUID, list[StoredHolding]],
        now: datetime,
        report: CycleReport,
    ) -> None:
        hour = now.replace(minute=0, second=0, microsecond=0)
        snapshots = []
        async with self._engine.connect() as db:
            for user_id in users:
                stored = await holdings_store.current_holdings(db, user_id=user_id)
                total, by_chain, by_asset, by_category = summarize_holdings(stored)
                earlier = before.get(user_id, [])
                changed = _changes([s.holding for s in earlier], [s.holding for s in stored])
                previous = self._last_totals.get(user_id)
                if previous is None:
                    previous = summarize_holdings(earlier)[0]
                if changed or previous != total:
                    update = PortfolioUpdate(
                        user_id=str(user_id),
                        total_value=total,
                        change=total - previous,
                        change_percent=percent_change(total, previous),
                        timestamp=now,
                        blocks=dict(report.blocks),
                        holdings=changed,
                        stale_chains=tuple(sorted(report.stale_chains)),
                    )
                    await self._bus.publish(portfolio_channel(user_id), update.to_json())
                    report.published += 1
                self._last_totals[user_id] = total
                snapshots.append(
                    timeseries.Snapshot(
                        user_id,
                        hour,
                        total,
                        {name: v for (_cid, name), v in by_chain.items()},
                        by_asset,
                        by_category,
                    )
                )
        report.users = len(users)
        async with self._engine.begin() as db:
            report.snapshots = await timeseries.write_snapshots(db, snapshots)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `interval_s` until `stop` is set, holding a fair share of shards."""
        async with self._engine.connect() as lease_conn:
            await lease_conn.execute(
                text("SELECT set_config('application_name', :a, false)"),
                {"a": WORKER_APPLICATION},
            )
            lease = ShardLease(lease_conn)
            while not stop.is_set():
                try:
                    shards = await lease.rebalance()
                    report = await self.refresh(shards)
                    log.info(
                        "refresh: %d wallets, %d users, %d published, %d snapshots, %.2fs%s",
                        report.wallets,
                        report.users,
                        report.published,
                        report.snapshots,
                        report.duration_s,
                        f", stale chains {report.stale_chains}" if report.stale_chains else "",
                    )
                except Exception:
                    log.exception("refresh cycle failed; retrying next cycle")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
