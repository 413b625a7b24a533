"""Back-fill: snapshots for the hours a user missed (a restart, a shard taken over), from
balances read at the block nearest each hour, valued with the prices stored nearest that hour;
an hour without such a block, state or prices stays a gap (no interpolation).

Discovered tokens are read as the live cycle reads them, and counted as it counts them: hidden
and spam ones in no total, one priced by address that never had a price (no pool above the
floor) in no total either — the live totals left it out too; one that had prices but none
near the hour makes the hour a gap."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.core.cache import AnswerCache
from chainfolio.core.domain import Holding, Price
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.portfolio import ChainSet
from chainfolio.fetchers.prices import parse_address_key
from chainfolio.fetchers.rpc import parse_quantity
from chainfolio.storage import prices as price_store
from chainfolio.storage import timeseries
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.holdings import StoredHolding
from chainfolio.storage.market import known_symbols
from chainfolio.worker.discovery import DiscoveryPlan
from chainfolio.worker.snapshots import HOUR, snapshot_of

log = logging.getLogger(__name__)


class Backfill:
    """Fills the hours users missed, at most `hours` back."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        chains: ChainSet,
        chain_names: Mapping[int, str],
        hours: int,
        cache: AnswerCache,
    ) -> None:
        self._engine = engine
        self._chains = chains
        self._names = chain_names
        self._hours = hours
        self._cache = cache

    async def run(
        self,
        wallets: Sequence[Wallet],
        users: Collection[uuid.UUID],
        last_snapshots: Mapping[uuid.UUID, datetime],
        hour: datetime,
        *,
        plan: DiscoveryPlan | None = None,
    ) -> int:
        """Snapshots for the hours each user missed, from balances at historic blocks
        (with the wallets' discovered tokens, what `plan` keeps out of totals left out)."""
        oldest = hour - self._hours * HOUR
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
        blocks = BlockClock()
        snapshots: list[timeseries.Snapshot] = []
        for moment, hour_users in sorted(wanted.items()):
            snapshots += await self._snapshots_at(
                moment, hour_users, by_user, blocks, plan or DiscoveryPlan()
            )
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
        blocks: BlockClock,
        plan: DiscoveryPlan,
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
                found = {a: plan.tokens.get((chain_id, a), ()) for a in addresses}
                read = await reader.read(sorted(addresses), block=block, discovered=found)
                reads[chain_id] = read.holdings
            except Exception as exc:  # a node without that state: the hour stays a gap
                log.info("no back-fill of chain %d at %s: %s", chain_id, moment, exc)
        keys = {
            h.extra.get("price_symbol", h.symbol)
            for hs in reads.values()
            for held in hs.values()
            for h in held
        }
        async with self._engine.connect() as db:
            prices = await price_store.prices_near(
                db, symbols=keys, moment=moment, window=timedelta(minutes=90)
            )
            by_address = {k for k in keys - prices.keys() if parse_address_key(k) is not None}
            never_priced = by_address - await known_symbols(db, symbols=sorted(by_address))
        snapshots = []
        for user_id in users:
            stored: list[StoredHolding] = []
            complete = True
            excluded = plan.excluded.get(user_id, {})
            for wallet in by_user[user_id]:
                held = reads.get(wallet.chain_id, {}).get(wallet.address)
                if held is None:
                    complete = False
                    break
                for h in held:
                    key = h.extra.get("price_symbol", h.symbol)
                    if (h.chain_id, h.contract) in excluded or key in never_priced:
                        continue  # in no live total either
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
                snapshots.append(snapshot_of(user_id, moment, stored))
        return snapshots


class BlockClock:
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
