"""Between cycles: the worker follows the chains' heads (a new block on a chain it reads brings
the next cycle forward, never sooner than `min_interval_s`), and refreshes a user whose wallets
the API changed at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.core.settings import Settings
from chainfolio.devnet import Devnet, mine, transfer_native, web3_for
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import ChainSet, open_chains
from chainfolio.resolvers.context import Services
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.worker.cycle import Worker
from chainfolio.worker.heads import HeadWatch
from chainfolio.worker.options import WorkerOptions
from tests.worker.test_flows import user_with_wallets

HOUR_S = 3600.0  # the refresh interval here: any update sooner came from a new block


@pytest.fixture(scope="module")
async def chains(devnet: Devnet) -> AsyncIterator[ChainSet]:
    async with open_chains(config_from_devnet(devnet.chains[:2])) as opened:
        yield opened


def _hourly_worker(
    engine: AsyncEngine, bus: Bus, chains: ChainSet, options: WorkerOptions
) -> Worker:
    """A worker on the wall clock whose cycles are an hour apart."""
    return Worker(
        engine=engine,
        bus=bus,
        chains=chains,
        clock=lambda: datetime.now(UTC),
        chain_names={c.chain_id: c.name for c in chains.config.chains},
        interval_s=HOUR_S,
        options=options,
    )


async def _polled(heads: HeadWatch, after: int) -> None:
    while heads.polls <= after:  # noqa: ASYNC110 - waits for the watcher's next poll
        await asyncio.sleep(0.01)


async def test_head_watch_sets_moved_past_the_blocks_a_cycle_read(
    restore_devnet: Devnet, chains: ChainSet
) -> None:
    first, second = restore_devnet.chains[:2]
    heads = HeadWatch(chains, poll_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(heads.run(stop))
    try:
        await asyncio.wait_for(_polled(heads, 0), 10)
        assert not heads.moved.is_set()  # no cycle has read anything: nothing is watched
        read = {
            first.chain_id: web3_for(first).eth.block_number,
            second.chain_id: web3_for(second).eth.block_number,
        }
        heads.cycle_read({first.chain_id: read[first.chain_id]})
        mine(second)  # a chain the last cycle did not read: not a reason to refresh
        await asyncio.wait_for(_polled(heads, heads.polls), 10)
        assert not heads.moved.is_set()

        mine(first)
        await asyncio.wait_for(heads.moved.wait(), 10)
        heads.cycle_read({first.chain_id: read[first.chain_id] + 1})  # the next cycle read it
        assert not heads.moved.is_set()
        heads.cycle_read({first.chain_id: read[first.chain_id]})  # an older read: moved again
        assert heads.moved.is_set()
    finally:
        stop.set()
        await task


async def test_a_transfer_is_pushed_at_the_next_block_not_the_next_interval(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    chain = restore_devnet.chain(1)
    wallet = chain.wallets[6]
    user_id = await user_with_wallets(engine, 1, wallet)
    options = WorkerOptions(block_poll_s=0.05, min_interval_s=0.2, backfill_hours=0)
    async with Bus("memory://") as bus, bus.subscribe(portfolio_channel(user_id)) as updates:
        worker = _hourly_worker(engine, bus, chains, options)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            first = orjson.loads(await asyncio.wait_for(updates.get(), 60))  # the first cycle
            transfer_native(chain, sender=wallet, to="0x" + "78" * 20, amount=10**18)
            # Within the hour-long interval, only the new block can have started this cycle.
            moved = orjson.loads(await asyncio.wait_for(updates.get(), 60))
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    change = float(moved["totalValue"]) - float(first["totalValue"])
    assert change == pytest.approx(-3000, abs=5)  # 1 ETH at the devnet's 3,000 USD, and gas


async def test_a_wallet_added_through_the_api_is_refreshed_at_once(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    # No block following and an hour-long interval. The first wallet may be valued by the
    # first cycle or by the nudge; the second, added after that, only by the nudge.
    chain = restore_devnet.chain(1)
    options = WorkerOptions(block_poll_s=0, backfill_hours=0)
    async with Bus("memory://") as bus:
        services = Services(settings=Settings(), engine=engine, chains={}, bus=bus)
        worker = _hourly_worker(engine, bus, chains, options)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        totals = []
        try:
            async with engine.begin() as db:
                user_id = await ensure_user(db, subject=f"nudge-{uuid.uuid4().hex[:6]}")
            async with bus.subscribe(portfolio_channel(user_id)) as updates:
                for address in (chain.wallets[8], chain.wallets[10]):
                    async with engine.begin() as db:  # what POST /v1/wallets does, then:
                        await add_wallet(
                            db,
                            user_id=user_id,
                            chain_id=1,
                            address=address,
                            label=None,
                            max_wallets=5,
                        )
                    await services.changed(user_id, wallets=True)
                    update = orjson.loads(await asyncio.wait_for(updates.get(), 60))
                    totals.append(float(update["totalValue"]))
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    assert 0 < totals[0] < totals[1]
