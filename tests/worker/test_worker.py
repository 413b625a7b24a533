"""The refresh worker on a real devnet, real PostgreSQL and the bus: exact amounts, updates
on change, one snapshot per user per hour, stale (never zero) when a chain stops answering."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.core.cache import MemoryCache
from chainfolio.devnet import Devnet, transfer_token, web3_for
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import ChainSet, open_chains
from chainfolio.resolvers.updates import PortfolioUpdate
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.holdings import current_holdings
from chainfolio.worker.cycle import Worker

ERC20_BALANCE_OF = "0x70a08231"


@pytest.fixture(scope="module")
async def chains(devnet: Devnet) -> AsyncIterator[ChainSet]:
    async with open_chains(config_from_devnet(devnet.chains)) as opened:
        yield opened


def fixed_clock() -> datetime:
    return datetime(2026, 11, 27, 10, 30, tzinfo=UTC)


async def _user_with_wallets(engine: AsyncEngine, devnet: Devnet, index: int) -> uuid.UUID:
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"worker-{uuid.uuid4().hex[:6]}")
        for chain in devnet.chains[:2]:
            await add_wallet(
                db,
                user_id=user_id,
                chain_id=chain.chain_id,
                address=chain.wallets[index],
                label=None,
                max_wallets=10,
            )
    return user_id


async def test_refresh_stores_exact_amounts_publishes_and_snapshots_once(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    devnet = restore_devnet
    user_id = await _user_with_wallets(engine, devnet, index=3)
    async with Bus("memory://") as bus, bus.subscribe(portfolio_channel(user_id)) as updates:
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=fixed_clock, chain_names=names)
        report = await worker.refresh()
        assert report.stale_chains == {}
        first = PortfolioUpdate.from_json(await asyncio.wait_for(updates.get(), 5))
        assert first.total_value > 0

        chain = devnet.chains[0]
        wallet = chain.wallets[3]
        w3 = web3_for(chain)
        async with engine.connect() as db:
            stored = await current_holdings(db, user_id=user_id)
        on_chain_1 = [s.holding for s in stored if s.holding.chain_id == chain.chain_id]
        block = report.blocks[chain.chain_id]
        native = next(h for h in on_chain_1 if h.contract == "native")
        assert native.amount == w3.eth.get_balance(wallet, block_identifier=block)
        for symbol, token in chain.tokens.items():
            held = next(
                h for h in on_chain_1 if h.symbol == symbol and h.category.value == "WALLET"
            )
            raw = w3.eth.call(
                {"to": token.address, "data": ERC20_BALANCE_OF + wallet[2:].lower().rjust(64, "0")},
                block_identifier=block,
            )
            assert held.amount == int.from_bytes(raw, "big"), symbol
            assert held.decimals == token.decimals

        usdc = chain.tokens["USDC"]
        transfer_token(chain, symbol="USDC", sender=wallet, to="0x" + "99" * 20, amount=123_456_789)
        await worker.refresh()
        second = PortfolioUpdate.from_json(await asyncio.wait_for(updates.get(), 5))
        changed = {(h.chain_id, h.asset) for h in second.holdings}
        assert (chain.chain_id, "USDC") in changed
        async with engine.connect() as db:
            after = await current_holdings(db, user_id=user_id)
        new_usdc = next(
            s.holding
            for s in after
            if s.holding.chain_id == chain.chain_id
            and s.holding.contract == usdc.address
            and s.holding.category.value == "WALLET"
        )
        old_usdc = next(
            h for h in on_chain_1 if h.contract == usdc.address and h.category.value == "WALLET"
        )
        assert new_usdc.amount == old_usdc.amount - 123_456_789  # type: ignore[operator]

        await worker.refresh()  # same hour: no second snapshot, nothing changed: no update
        assert updates._queue.empty()
    async with engine.connect() as db:
        count = await db.scalar(
            text("SELECT count(*) FROM portfolio_snapshots WHERE user_id = :u"), {"u": user_id}
        )
    assert count == 1


async def test_paused_chain_is_stale_never_zero(engine: AsyncEngine, devnet: Devnet) -> None:
    user_id = await _user_with_wallets(engine, devnet, index=5)
    # its own RPC state: the paused node's back-off must not outlive this test
    async with Bus("memory://") as bus, open_chains(config_from_devnet(devnet.chains)) as chains:
        worker = Worker(
            engine=engine,
            bus=bus,
            chains=chains,
            clock=fixed_clock,
            chain_names={c.chain_id: c.name for c in chains.config.chains},
        )
        await worker.refresh()
        async with engine.connect() as db:
            before = {
                (s.holding.chain_id, s.holding.contract, s.holding.category): s.holding.amount
                for s in await current_holdings(db, user_id=user_id)
            }
        paused = devnet.chains[1].chain_id
        node = devnet.node(paused)
        node.pause()
        try:
            report = await asyncio.wait_for(worker.refresh(), 120)
        finally:
            node.resume()
    assert paused in report.stale_chains
    async with engine.connect() as db:
        after = await current_holdings(db, user_id=user_id)
    for stored in after:
        key = (stored.holding.chain_id, stored.holding.contract, stored.holding.category)
        assert stored.holding.amount == before[key]  # last known, not zero
        if stored.holding.chain_id == paused:
            assert stored.holding.stale
            assert stored.holding.error
        elif stored.holding.amount is not None:  # the always-reverting token stays unknown
            assert not stored.holding.stale


async def test_refresh_drops_the_cached_answers_of_its_users(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    user_id = await _user_with_wallets(engine, restore_devnet, index=4)
    bystander = uuid.uuid4()  # holds no wallet this worker refreshes
    cache = MemoryCache()
    now = fixed_clock()
    for user in (user_id, bystander):
        _, generation = await cache.lookup(user, "portfolio", now)
        assert await cache.store(user, "portfolio", b"old", generation, now + timedelta(minutes=9))
    # a reader that looked up before the refresh and stores after it must not keep its answer
    _, in_flight = await cache.lookup(user_id, "allocation", now)
    async with Bus("memory://") as bus, bus.subscribe(portfolio_channel(user_id)) as updates:
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(
            engine=engine, bus=bus, chains=chains, clock=fixed_clock, chain_names=names, cache=cache
        )
        await worker.refresh()
        await asyncio.wait_for(updates.get(), 5)
    assert (await cache.lookup(user_id, "portfolio", now))[0] is None
    assert not await cache.store(user_id, "allocation", b"x", in_flight, now + timedelta(hours=1))
    assert (await cache.lookup(bystander, "portfolio", now))[0] == b"old"


async def test_answers_read_between_the_push_and_the_snapshot_are_dropped_too(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    """The hour's snapshot is written after the update is published: a `history` read by a
    client reacting to the push misses that hour, so the worker drops the answers again."""
    user_id = await _user_with_wallets(engine, restore_devnet, index=5)
    cache = MemoryCache()
    now = fixed_clock()
    seen: list[object] = []
    async with Bus("memory://") as bus, bus.subscribe(portfolio_channel(user_id)) as updates:

        async def client_reacting_to_the_push() -> None:
            await updates.get()
            seen.append((await cache.lookup(user_id, "history", now))[1])

        reader = asyncio.create_task(client_reacting_to_the_push())
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(
            engine=engine, bus=bus, chains=chains, clock=fixed_clock, chain_names=names, cache=cache
        )
        report = await worker.refresh()
        await asyncio.wait_for(reader, 5)
    assert report.snapshots == 1
    stale = b"history without this hour"
    assert not await cache.store(user_id, "history", stale, seen[0], now + timedelta(minutes=9))
