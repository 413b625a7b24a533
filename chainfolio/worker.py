"""The refresh worker: reads tracked wallets, stores holdings, publishes changes, snapshots.

Each cycle reads every wallet of this worker's shards (all chains concurrently, Multicall3
batches pinned to one block per chain), stores the holdings (a chain that fails keeps its last
values, flagged stale), publishes an update for every user whose total or holdings changed,
and writes the user's snapshot for the current hour once (idempotent on user and hour).

Cash flows: each cycle also scans the blocks since each wallet's cursor up to the block the
balances were read at (so flows and values agree) for transfers in and out (see
`chainfolio.fetchers.transfers`); a transfer with another tracked wallet of the same user, or
with a configured vault or lending market (positions the portfolio already counts), is not a
flow. A flow is valued at the price nearest its block's time (a price stored by an earlier refresh,
or this refresh's own) and is dated by its block, moved into the snapshot interval whose value
first includes it.

On its first sight of a user whose last snapshot is more than an hour old (a restart, a shard
taken over), the worker back-fills the missing hours (at most `backfill_hours`) from balances
read at the block nearest each hour, valued with the prices stored nearest that hour; an
hour without such a block, state or prices stays a gap (no interpolation).

Cycles run every `interval_s`; between them the worker follows the chains' heads (`HeadWatch`:
`eth_blockNumber` on each chain every `block_poll_s`), and a new block on a chain it read
brings the next cycle forward, to no sooner than `min_interval_s` after the last one: a
transfer shows within seconds, and the interval bounds the staleness when no block comes
(prices move without blocks). A user whose wallets the API changed (`WALLETS_CHANNEL`) is
refreshed at once, alone, by the worker holding them.

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
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.bus import WALLETS_CHANNEL, Bus, portfolio_channel
from chainfolio.cache import AnswerCache, NoCache
from chainfolio.domain import NATIVE, Holding, Price
from chainfolio.fetchers.config import ChainConfig
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.portfolio import ChainHoldings, ChainSet, ChainState, read_portfolio
from chainfolio.fetchers.rpc import parse_quantity
from chainfolio.fetchers.transfers import ScanLimits, Transfer, block_hashes, scan_transfers
from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.resolvers.updates import HoldingChange, PortfolioUpdate, percent_change
from chainfolio.storage import accounts, timeseries
from chainfolio.storage import holdings as holdings_store
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.holdings import StoredHolding
from chainfolio.storage.migrations import drop_expired_partitions

log = logging.getLogger(__name__)

SHARDS = 64
_SHARD_LOCK_BASE = 0x63660000  # advisory lock ids 0x63660000 + shard
_RETENTION_LOCK = 0x63665254  # one worker at a time drops expired partitions
HOUR = timedelta(hours=1)
FLOW_PRICE_WINDOW = timedelta(minutes=90)  # as the back-fill's: a stored price this near
_TICK = timedelta(microseconds=1)
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
    flows: int = 0
    rescanned_chains: dict[int, int] = field(default_factory=dict)
    """Chain id -> block a reorg (or a restarted chain) made the transfer scan start over at."""
    backfilled: int = 0
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The worker's knobs beyond the refresh interval."""

    scan: ScanLimits = field(default_factory=ScanLimits)
    max_scan_blocks: int = 10_000
    """A wallet whose cursor lags more is scanned from head - this (older flows are missed)."""
    reorg_depth: int = 12
    """Blocks rescanned when a cursor's block was replaced or is beyond the head."""
    backfill_hours: int = 48
    retention_days: int = 90
    retention_every_s: float = 3600.0
    block_poll_s: float = 2.0
    """How often `run` polls each chain's head; 0 = no block following (interval only)."""
    min_interval_s: float = 10.0
    """A new block brings the next cycle forward, to no sooner than this after the last."""


async def worker_sessions(conn: AsyncConnection) -> int:
    """Database sessions named as a worker's lease (live workers, or ones just gone)."""
    count = await conn.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = :a AND datname = current_database()"
        ),
        {"a": WORKER_APPLICATION},
    )
    return int(count or 0)


class ShardLease:
    """The shards this worker holds, on one dedicated database connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.held: set[int] = set()

    async def rebalance(self) -> set[int]:
        """Release above the fair share, then claim free shards up to it."""
        fair = math.ceil(SHARDS / max(await worker_sessions(self._conn), 1))
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


@dataclass(slots=True)
class _ChainFlows:
    """What scanning one chain produced, written in the refresh's transaction."""

    flows: list[timeseries.CashFlow] = field(default_factory=list)
    pricing: list[tuple[str, datetime, Decimal]] = field(default_factory=list)
    """Per flow: its price key, its block's time and its signed amount in units."""
    cursors: list[timeseries.TransferCursor] = field(default_factory=list)
    orphaned_after: dict[int, list[uuid.UUID]] = field(default_factory=dict)
    """Block -> wallets whose stored flows above that block a reorg orphaned."""
    rescan_from: int | None = None


def flow_time(
    block_time: datetime, *, last_snapshot: datetime | None, hour: datetime, now: datetime
) -> datetime:
    """When a flow found now counts: its block time, moved into the snapshot interval whose
    value first includes it (snapshots are stamped with their hour but read later)."""
    low: datetime | None
    if last_snapshot is not None and last_snapshot >= hour:  # this hour's value predates it
        low, high = hour, max(now, hour + _TICK)
    else:  # the snapshot written by this refresh at `hour` is the first to include it
        low, high = last_snapshot, hour
    moment = min(block_time, high)
    if low is not None and moment <= low:
        moment = low + _TICK
    return moment


class HeadWatch:
    """The chains' heads between cycles: `moved` is set while some chain's head is past the
    block the last cycle read on it (chains the last cycle did not read are not watched)."""

    def __init__(self, chains: ChainSet, poll_s: float) -> None:
        self._readers = chains.readers
        self._poll_s = poll_s
        self._read: dict[int, int] = {}
        self._heads: dict[int, int] = {}
        self.moved = asyncio.Event()
        self.polls = 0

    def cycle_read(self, blocks: Mapping[int, int]) -> None:
        """A cycle read these blocks (chain id → block number)."""
        self._read.update(blocks)
        self._update()

    def _update(self) -> None:
        if any(head > self._read[c] for c, head in self._heads.items() if c in self._read):
            self.moved.set()
        else:
            self.moved.clear()

    async def _head(self, reader: EvmChainReader) -> int:
        return parse_quantity(await reader.rpc.call("eth_blockNumber", []), reader.chain.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `poll_s` until `stop`; a chain that fails is asked again next time."""
        while not stop.is_set():
            ids = list(self._readers)
            heads = await asyncio.gather(
                *(self._head(self._readers[c]) for c in ids), return_exceptions=True
            )
            for chain_id, head in zip(ids, heads, strict=True):
                if isinstance(head, int):
                    self._heads[chain_id] = head
                else:
                    log.debug("head poll of chain %s failed: %s", chain_id, head)
            self.polls += 1
            self._update()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._poll_s)


class Nudges:
    """Users whose wallets changed, from `WALLETS_CHANNEL`: refreshed between cycles."""

    def __init__(self) -> None:
        self.users: set[uuid.UUID] = set()
        self.arrived = asyncio.Event()

    def take(self) -> set[uuid.UUID]:
        """The users waiting, now removed."""
        users, self.users = self.users, set()
        self.arrived.clear()
        return users

    async def listen(self, bus: Bus, subscribed: asyncio.Event) -> None:
        """Collect user ids published on the bus (until cancelled)."""
        async with bus.subscribe(WALLETS_CHANNEL) as subscription:
            subscribed.set()
            async for message in subscription:
                try:
                    self.users.add(uuid.UUID(message))
                except ValueError:
                    log.warning("ignoring %r on %s: not a user id", message[:80], WALLETS_CHANNEL)
                    continue
                self.arrived.set()


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
        self._retention_due = 0.0

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
        hour = now.replace(minute=0, second=0, microsecond=0)
        async with self._engine.connect() as db:
            last_snapshots = await timeseries.latest_snapshot_times(
                db, user_ids=users, since=hour - timedelta(days=self.options.retention_days)
            )
        scans = await self._detect_flows(wallets, read.chains, last_snapshots, hour, now)
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
            # The prices this refresh valued holdings with, at minute precision (benchmarks).
            await timeseries.write_prices(
                db,
                [
                    timeseries.PricePoint(now, symbol, p.usd, p.source)
                    for symbol, p in read.prices.items()
                ],
            )
            for chain_id, scan in scans.items():
                for block, wallet_ids in scan.orphaned_after.items():
                    await timeseries.delete_cash_flows_after(
                        db, wallet_ids=wallet_ids, block_number=block
                    )
                if scan.rescan_from is not None:
                    report.rescanned_chains[chain_id] = scan.rescan_from
                await timeseries.write_cash_flows(db, scan.flows)
                await timeseries.save_transfer_cursors(db, scan.cursors)
                report.flows += len(scan.flows)
        # Committed: cached answers of these users are stale (values, times, stale flags). Drop
        # them before publishing, so that a client reacting to the push reads the new state.
        await self._cache.invalidate(users)
        await self._publish_and_snapshot(users, before, now, report)
        unseen = users - self._seen
        if unseen:
            try:
                report.backfilled = await self._backfill(wallets, unseen, last_snapshots, hour)
            except Exception:  # the live refresh is done; missed hours stay gaps
                log.exception("back-fill failed; the missed hours stay gaps")
            self._seen |= unseen
        report.duration_s = time.perf_counter() - started
        return report

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
                snapshot = _snapshot(user_id, hour, stored)
                total = snapshot.total_value
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
                snapshots.append(snapshot)
        report.users = len(users)
        async with self._engine.begin() as db:
            report.snapshots = await timeseries.write_snapshots(db, snapshots)
        if report.snapshots:  # a new hour in `history`, `performance`, `compare`
            await self._cache.invalidate(users)

    # --- cash flows -------------------------------------------------------------------------

    async def _detect_flows(
        self,
        wallets: Sequence[Wallet],
        chains: Mapping[int, ChainHoldings],
        last_snapshots: Mapping[uuid.UUID, datetime],
        hour: datetime,
        now: datetime,
    ) -> dict[int, _ChainFlows]:
        by_chain: dict[int, list[Wallet]] = defaultdict(list)
        for wallet in wallets:
            chain = chains[wallet.chain_id]
            if chain.status.state is ChainState.OK and chain.status.block_number is not None:
                by_chain[wallet.chain_id].append(wallet)
        async with self._engine.connect() as db:
            cursors = await timeseries.transfer_cursors(db, wallet_ids=[w.id for w in wallets])
        chain_ids = list(by_chain)
        results = await asyncio.gather(
            *(
                self._chain_flows(
                    chain_id,
                    by_chain[chain_id],
                    chains[chain_id],
                    cursors,
                    last_snapshots,
                    hour,
                    now,
                )
                for chain_id in chain_ids
            ),
            return_exceptions=True,
        )
        scans: dict[int, _ChainFlows] = {}
        for chain_id, result in zip(chain_ids, results, strict=True):
            if isinstance(result, BaseException):
                # Cursors stay put: the same blocks are scanned again next cycle.
                log.warning("transfer scan of chain %d failed: %s", chain_id, result)
                continue
            scans[chain_id] = result
        await self._value_at_block_time(scans, now)
        return scans

    async def _value_at_block_time(self, scans: Mapping[int, _ChainFlows], now: datetime) -> None:
        """Value each flow at the price nearest its block's time: a price stored by an earlier
        refresh (one per minute) when it is nearer than this refresh's own read, taken at
        `now` — a transfer found after a restart or a long scan is valued at its time, not at
        today's price. Nothing stored within `FLOW_PRICE_WINDOW`: this refresh's price."""
        wanted = {(key, at) for scan in scans.values() for key, at, _ in scan.pricing}
        if not wanted:
            return
        async with self._engine.connect() as db:
            stored = await timeseries.prices_nearest(db, wanted, window=FLOW_PRICE_WINDOW)
        for scan in scans.values():
            for i, (key, at, units) in enumerate(scan.pricing):
                found = stored.get((key, at))
                if found is None:
                    continue
                stored_at, usd = found
                if scan.flows[i].value_usd is not None and abs(now - at) <= abs(stored_at - at):
                    continue
                scan.flows[i] = replace(scan.flows[i], value_usd=units * usd)

    async def _chain_flows(  # noqa: PLR0917 - one chain's share of a cycle
        self,
        chain_id: int,
        wallets: Sequence[Wallet],
        read: ChainHoldings,
        cursors: Mapping[uuid.UUID, timeseries.TransferCursor],
        last_snapshots: Mapping[uuid.UUID, datetime],
        hour: datetime,
        now: datetime,
    ) -> _ChainFlows:
        reader = self._chains.readers[chain_id]
        head = read.status.block_number
        assert head is not None
        known = {cursors[w.id].block_number for w in wallets if w.id in cursors}
        hashes = await block_hashes(reader.rpc, {head} | {b for b in known if b <= head})
        result = _ChainFlows()
        starts: dict[uuid.UUID, int] = {}  # last block already scanned, per wallet
        for wallet in wallets:
            cursor = cursors.get(wallet.id)
            if cursor is None:  # first sight: what it holds now is its starting value
                continue
            start = cursor.block_number
            replaced = cursor.block_hash is not None and hashes.get(start) != cursor.block_hash
            if start > head or replaced:  # a reorg, or a restarted/reverted chain
                start = max(min(start, head) - self.options.reorg_depth, 0)
                result.orphaned_after.setdefault(start, []).append(wallet.id)
                result.rescan_from = min(start, result.rescan_from or start)
            if head - start > self.options.max_scan_blocks:
                log.warning(
                    "chain %d: wallet %s is %d blocks behind; flows before block %d are not seen",
                    chain_id,
                    wallet.address,
                    head - start,
                    head - self.options.max_scan_blocks,
                )
                start = head - self.options.max_scan_blocks
            starts[wallet.id] = start
        scanned = [w for w in wallets if w.id in starts and starts[w.id] < head]
        if scanned:
            chain = reader.chain
            scan = await scan_transfers(
                reader.rpc,
                chain_id=chain_id,
                tokens=[t.address for t in chain.tokens if not t.spam],
                wallets=[w.address for w in scanned],
                first_block=min(starts[w.id] for w in scanned) + 1,
                last_block=head,
                limits=self.options.scan,
            )
            valuation = _FlowValuation(chain, read)
            # Counterparties that make a transfer internal, per user: the user's own wallets,
            # and the vaults and lending markets whose positions the portfolio already counts.
            internal = {v.address.lower() for v in chain.vaults}
            internal |= {m.address.lower() for m in chain.lending}
            own: dict[uuid.UUID, set[str]] = defaultdict(lambda: set(internal))
            for wallet in wallets:
                own[wallet.user_id].add(wallet.address.lower())
            # Native value paid into a tracked token is a wrap (WETH9 emits no Transfer for it).
            wrappers = {t.address.lower() for t in chain.tokens}
            by_address: dict[str, list[Wallet]] = defaultdict(list)
            for wallet in scanned:
                by_address[wallet.address.lower()].append(wallet)
            for transfer in scan.transfers:
                for party, sign, counterparty in (
                    (transfer.recipient, 1, transfer.sender),
                    (transfer.sender, -1, transfer.recipient),
                ):
                    for wallet in by_address.get(party, []):
                        if transfer.block_number <= starts[wallet.id]:
                            continue
                        if counterparty in own[wallet.user_id] or (
                            transfer.contract == NATIVE and counterparty in wrappers
                        ):
                            continue
                        moment = flow_time(
                            transfer.block_time,
                            last_snapshot=last_snapshots.get(wallet.user_id),
                            hour=hour,
                            now=now,
                        )
                        flow, pricing = valuation.flow(wallet, transfer, sign, moment)
                        result.flows.append(flow)
                        result.pricing.append(pricing)
        result.cursors = [
            timeseries.TransferCursor(w.id, chain_id, head, hashes.get(head)) for w in wallets
        ]
        return result

    # --- back-fill ----------------------------------------------------------------------------

    async def _backfill(
        self,
        wallets: Sequence[Wallet],
        users: Collection[uuid.UUID],
        last_snapshots: Mapping[uuid.UUID, datetime],
        hour: datetime,
    ) -> int:
        """Snapshots for the hours each user missed, from balances at historic blocks."""
        oldest = hour - self.options.backfill_hours * HOUR
        wanted: dict[datetime, set[uuid.UUID]] = defaultdict(set)
        for user_id in users:
            last = last_snapshots.get(user_id)
            if last is None or last >= hour - HOUR:
                continue
            moment = max(last + HOUR, oldest).replace(minute=0, second=0, microsecond=0)
            if moment <= last:
                moment += HOUR
            while moment < hour:
                wanted[moment].add(user_id)
                moment += HOUR
        if not wanted:
            return 0
        by_user: dict[uuid.UUID, list[Wallet]] = defaultdict(list)
        for wallet in wallets:
            by_user[wallet.user_id].append(wallet)
        blocks = _BlockClock()
        snapshots: list[timeseries.Snapshot] = []
        for moment, hour_users in sorted(wanted.items()):
            snapshots += await self._snapshots_at(moment, hour_users, by_user, blocks)
        async with self._engine.begin() as db:
            written = await timeseries.write_snapshots(db, snapshots)
        if written:  # their history answers gained hours
            await self._cache.invalidate(users)
        log.info("back-filled %d hourly snapshots of %d users", written, len(users))
        return written

    async def _snapshots_at(
        self,
        moment: datetime,
        users: Collection[uuid.UUID],
        by_user: Mapping[uuid.UUID, Sequence[Wallet]],
        blocks: _BlockClock,
    ) -> list[timeseries.Snapshot]:
        per_chain: dict[int, set[str]] = defaultdict(set)
        for user_id in users:
            for wallet in by_user[user_id]:
                per_chain[wallet.chain_id].add(wallet.address)
        reads: dict[int, dict[str, list[Holding]]] = {}
        for chain_id, addresses in per_chain.items():
            reader = self._chains.readers[chain_id]
            try:
                block = await blocks.at(reader, moment)
                if block is None:
                    continue
                reads[chain_id] = (await reader.read(sorted(addresses), block=block)).holdings
            except Exception as exc:  # a node without that state: the hour stays a gap
                log.info("no back-fill of chain %d at %s: %s", chain_id, moment, exc)
        keys = {
            h.extra.get("price_symbol", h.symbol)
            for hs in reads.values()
            for held in hs.values()
            for h in held
        }
        async with self._engine.connect() as db:
            prices = await timeseries.prices_near(
                db, symbols=keys, moment=moment, window=timedelta(minutes=90)
            )
        snapshots = []
        for user_id in users:
            stored: list[StoredHolding] = []
            complete = True
            for wallet in by_user[user_id]:
                held = reads.get(wallet.chain_id, {}).get(wallet.address)
                if held is None:
                    complete = False
                    break
                for h in held:
                    key = h.extra.get("price_symbol", h.symbol)
                    usd = prices.get(key)
                    if h.amount and usd is None:
                        complete = False
                    price = None if usd is None else Price(key, usd, "stored", moment)
                    holding = Holding(
                        chain_id=h.chain_id,
                        wallet=h.wallet,
                        symbol=h.symbol,
                        contract=h.contract,
                        kind=h.kind,
                        category=h.category,
                        decimals=h.decimals,
                        amount=h.amount,
                        price=price,
                        block_number=h.block_number,
                    )
                    name = self._names.get(h.chain_id, str(h.chain_id))
                    stored.append(StoredHolding(holding, name, wallet.id, moment))
            if complete:  # a holding we cannot value would make the total a made-up figure
                snapshots.append(_snapshot(user_id, moment, stored))
        return snapshots

    # --- retention and the loop ---------------------------------------------------------------

    async def enforce_retention(self) -> list[str]:
        """Drop snapshot partitions past retention (plain PostgreSQL; TimescaleDB has a policy)."""
        before = self._now() - timedelta(days=self.options.retention_days)
        async with self._engine.begin() as db:
            if await timeseries.uses_timescale(db):
                return []
            if not await db.scalar(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RETENTION_LOCK}
            ):
                return []  # another worker is at it
            await timeseries.roll_up_days(db, before=before)  # the days about to be dropped
            dropped = await drop_expired_partitions(db, before=before)
        if dropped:
            log.info("retention: dropped %s", ", ".join(dropped))
        return dropped

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `interval_s` until `stop` is set, holding a fair share of shards; a
        new block brings a cycle forward (`WorkerOptions.block_poll_s`, `min_interval_s`), and
        a user whose wallets changed is refreshed at once, alone."""
        follow = self.options.block_poll_s > 0 and self.options.min_interval_s < self.interval_s
        heads = HeadWatch(self._chains, self.options.block_poll_s) if follow else None
        nudges = Nudges()
        listening = asyncio.Event()
        helpers = [asyncio.create_task(nudges.listen(self._bus, listening), name="nudges")]
        if heads is not None:
            helpers.append(asyncio.create_task(heads.run(stop), name="head-watch"))
        await _first_of(listening.wait(), helpers[0], within_s=5.0)
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
            await _first_of(*waits, within_s=until - now)


async def _first_of(*waits: Awaitable[Any], within_s: float) -> None:
    """Return when one of `waits` is done or after `within_s`; cancel the others (tasks given
    as such are left running)."""
    given = [w for w in waits if isinstance(w, asyncio.Task)]
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=max(within_s, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if task not in given:
                task.cancel()


def _snapshot(
    user_id: uuid.UUID, moment: datetime, stored: list[StoredHolding]
) -> timeseries.Snapshot:
    total, by_chain, by_asset, by_category = summarize_holdings(stored)
    return timeseries.Snapshot(
        user_id,
        moment,
        total,
        {name: v for (_cid, name), v in by_chain.items()},
        by_asset,
        by_category,
    )


class _FlowValuation:
    """Symbol, decimals and USD value of a transfer, from the refresh's own read."""

    def __init__(self, chain: ChainConfig, read: ChainHoldings) -> None:
        self._chain = chain
        self._tokens = {t.address: t for t in chain.tokens}
        self._decimals: dict[str, int] = {}
        self._prices: dict[str, Price] = {}
        for held in read.holdings.values():
            for h in held:
                self._decimals.setdefault(h.contract, h.decimals)
                if h.price is not None:
                    self._prices.setdefault(h.extra.get("price_symbol", h.symbol), h.price)

    def flow(
        self, wallet: Wallet, transfer: Transfer, sign: int, moment: datetime
    ) -> tuple[timeseries.CashFlow, tuple[str, datetime, Decimal]]:
        """The flow `transfer` is for `wallet` (sign +1 in, -1 out), valued at this refresh's
        price; and what re-valuing it at another price needs (price key, block time, units)."""
        chain = self._chain
        if transfer.contract == NATIVE:
            symbol, decimals, key = (
                chain.native_symbol,
                chain.native_decimals,
                chain.native_price_key,
            )
        else:
            token = self._tokens[transfer.contract]
            symbol, key = token.symbol, token.price_key
            decimals = self._decimals.get(transfer.contract, token.decimals or 0)
        price = self._prices.get(key)
        amount = sign * transfer.amount
        units = Decimal(amount).scaleb(-decimals)
        value = None if price is None else units * price.usd
        flow = timeseries.CashFlow(
            user_id=wallet.user_id,
            chain_id=transfer.chain_id,
            time=moment,
            symbol=symbol,
            contract=transfer.contract,
            amount=amount,
            decimals=decimals,
            value_usd=value,
            tx_hash=transfer.tx_hash,
            log_index=transfer.log_index,
            wallet_id=wallet.id,
            block_number=transfer.block_number,
        )
        return flow, (key, transfer.block_time, units)


class _BlockClock:
    """The last block at or before a moment, by binary search over block timestamps."""

    def __init__(self) -> None:
        self._times: dict[tuple[int, int], int] = {}

    async def _time(self, reader: EvmChainReader, number: int) -> int:
        key = (reader.chain.chain_id, number)
        if key not in self._times:
            block = await reader.rpc.call("eth_getBlockByNumber", [hex(number), False])
            self._times[key] = parse_quantity(block["timestamp"], reader.chain.name)
        return self._times[key]

    async def at(self, reader: EvmChainReader, moment: datetime) -> int | None:
        """The newest block with timestamp <= moment; None before the first block."""
        target = int(moment.timestamp())
        head = parse_quantity(await reader.rpc.call("eth_blockNumber", []), reader.chain.name)
        if await self._time(reader, 0) > target:
            return None
        low, high = 0, head
        while low < high:
            middle = (low + high + 1) // 2
            if await self._time(reader, middle) <= target:
                low = middle
            else:
                high = middle - 1
        return low
