"""A new block's touched wallets are re-read at once: with full cycles an hour apart and a new
block unable to bring one forward, a token arriving at a tracked wallet (a `Transfer` log,
sent by someone else) is pushed at the next head poll, to its user only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.devnet import Devnet, mint_token
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import open_chains
from chainfolio.worker.cycle import Worker
from chainfolio.worker.options import WorkerOptions
from tests.worker.test_flows import user_with_wallets

HOUR_S = 3600.0


async def test_a_token_arriving_is_pushed_at_the_next_head_not_the_next_cycle(
    engine: AsyncEngine, restore_devnet: Devnet
) -> None:
    chain = restore_devnet.chain(1)
    receiver = await user_with_wallets(engine, 1, chain.wallets[14])
    bystander = await user_with_wallets(engine, 1, chain.wallets[15])
    # A new block may bring a full cycle forward only after 50 minutes: not in this test.
    options = WorkerOptions(block_poll_s=0.05, min_interval_s=HOUR_S - 600, backfill_hours=0)
    async with (
        open_chains(config_from_devnet([chain])) as chains,
        Bus("memory://") as bus,
        bus.subscribe(portfolio_channel(receiver)) as updates,
        bus.subscribe(portfolio_channel(bystander)) as others,
    ):
        worker = Worker(
            engine=engine,
            bus=bus,
            chains=chains,
            clock=lambda: datetime.now(UTC),
            chain_names={1: chains.config.chains[0].name},
            interval_s=HOUR_S,
            options=options,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            first = orjson.loads(await asyncio.wait_for(updates.get(), 60))  # the first cycle
            await asyncio.wait_for(others.get(), 60)
            mint_token(chain, symbol="USDC", to=chain.wallets[14], amount=250 * 10**6)
            moved = orjson.loads(await asyncio.wait_for(updates.get(), 60))
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    assert float(moved["totalValue"]) - float(first["totalValue"]) == 250  # USDC at 1 USD
    (changed,) = moved["holdings"]
    assert (changed["asset"], changed["amount"]) == (
        "USDC",
        str(chain.token_balances[chain.wallets[14]]["USDC"] + 250 * 10**6),
    )
    assert others._queue.empty()  # the bystander's wallet was not touched: not re-read, no push
