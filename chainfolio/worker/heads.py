"""Between cycles: the chains' heads (`HeadWatch`) and users whose wallets changed (`Nudges`).

Each new head is looked into at once: the wallets its blocks touched (a transaction sent or
receiving value, a `Transfer` log from or to them) are re-read right away, alone — block mined
to update pushed in about a head poll — while the full cycle keeps its pace for prices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from chainfolio.bus.broadcast import WALLETS_CHANNEL, Bus
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.portfolio import ChainSet
from chainfolio.fetchers.rpc import EndpointFailure, RpcConnection, RpcError, parse_quantity
from chainfolio.fetchers.transfers import TRANSFER_TOPIC

log = logging.getLogger(__name__)


MAX_TOUCHED_BLOCKS = 20
"""A head further ahead than this is not looked into block by block: the full cycle reads it."""

Tracked = Mapping[int, Mapping[str, Collection[uuid.UUID]]]
"""Chain id → lower-case wallet address → the users tracking it."""


class HeadWatch:
    """The chains' heads between cycles: `moved` is set while some chain's head is past the
    block the last cycle read on it (chains the last cycle did not read are not watched).

    With `touched` given, the users whose `tracked()` wallets a new block touched are added to
    it as soon as the block is seen."""

    def __init__(
        self,
        chains: ChainSet,
        poll_s: float,
        touched: Nudges | None = None,
        tracked: Callable[[], Tracked] = dict,
    ) -> None:
        self._readers = chains.readers
        self._poll_s = poll_s
        self._read: dict[int, int] = {}
        self._heads: dict[int, int] = {}
        self._looked: dict[int, int] = {}  # the last block looked into for touched wallets
        self._tracked = tracked
        self._touched = touched
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
            if self._touched is not None:
                await self._look_into_new_blocks(self._touched)
            self.polls += 1
            self._update()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._poll_s)

    async def _look_into_new_blocks(self, touched: Nudges) -> None:
        """Add the users of wallets the blocks since the last look touched; one chain failing
        is left to the full cycle."""
        tracked = self._tracked()
        for chain_id, head in self._heads.items():
            wallets = tracked.get(chain_id)
            if not wallets:  # nothing to look for: start from the head once there is
                self._looked.pop(chain_id, None)
                continue
            looked = self._looked.get(chain_id)
            self._looked[chain_id] = head
            if looked is None or head <= looked:
                continue
            first = max(looked + 1, head - MAX_TOUCHED_BLOCKS + 1)
            try:
                hit = await touched_wallets(self._readers[chain_id], wallets, first, head)
            except Exception as exc:  # the next full cycle reads these wallets anyway
                log.debug(
                    "looking into blocks %d-%d of chain %s failed: %s", first, head, chain_id, exc
                )
                continue
            users = {user for address in hit for user in wallets[address]}
            if users:
                touched.add(users)


async def touched_wallets(
    reader: EvmChainReader, wallets: Collection[str], first: int, last: int
) -> set[str]:
    """Which of `wallets` (lower-case) blocks `first`..`last` touched: the sender of any
    transaction (gas), the recipient of value, either side of a `Transfer` log."""
    tracked = set(wallets)

    async def work(connection: RpcConnection) -> set[str]:
        blocks = range(first, last + 1)
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getBlockByNumber", [hex(n), True]) for n in blocks
        ]
        calls.append(
            (
                "eth_getLogs",
                [{"fromBlock": hex(first), "toBlock": hex(last), "topics": [TRANSFER_TOPIC]}],
            )
        )
        *found_blocks, logs = await connection.batch(calls)
        hit: set[str] = set()
        for block in found_blocks:
            if not isinstance(block, dict):
                raise EndpointFailure(f"{connection.url}: a new block is missing")
            for tx in block.get("transactions") or []:
                sender = str(tx.get("from", "")).lower()
                recipient = str(tx.get("to") or "").lower()
                hit |= {sender, recipient} & tracked
        if isinstance(logs, RpcError):
            raise logs
        for entry in logs if isinstance(logs, list) else []:
            topics = entry.get("topics") or []
            hit |= {"0x" + t[-40:].lower() for t in topics[1:3]} & tracked
        return hit

    return await reader.rpc.run(work)


class Nudges:
    """Users whose wallets changed, from `WALLETS_CHANNEL`: refreshed between cycles."""

    def __init__(self) -> None:
        self.users: set[uuid.UUID] = set()
        self.arrived = asyncio.Event()

    def add(self, users: Collection[uuid.UUID]) -> None:
        """Ask for these users to be refreshed now."""
        self.users |= set(users)
        self.arrived.set()

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
                    user = uuid.UUID(message)
                except ValueError:
                    log.warning("ignoring %r on %s: not a user id", message[:80], WALLETS_CHANNEL)
                    continue
                self.add([user])


async def first_of(*waits: Awaitable[Any], within_s: float) -> None:
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
