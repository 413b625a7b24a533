"""Between cycles: the chains' heads (`HeadWatch`) and users whose wallets changed (`Nudges`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Mapping
from typing import Any

from chainfolio.bus.broadcast import WALLETS_CHANNEL, Bus
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.portfolio import ChainSet
from chainfolio.fetchers.rpc import parse_quantity

log = logging.getLogger(__name__)


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
