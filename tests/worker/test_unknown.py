"""Unknown is never zero, on a real devnet with a node stopped (SIGSTOP): a wallet added while
its chain is down is an unknown holding with the reason, its hour is a gap, not a 0; the chain
going stale and recovering is pushed; one reverting token stays token-level; the push and the
query agree on `staleChains`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus, Subscription, portfolio_channel
from chainfolio.devnet import Devnet, increase_time
from chainfolio.fetchers.config import RpcSettings
from chainfolio.fetchers.devnet_config import REVERTING_SYMBOL, config_from_devnet
from chainfolio.fetchers.portfolio import open_chains
from chainfolio.resolvers.portfolio import PortfolioView
from chainfolio.resolvers.updates import PortfolioUpdate
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.worker.cycle import Worker
from tests.fixtures.devnet import own_time
from tests.fixtures.portfolio import portfolio_both_ways
from tests.worker.test_flows import Clock

NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Short timeouts and a probe a quarter second after a failure: the test waits for conditions,
# never for a back-off.
RPC = RpcSettings(timeout_s=1.0, backoff_s=2.0, backoff_max_s=300.0, probe_max_s=0.25)


async def _user(engine: AsyncEngine, wallets: list[tuple[int, str]]) -> uuid.UUID:
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"unknown-{uuid.uuid4().hex[:6]}")
        for chain_id, address in wallets:
            await add_wallet(
                db, user_id=user_id, chain_id=chain_id, address=address, label=None, max_wallets=10
            )
    return user_id


async def _view(engine: AsyncEngine, user_id: uuid.UUID) -> PortfolioView:
    return await portfolio_both_ways(engine, user_id, NOW)


async def _snapshot_hours(engine: AsyncEngine, user_id: uuid.UUID) -> dict[datetime, Decimal]:
    """The user's snapshots, hour -> total, oldest first."""
    async with engine.connect() as db:
        rows = await db.execute(
            text(
                'SELECT "timestamp", total_value FROM portfolio_snapshots WHERE user_id = :u '
                'ORDER BY "timestamp"'
            ),
            {"u": user_id},
        )
        return {r[0]: r[1] for r in rows}


async def _snapshot_totals(engine: AsyncEngine, user_id: uuid.UUID) -> list[object]:
    async with engine.connect() as db:
        rows = await db.execute(
            text("SELECT total_value FROM portfolio_snapshots WHERE user_id = :u"), {"u": user_id}
        )
        return [r[0] for r in rows]


async def _next(updates: Subscription) -> PortfolioUpdate:
    return PortfolioUpdate.from_json(await asyncio.wait_for(updates.get(), 10))


@asynccontextmanager
async def _paused(devnet: Devnet, chain_id: int) -> AsyncIterator[None]:
    node = devnet.node(chain_id)
    node.pause()
    try:
        yield
    finally:
        node.resume()


async def test_a_wallet_added_while_its_chain_is_down_is_unknown_then_recovers(
    engine: AsyncEngine, devnet: Devnet
) -> None:
    fresh, down = devnet.chains[0], devnet.chains[1]
    user_id = await _user(
        engine, [(fresh.chain_id, fresh.wallets[13]), (down.chain_id, down.wallets[13])]
    )
    config = config_from_devnet(devnet.chains[:2], rpc=RPC)
    names = {c.chain_id: c.name for c in config.chains}
    async with (
        open_chains(config) as chains,
        Bus("memory://") as bus,
        bus.subscribe(portfolio_channel(user_id)) as updates,
    ):
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=lambda: NOW, chain_names=names)
        worker._seen.add(user_id)  # no back-fill: this test is about the live hour

        # 1. The wallet on the stopped chain was never read.
        async with _paused(devnet, down.chain_id):
            report = await worker.refresh()
        pushed = await _next(updates)
        view = await _view(engine, user_id)
        assert down.chain_id in report.stale_chains
        assert view.stale
        assert view.stale_chains == pushed.stale_chains == (down.chain_id,)
        (unread,) = [s for s in view.holdings if s.holding.chain_id == down.chain_id]
        assert unread.chain_stale
        assert unread.holding.stale
        assert unread.holding.amount is None
        assert unread.holding.value_usd is None
        assert unread.holding.error
        assert "all RPC URLs failed" in unread.holding.error
        assert view.incomplete
        assert pushed.incomplete
        assert pushed.total_value == view.total_value > 0  # the fresh chain's value alone
        values = {c.chain_id: c.value for c in view.chains}
        assert values[down.chain_id] is None  # unknown, not 0
        assert values[fresh.chain_id] == view.total_value
        assert await _snapshot_totals(engine, user_id) == []  # the hour is a gap, not a total
        assert report.gaps >= 1

        # 2. The node answers again: read at the next refresh (the breaker probes it), the
        # hour gets its snapshot, the push says the chain is fresh.
        await asyncio.sleep(RPC.probe_max_s)
        report = await worker.refresh()
        recovered = await _next(updates)
        view = await _view(engine, user_id)
        assert report.stale_chains == {}
        assert view.stale_chains == recovered.stale_chains == ()
        assert not view.stale
        native = next(
            s.holding
            for s in view.holdings
            if s.holding.chain_id == down.chain_id and s.holding.contract == "native"
        )
        assert native.amount is not None
        assert native.amount > 0
        assert not native.stale
        assert native.error is None
        assert recovered.total_value == view.total_value > pushed.total_value
        assert await _snapshot_totals(engine, user_id) == [view.total_value]

        # 3. One reverting token on a fresh chain: its holding carries the error, the chain
        # stays fresh in the query and in the push.
        broken = [s for s in view.holdings if s.holding.symbol == REVERTING_SYMBOL]
        assert broken
        for stored in broken:
            assert stored.holding.amount is None
            assert stored.holding.error
            assert not stored.chain_stale
        assert view.incomplete
        assert recovered.incomplete

        # 4. The chain goes stale again, then recovers: both changes are pushed.
        async with _paused(devnet, down.chain_id):
            await worker.refresh()
        gone = await _next(updates)
        assert gone.stale_chains == (down.chain_id,)
        assert gone.holdings
        assert all(h.stale for h in gone.holdings)
        assert {h.chain_id for h in gone.holdings} == {down.chain_id}
        assert gone.total_value == recovered.total_value  # last known values, not zero
        await asyncio.sleep(RPC.probe_max_s)
        await worker.refresh()
        back = await _next(updates)
        assert back.stale_chains == ()
        assert back.holdings
        assert not any(h.stale for h in back.holdings)
        view = await _view(engine, user_id)
        assert view.stale_chains == back.stale_chains
        assert back.total_value == view.total_value


async def test_an_hour_left_a_gap_is_back_filled_once_the_chain_answers(
    engine: AsyncEngine, restore_devnet: Devnet
) -> None:
    fresh, down = restore_devnet.chains[0], restore_devnet.chains[1]
    start = own_time(fresh, days=405)
    own_time(down, days=405)  # both chains on the worker's clock
    user_id = await _user(
        engine, [(fresh.chain_id, fresh.wallets[16]), (down.chain_id, down.wallets[16])]
    )
    # feeds answer for days: the hours here are priced from the stored prices, not stale feeds
    config = config_from_devnet(restore_devnet.chains[:2], rpc=RPC, max_age=10 * 86_400)
    names = {c.chain_id: c.name for c in config.chains}
    clock = Clock(start)
    hour0 = start.replace(minute=0)
    async with open_chains(config) as chains, Bus("memory://") as bus:
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await worker.refresh()  # hour 0: both chains read
        for chain in (fresh, down):
            increase_time(chain, 3_600)
        clock.now = start + HOUR
        async with _paused(restore_devnet, down.chain_id):
            gap = await worker.refresh()  # hour 1: a chain unread, no snapshot
        assert gap.gaps >= 1  # (other tests' users on the stopped chain too)
        assert list(await _snapshot_hours(engine, user_id)) == [hour0]
        for chain in (fresh, down):
            increase_time(chain, 3_600)
        clock.now = start + 2 * HOUR
        await asyncio.sleep(RPC.probe_max_s)
        back = await worker.refresh()  # hour 2: read again, and hour 1 back-filled
    assert back.stale_chains == {}
    assert back.backfilled >= 1
    series = await _snapshot_hours(engine, user_id)
    assert list(series) == [hour0, hour0 + HOUR, hour0 + 2 * HOUR]
    # nothing moved: the back-filled hour holds what the wallets held (at hour 0's prices)
    assert series[hour0 + HOUR] == series[hour0]
