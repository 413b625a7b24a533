"""The refresh cycle: read tracked wallets, store holdings, publish changes, snapshot.

Why this is long: one `Worker` holds the state a cycle and the loop that schedules it share
(tracked wallets, stored holdings, leases, nudges); the parts that stand alone live beside it
(`flows`, `backfill`, `heads`, `leases`, `snapshots`).

Each cycle reads every wallet of this worker's shards (all chains concurrently, Multicall3
batches pinned to one block per chain), stores the holdings (a chain that fails keeps its last
values, flagged stale), records the cash flows found since the last cycle (`flows`), publishes
an update for every user whose total or holdings changed, writes the user's snapshot for the
current hour once (idempotent on user and hour) and back-fills the hours a user missed
(`backfill`).

Cycles run every `interval_s`; between them the worker follows the chains' heads (`heads`), and
a new block on a chain it read brings the next cycle forward, to no sooner than
`min_interval_s` after the last one. A user whose wallets the API changed, or whose wallets a new
block touched, is refreshed at once, alone, by the worker holding them (`leases` says which).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.core.cache import AnswerCache, NoCache
from chainfolio.core.domain import MONEY, Holding
from chainfolio.fetchers.portfolio import ChainSet, ChainState, read_portfolio
from chainfolio.resolvers.portfolio import is_incomplete, stale_chains_of, summarize_holdings
from chainfolio.resolvers.updates import HoldingChange, PortfolioUpdate, percent_change
from chainfolio.storage import accounts, timeseries
from chainfolio.storage import flows as flow_store
from chainfolio.storage import holdings as holdings_store
from chainfolio.storage import movements as movements_store
from chainfolio.storage import prices as price_store
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.holdings import StoredHolding
from chainfolio.worker.backfill import Backfill
from chainfolio.worker.discovery import TokenDiscovery
from chainfolio.worker.flows import ChainFlows, FlowScanner
from chainfolio.worker.heads import HeadWatch, Nudges, Tracked, first_of
from chainfolio.worker.leases import WORKER_APPLICATION, ShardLease, shard_of
from chainfolio.worker.options import WorkerOptions
from chainfolio.worker.snapshots import enforce_retention, snapshot_of

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    """What one refresh cycle did (for logs, metrics and tests)."""

    wallets: int = 0
    users: int = 0
    published: int = 0
    snapshots: int = 0
    stale_chains: dict[int, str] = field(default_factory=dict)
    blocks: dict[int, int] = field(default_factory=dict)
    flows: int = 0
    rescanned_chains: dict[int, int] = field(default_factory=dict)
    """Chain id -> block a reorg made the transfer scan start over at."""
    rebased_chains: set[int] = field(default_factory=set)
    """Chains whose node serves another chain than before: cursors re-based, no flows."""
    backfilled: int = 0
    gaps: int = 0
    """Users whose hour was not snapshotted: a chain of theirs could not be read."""
    duration_s: float = 0.0


def _changes(before: list[Holding], after: list[Holding]) -> tuple[HoldingChange, ...]:
    """Holdings whose amount, value or freshness changed (not merely the error's wording:
    "backing off 3.2s" becomes "2.1s" while a chain stays down)."""

    def key(h: Holding) -> tuple[int, str, str, str]:
        return (h.chain_id, h.wallet, h.contract, h.category.value)

    old = {key(h): (h.amount, h.value_usd, h.stale) for h in before}
    changed = []
    for h in after:
        if old.get(key(h)) != (h.amount, h.value_usd, h.stale):
            amount = None if h.amount is None else str(h.amount)
            changed.append(
                HoldingChange(
                    h.chain_id,
                    h.wallet,
                    h.symbol,
                    h.category.value,
                    amount,
                    h.value_usd,
                    h.stale,
                    h.error,
                )
            )
    return tuple(changed)


def _tracked(wallets: Collection[Wallet], before: Tracked, users: Collection[uuid.UUID]) -> Tracked:
    """Chain id → lower-case address → the users tracking that wallet: `wallets`, plus what
    `before` says of others than `users` (a refresh of some users changes only theirs)."""
    tracked: dict[int, dict[str, set[uuid.UUID]]] = defaultdict(lambda: defaultdict(set))
    for chain_id, by_address in before.items():
        for address, holders in by_address.items():
            kept = set(holders).difference(users)
            if kept:
                tracked[chain_id][address] |= kept
    for wallet in wallets:
        tracked[wallet.chain_id][wallet.address.lower()].add(wallet.user_id)
    return {chain: dict(by_address) for chain, by_address in tracked.items()}


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
        options: WorkerOptions | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._cache = cache or NoCache()
        self._chains = chains
        self._clock = clock
        self._names = chain_names
        self.interval_s = interval_s
        self.options = options or WorkerOptions()
        self._last_totals: dict[uuid.UUID, Decimal] = {}
        # What this worker stored last cycle: the next cycle's "before" without a second query.
        self._stored: dict[uuid.UUID, list[StoredHolding]] = {}
        self._seen: set[uuid.UUID] = set()  # users whose missed hours were back-filled
        self._gapped: set[uuid.UUID] = set()  # users with an hour left a gap since
        # The wallets of the current (or last) full cycle, set before it reads: `HeadWatch` looks
        # for them in each new block from then on, so a block mined during a cycle is not missed.
        self._tracked: Tracked = {}
        self._retention_due = 0.0
        self._flows = FlowScanner(engine=engine, chains=chains, options=self.options)
        self._discovery = TokenDiscovery(engine=engine, chains=chains, cache=self._cache)
        self._backfill = Backfill(
            engine=engine,
            chains=chains,
            chain_names=chain_names,
            hours=self.options.backfill_hours,
            cache=self._cache,
        )

    def _now(self) -> datetime:
        return self._clock()

    async def refresh(
        self, shards: set[int] | None = None, *, only: Collection[uuid.UUID] | None = None
    ) -> CycleReport:
        """One cycle over the wallets of `shards` (all when None); with `only`, over these
        users' wallets (a wallet just added or removed: the rest keep their last state)."""
        started = time.perf_counter()
        report = CycleReport()
        async with self._engine.connect() as db:
            wallets = await self._wallets(db, shards, only)
            users = {w.user_id for w in wallets}
            before = await self._stored_before(db, users, forget_others=only is None)
        report.wallets = len(wallets)
        self._tracked = _tracked(wallets, self._tracked if only is not None else {}, only or ())
        if not wallets:
            return report
        last_known: dict[tuple[int, str], list[Holding]] = defaultdict(list)
        for stored_holdings in before.values():
            for stored in stored_holdings:
                last_known[(stored.holding.chain_id, stored.holding.wallet)].append(stored.holding)
        # Tokens found in the wallets' Transfer logs are read with the rest (`discovery`).
        plan = await self._discovery.plan(wallets)
        read = await read_portfolio(
            self._chains,
            [(w.chain_id, w.address) for w in wallets],
            last_known=last_known,
            discovered=plan.tokens,
        )
        now = self._now()
        hour = now.replace(minute=0, second=0, microsecond=0)
        async with self._engine.connect() as db:
            last_snapshots = await timeseries.latest_snapshot_times(
                db, user_ids=users, since=hour - timedelta(days=self.options.retention_days)
            )
        scans = await self._flows.detect(wallets, read.chains, last_snapshots, hour, now, plan=plan)
        async with self._engine.begin() as db:
            for wallet in wallets:
                chain = read.chains[wallet.chain_id]
                name = self._names.get(wallet.chain_id, str(wallet.chain_id))
                if chain.status.state is ChainState.STALE:
                    error = chain.status.error or "chain unavailable"
                    report.stale_chains[wallet.chain_id] = error
                    await holdings_store.mark_wallet_stale(
                        db,
                        user_id=wallet.user_id,
                        wallet_id=wallet.id,
                        chain=name,
                        error=error,
                        unread=self._chains.readers[wallet.chain_id].unread(wallet.address, error),
                        observed_at=now,
                    )
                    continue
                if chain.status.block_number is not None:
                    report.blocks[wallet.chain_id] = chain.status.block_number
                await holdings_store.replace_wallet_holdings(
                    db,
                    user_id=wallet.user_id,
                    wallet_id=wallet.id,
                    chain=name,
                    holdings=plan.visible(wallet, chain.holdings.get(wallet.address, [])),
                    observed_at=now,
                )
            # The prices this refresh valued holdings with, at minute precision (benchmarks).
            await price_store.write_prices(
                db,
                [
                    price_store.PricePoint(now, symbol, p.usd, p.source)
                    for symbol, p in read.prices.items()
                ],
            )
            await _write_scans(db, scans, report)
        report.rebased_chains = {c for c, scan in scans.items() if scan.rebased}
        await self._save_anchors(scans)
        # Committed: cached answers of these users are stale (values, times, stale flags). Drop
        # them before publishing, so that a client reacting to the push reads the new state.
        await self._cache.invalidate(users)
        await self._publish_and_snapshot(users, before, now, report)
        unseen = users - self._seen
        if unseen:
            try:
                report.backfilled = await self._backfill.run(
                    wallets, unseen, last_snapshots, hour, plan=plan
                )
            except Exception:  # the live refresh is done; missed hours stay gaps
                log.exception("back-fill failed; the missed hours stay gaps")
            self._seen |= unseen
        report.duration_s = time.perf_counter() - started
        return report

    async def _save_anchors(self, scans: Mapping[int, ChainFlows]) -> None:
        # Own short transaction, in chain order: every worker writes the same rows, and holding
        # their locks through the refresh's transaction would serialize (or deadlock) workers.
        anchors = sorted(
            (scan.anchor for scan in scans.values() if scan.anchor is not None),
            key=lambda anchor: anchor.chain_id,
        )
        if anchors:
            async with self._engine.begin() as db:
                await flow_store.save_chain_anchors(db, anchors)

    async def _stored_before(
        self, db: AsyncConnection, users: set[uuid.UUID], *, forget_others: bool
    ) -> dict[uuid.UUID, list[StoredHolding]]:
        """The users' holdings as stored: what the last cycle stored, read once otherwise. A
        cycle over every user forgets the others (no longer tracked); one over some keeps them."""
        for user_id in users - self._stored.keys():
            self._stored[user_id] = await holdings_store.current_holdings(db, user_id=user_id)
        before = {user_id: self._stored[user_id] for user_id in users}
        if forget_others:
            self._stored = dict(before)  # refilled with what this cycle stores
        return before

    async def _wallets(
        self, db: AsyncConnection, shards: set[int] | None, only: Collection[uuid.UUID] | None
    ) -> list[Wallet]:
        if only is None:
            found = await accounts.all_wallets(db)
        else:
            found = [w for u in only for w in await accounts.list_wallets(db, user_id=u)]
        return [
            w
            for w in found
            if (shards is None or shard_of(w.user_id) in shards)
            and w.chain_id in self._chains.readers
        ]

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
                self._stored[user_id] = stored
                snapshot = snapshot_of(user_id, hour, stored)
                total = snapshot.total_value
                earlier = before.get(user_id, [])
                changed = _changes([s.holding for s in earlier], [s.holding for s in stored])
                previous = self._last_totals.get(user_id)
                if previous is None:
                    previous = summarize_holdings(earlier)[0]
                stale_chains = stale_chains_of(stored)
                if changed or previous != total or stale_chains != stale_chains_of(earlier):
                    update = PortfolioUpdate(
                        user_id=str(user_id),
                        total_value=total,
                        change=MONEY.subtract(total, previous),
                        change_percent=percent_change(total, previous),
                        timestamp=now,
                        blocks=dict(report.blocks),
                        holdings=changed,
                        stale_chains=stale_chains,
                        incomplete=is_incomplete(stored),
                    )
                    await self._bus.publish(portfolio_channel(user_id), update.to_json())
                    report.published += 1
                self._last_totals[user_id] = total
                if stale_chains:
                    # Some balances are not this hour's (or were never read): no trustworthy
                    # valuation, so the hour stays a gap — never a made-up total. Once every
                    # chain answers again, back-fill reads the missed hours at their blocks.
                    self._gapped.add(user_id)
                    report.gaps += 1
                    continue
                if user_id in self._gapped:
                    self._gapped.discard(user_id)
                    self._seen.discard(user_id)
                snapshots.append(snapshot)
        report.users = len(users)
        async with self._engine.begin() as db:
            report.snapshots = await timeseries.write_snapshots(db, snapshots)
        if report.snapshots:  # a new hour in `history`, `performance`, `compare`
            await self._cache.invalidate(users)

    # --- retention and the loop ---------------------------------------------------------------

    async def enforce_retention(self) -> list[str]:
        """Drop snapshot partitions past retention (plain PostgreSQL; TimescaleDB has a policy)."""
        before = self._now() - timedelta(days=self.options.retention_days)
        return await enforce_retention(self._engine, before=before)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `interval_s` until `stop` is set, holding a fair share of shards; a
        new block brings a cycle forward (`WorkerOptions.block_poll_s`, `min_interval_s`), and
        a user whose wallets changed is refreshed at once, alone."""
        follow = self.options.block_poll_s > 0 and self.options.min_interval_s < self.interval_s
        nudges = Nudges()
        touched = nudges if self.options.reread_touched else None
        heads = (
            HeadWatch(self._chains, self.options.block_poll_s, touched, lambda: self._tracked)
            if follow
            else None
        )
        listening = asyncio.Event()
        helpers = [asyncio.create_task(nudges.listen(self._bus, listening), name="nudges")]
        if heads is not None:
            helpers.append(asyncio.create_task(heads.run(stop), name="head-watch"))
        await first_of(listening.wait(), helpers[0], within_s=5.0)
        async with self._engine.connect() as lease_conn:
            await lease_conn.execute(
                text("SELECT set_config('application_name', :a, false)"),
                {"a": WORKER_APPLICATION},
            )
            lease = ShardLease(lease_conn)
            try:
                await self._loop(lease, stop, heads, nudges)
            finally:
                for helper in helpers:
                    helper.cancel()
                    try:
                        await helper
                    except asyncio.CancelledError:
                        pass
                    except Exception:  # it ended early: say so, the worker itself is done
                        log.exception("worker helper %s failed", helper.get_name())
                # Closed, not pooled: the session's advisory locks and worker name end with it,
                # so the other workers take these shards over at their next cycle.
                await lease_conn.invalidate()

    async def _loop(
        self, lease: ShardLease, stop: asyncio.Event, heads: HeadWatch | None, nudges: Nudges
    ) -> None:
        while not stop.is_set():
            try:
                shards = await lease.rebalance()
                nudges.take()  # this cycle reads every user
                report = await self.refresh(shards)
                if heads is not None:
                    heads.cycle_read(report.blocks)
                log.info(
                    "refresh: %d wallets, %d users, %d published, %d snapshots, %d flows, "
                    "%d back-filled, %.2fs%s",
                    report.wallets,
                    report.users,
                    report.published,
                    report.snapshots,
                    report.flows,
                    report.backfilled,
                    report.duration_s,
                    f", stale chains {report.stale_chains}" if report.stale_chains else "",
                )
                if time.monotonic() >= self._retention_due:
                    await self.enforce_retention()
                    self._retention_due = time.monotonic() + self.options.retention_every_s
            except Exception:
                log.exception("refresh cycle failed; retrying next cycle")
            deadline = time.monotonic() + self.interval_s
            earliest = time.monotonic() + self.options.min_interval_s
            while await self._pause(stop, heads, nudges, deadline, earliest):
                try:
                    report = await self.refresh(lease.held, only=nudges.take())
                    log.info("refresh of changed wallets: %d users", report.users)
                except Exception:
                    log.exception("refresh of changed wallets failed; the next cycle reads them")

    async def _pause(
        self,
        stop: asyncio.Event,
        heads: HeadWatch | None,
        nudges: Nudges,
        deadline: float,
        earliest: float,
    ) -> bool:
        """Wait for the next cycle (False: the deadline, a new block after `earliest`, or
        `stop`) or for users whose wallets changed (True: refresh them, then wait again)."""
        while True:
            now = time.monotonic()
            if stop.is_set() or now >= deadline:
                return False
            if nudges.users:
                return True
            if heads is not None and now >= earliest and heads.moved.is_set():
                return False
            waits = [stop.wait(), nudges.arrived.wait()]
            until = deadline
            if heads is not None and now < earliest:
                until = earliest
            elif heads is not None:
                waits.append(heads.moved.wait())
            await first_of(*waits, within_s=until - now)


async def _write_scans(
    db: AsyncConnection, scans: Mapping[int, ChainFlows], report: CycleReport
) -> None:
    """What the transfer scans found, in the refresh's transaction: orphaned flows and
    movements dropped, new ones written, cursors moved."""
    for chain_id, scan in scans.items():
        for block, wallet_ids in scan.orphaned_after.items():
            await flow_store.delete_cash_flows_after(db, wallet_ids=wallet_ids, block_number=block)
            await movements_store.delete_movements_after(
                db, wallet_ids=wallet_ids, block_number=block
            )
        if scan.rescan_from is not None:
            report.rescanned_chains[chain_id] = scan.rescan_from
        await flow_store.write_cash_flows(db, scan.flows)
        await movements_store.write_movements(db, scan.openings + scan.movements)
        await flow_store.save_transfer_cursors(db, scan.cursors)
        report.flows += len(scan.flows)
