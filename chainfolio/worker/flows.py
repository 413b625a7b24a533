"""Cash flows: transfers in and out of tracked wallets, found by scanning the blocks since
each wallet's cursor, valued at the price nearest their block's time. The tokens scanned are
the configured ones, the listed ones and each wallet's discovered ones (priced by address): a
token the wallet was sent unasked is a deposit, never a gain.

A transfer with another tracked wallet of the same user, or with a configured vault or lending
market (positions the portfolio already counts), is not a flow. A flow is dated by its block,
moved into the snapshot interval whose value first includes it (`flow_time`).

Every transfer of a tracked wallet is also an asset movement (P&L's history; `movements`
values both), with its kind: external, own (another wallet of the user), wrap (native value
into a tracked token) or position (a vault or lending market); a wallet seen for the first
time gets opening movements of what it holds, valued at this refresh's prices.

Flows are only transfers the scan saw happen. Each chain has an anchor, the block the
confirmation depth (`WorkerOptions.reorg_depth`) below the last scanned head: a cursor whose
block was replaced above a surviving anchor is a reorg, rescanned (its orphaned flows dropped);
a node that no longer has the anchor, or reports another chain id, serves another chain (a
restarted devnet, a node pointed elsewhere, a reorg deeper than the confirmation depth). Then
the chain's cursors are re-based at its head and the state found there is the starting value,
as for a wallet seen the first time; flows stored before are kept, warned about once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.fetchers.portfolio import ChainHoldings, ChainSet, ChainState
from chainfolio.fetchers.transfers import block_hashes, scan_transfers
from chainfolio.storage import flows as stored_flows
from chainfolio.storage import prices as stored_prices
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.movements import AssetMovement
from chainfolio.worker.discovery import DiscoveryPlan
from chainfolio.worker.movements import FlowValuation, movement_kind, opening_movements
from chainfolio.worker.options import WorkerOptions

log = logging.getLogger(__name__)

FLOW_PRICE_WINDOW = timedelta(minutes=90)  # as the back-fill's: a stored price this near
_TICK = timedelta(microseconds=1)


@dataclass(slots=True)
class ChainFlows:
    """What scanning one chain produced, written in the refresh's transaction."""

    flows: list[stored_flows.CashFlow] = field(default_factory=list)
    pricing: list[tuple[str, datetime, Decimal]] = field(default_factory=list)
    """Per flow: its price key, its block's time and its signed amount in units."""
    movements: list[AssetMovement] = field(default_factory=list)
    movement_pricing: list[tuple[str, datetime, Decimal]] = field(default_factory=list)
    """Per movement, as `pricing` (units unsigned: a movement's value is)."""
    openings: list[AssetMovement] = field(default_factory=list)
    """What wallets seen for the first time hold, at this refresh's prices."""
    cursors: list[stored_flows.TransferCursor] = field(default_factory=list)
    orphaned_after: dict[int, list[uuid.UUID]] = field(default_factory=dict)
    """Block -> wallets whose stored flows above that block a reorg orphaned."""
    rescan_from: int | None = None
    anchor: stored_flows.ChainAnchor | None = None
    rebased: bool = False
    """The node serves another chain than the one scanned before: cursors moved to its head."""


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


class FlowScanner:
    """Finds and values the cash flows of a cycle's wallets (one scan per chain)."""

    def __init__(self, *, engine: AsyncEngine, chains: ChainSet, options: WorkerOptions) -> None:
        self._engine = engine
        self._chains = chains
        self.options = options
        self._replaced: dict[int, str] = {}
        """Chains warned about as replaced, with why (warned again only for another reason)."""

    async def detect(
        self,
        wallets: Sequence[Wallet],
        chains: Mapping[int, ChainHoldings],
        last_snapshots: Mapping[uuid.UUID, datetime],
        hour: datetime,
        now: datetime,
        *,
        plan: DiscoveryPlan | None = None,
    ) -> dict[int, ChainFlows]:
        """Each chain's flows since its wallets' cursors. The wallets' discovered tokens
        (`plan`) are scanned and valued like configured ones; a token `plan` keeps out of a
        user's totals (hidden, spam) gives that user no flow: it adds nothing to the value."""
        by_chain: dict[int, list[Wallet]] = defaultdict(list)
        for wallet in wallets:
            chain = chains[wallet.chain_id]
            if chain.status.state is ChainState.OK and chain.status.block_number is not None:
                by_chain[wallet.chain_id].append(wallet)
        async with self._engine.connect() as db:
            cursors = await stored_flows.transfer_cursors(db, wallet_ids=[w.id for w in wallets])
            anchors = await stored_flows.chain_anchors(db, chain_ids=list(by_chain))
        chain_ids = list(by_chain)
        results = await asyncio.gather(
            *(
                self._chain_flows(
                    chain_id,
                    by_chain[chain_id],
                    chains[chain_id],
                    cursors,
                    anchors.get(chain_id),
                    last_snapshots,
                    hour,
                    now,
                    plan or DiscoveryPlan(),
                )
                for chain_id in chain_ids
            ),
            return_exceptions=True,
        )
        scans: dict[int, ChainFlows] = {}
        for chain_id, result in zip(chain_ids, results, strict=True):
            if isinstance(result, BaseException):
                # Cursors stay put: the same blocks are scanned again next cycle.
                log.warning("transfer scan of chain %d failed: %s", chain_id, result)
                continue
            scans[chain_id] = result
        await self._value_at_block_time(scans, now)
        return scans

    async def _value_at_block_time(self, scans: Mapping[int, ChainFlows], now: datetime) -> None:
        """Value each flow at the price nearest its block's time: a price stored by an earlier
        refresh (one per minute) when it is nearer than this refresh's own read, taken at
        `now` — a transfer found after a restart or a long scan is valued at its time, not at
        today's price. Nothing stored within `FLOW_PRICE_WINDOW`: this refresh's price."""
        wanted = {
            (key, at)
            for scan in scans.values()
            for key, at, _ in (*scan.pricing, *scan.movement_pricing)
        }
        if not wanted:
            return
        async with self._engine.connect() as db:
            stored = await stored_prices.prices_nearest(db, wanted, window=FLOW_PRICE_WINDOW)
        for scan in scans.values():
            for i, (key, at, units) in enumerate(scan.pricing):
                found = stored.get((key, at))
                if found is None:
                    continue
                stored_at, usd = found
                if scan.flows[i].value_usd is not None and abs(now - at) <= abs(stored_at - at):
                    continue
                scan.flows[i] = replace(scan.flows[i], value_usd=units * usd)
            for i, (key, at, units) in enumerate(scan.movement_pricing):
                found = stored.get((key, at))
                move = scan.movements[i]
                if found is None or (
                    move.value_usd is not None and abs(now - at) <= abs(found[0] - at)
                ):
                    continue
                scan.movements[i] = move._replace(price_usd=found[1], value_usd=units * found[1])

    async def _chain_flows(  # noqa: PLR0917 - one chain's share of a cycle
        self,
        chain_id: int,
        wallets: Sequence[Wallet],
        read: ChainHoldings,
        cursors: Mapping[uuid.UUID, stored_flows.TransferCursor],
        anchor: stored_flows.ChainAnchor | None,
        last_snapshots: Mapping[uuid.UUID, datetime],
        hour: datetime,
        now: datetime,
        plan: DiscoveryPlan,
    ) -> ChainFlows:
        reader = self._chains.readers[chain_id]
        head = read.status.block_number
        assert head is not None
        confirmed = max(head - self.options.reorg_depth, 0)
        known = {cursors[w.id].block_number for w in wallets if w.id in cursors}
        if anchor is not None:
            known.add(anchor.block_number)
        hashes = await block_hashes(reader.rpc, {head, confirmed} | {b for b in known if b <= head})
        node_chain_id = int(await reader.rpc.call("eth_chainId", []), 16)
        result = ChainFlows()
        # first sight: what a wallet holds now is its starting value (and P&L's opening)
        result.openings = [
            m for w in wallets if w.id not in cursors for m in opening_movements(w, read, head, now)
        ]
        confirmed_hash = hashes.get(confirmed)
        if confirmed_hash is not None:
            result.anchor = stored_flows.ChainAnchor(chain_id, confirmed, confirmed_hash)
        result.cursors = [
            stored_flows.TransferCursor(w.id, chain_id, head, hashes.get(head)) for w in wallets
        ]
        replaced = _replaced_because(chain_id, node_chain_id, anchor, hashes, head)
        if replaced is not None:
            result.rebased = True
            if any(w.id in cursors for w in wallets) and self._replaced.get(chain_id) != replaced:
                log.warning(
                    "chain %s (%d) is not the chain scanned before: %s; its transfer cursors "
                    "start again at block %d and no flows are recorded for what it holds",
                    reader.chain.name,
                    chain_id,
                    replaced,
                    head,
                )
            self._replaced[chain_id] = replaced
            return result
        self._replaced.pop(chain_id, None)
        starts = self._starts(chain_id, wallets, cursors, hashes, head, result)
        scanned = [w for w in wallets if w.id in starts and starts[w.id] < head]
        if scanned:
            chain = reader.chain
            # Configured, listed and discovered tokens alike: a token the wallet received
            # unasked is a deposit, never a gain.
            discovered = [t for w in wallets for t in plan.tokens.get((chain_id, w.address), ())]
            tracked = [t for t in (*chain.tokens, *reader.listed, *discovered) if not t.spam]
            scan = await scan_transfers(
                reader.rpc,
                chain_id=chain_id,
                tokens=list(dict.fromkeys(t.address for t in tracked)),
                wallets=[w.address for w in scanned],
                first_block=min(starts[w.id] for w in scanned) + 1,
                last_block=head,
                limits=self.options.scan,
            )
            valuation = FlowValuation(chain, read, tracked)
            # Counterparties that make a transfer internal, per user: the user's own wallets,
            # and the vaults and lending markets whose positions the portfolio already counts.
            internal = {v.address.lower() for v in chain.vaults}
            internal |= {m.address.lower() for m in chain.lending}
            own: dict[uuid.UUID, set[str]] = defaultdict(set)
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
                        kind = movement_kind(
                            transfer, counterparty, own[wallet.user_id], internal, wrappers
                        )
                        move, move_pricing = valuation.movement(
                            wallet, transfer, sign, kind, counterparty
                        )
                        result.movements.append(move)
                        result.movement_pricing.append(move_pricing)
                        excluded = plan.excluded.get(wallet.user_id, {})
                        if kind != "external" or (chain_id, transfer.contract) in excluded:
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
        return result

    def _starts(  # noqa: PLR0917 - one chain's share of a cycle
        self,
        chain_id: int,
        wallets: Sequence[Wallet],
        cursors: Mapping[uuid.UUID, stored_flows.TransferCursor],
        hashes: Mapping[int, str | None],
        head: int,
        result: ChainFlows,
    ) -> dict[uuid.UUID, int]:
        """The last block already scanned, per wallet with a cursor; a cursor a reorg replaced
        goes back the confirmation depth, and its flows above that are marked orphaned."""
        starts: dict[uuid.UUID, int] = {}
        for wallet in wallets:
            cursor = cursors.get(wallet.id)
            if cursor is None:  # first sight: what it holds now is its starting value
                continue
            start = cursor.block_number
            moved = cursor.block_hash is not None and hashes.get(start) != cursor.block_hash
            if start > head or moved:  # a reorg above the anchor
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
        return starts


def _replaced_because(
    chain_id: int,
    node_chain_id: int,
    anchor: stored_flows.ChainAnchor | None,
    hashes: Mapping[int, str | None],
    head: int,
) -> str | None:
    """Why the node serves another chain than the one scanned before; None if it does not."""
    if node_chain_id != chain_id:
        return f"the node reports chain id {node_chain_id}"
    if anchor is None:
        return None
    if anchor.block_number > head:
        return f"its head {head} is below block {anchor.block_number}, taken as final"
    if hashes.get(anchor.block_number) != anchor.block_hash:
        return f"block {anchor.block_number}, taken as final, was replaced"
    return None
