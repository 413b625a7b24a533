"""Cash flows end to end on the devnet: a deposit from an outside address is a net flow in
`performance`, not a gain; transfers between the user's own wallets are not flows; a reverted
chain (a reorg) takes its orphaned flows with it; a chain replaced under the worker (a
restarted devnet, a reorg deeper than the confirmation depth) records no flow for what it
holds."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus
from chainfolio.core.domain import NATIVE
from chainfolio.devnet import (
    Devnet,
    mine,
    revert,
    set_price,
    set_time,
    snapshot,
    transfer_native,
    transfer_token,
)
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import ChainSet, open_chains
from chainfolio.resolvers.performance import resolve_performance
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.flows import CashFlow, cash_flows_between
from chainfolio.worker.cycle import Worker
from chainfolio.worker.flows import flow_time
from chainfolio.worker.options import WorkerOptions
from tests.fixtures.devnet import own_time

OUTSIDE = "0x" + "cd" * 20
START = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
async def chains(devnet: Devnet) -> AsyncIterator[ChainSet]:
    async with open_chains(config_from_devnet(devnet.chains)) as opened:
        yield opened


class Clock:
    """A worker clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def user_with_wallets(engine: AsyncEngine, chain_id: int, *addresses: str) -> uuid.UUID:
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"flows-{uuid.uuid4().hex[:6]}")
        for address in addresses:
            await add_wallet(
                db, user_id=user_id, chain_id=chain_id, address=address, label=None, max_wallets=10
            )
    return user_id


async def test_deposit_is_net_flow_not_gain_and_a_reorg_drops_orphaned_flows(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    chain = restore_devnet.chain(1)
    tracked, own, outsider = chain.wallets[16], chain.wallets[17], chain.wallets[18]
    user_id = await user_with_wallets(engine, 1, tracked, own)
    start = own_time(chain, days=400)
    clock = Clock(start)
    names = {c.chain_id: c.name for c in chains.config.chains}
    async with Bus("memory://") as bus:
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await worker.refresh()  # a wallet seen for the first time starts at its balance

        before_transfers = snapshot(chain)
        set_time(chain, int((start + timedelta(minutes=40)).timestamp()))  # mined after 11:00
        transfer_native(chain, sender=outsider, to=tracked, amount=2 * 10**18)  # +6,000 USD
        transfer_token(chain, symbol="USDC", sender=outsider, to=tracked, amount=1_000 * 10**6)
        transfer_token(chain, symbol="DAI", sender=tracked, to=own, amount=10**18)  # own: none
        transfer_native(chain, sender=tracked, to=OUTSIDE, amount=10**18)  # -3,000 USD
        clock.now = start + timedelta(hours=1)
        second = await worker.refresh()
        assert second.flows >= 3  # other tests' users may track some of these addresses too

        async with engine.connect() as db:
            flows = await cash_flows_between(
                db, user_id=user_id, start=start - timedelta(hours=1), end=clock.now
            )
            view = await resolve_performance(
                db,
                user_id=user_id,
                period="24h",
                now=clock.now,
                retention_days=90,
                risk_free_rate=0.0,
            )
        async with engine.connect() as db:  # each refresh recorded the prices it used
            recorded = (
                await db.execute(
                    text("SELECT time, price FROM prices WHERE symbol = 'ETH' AND time >= :t"),
                    {"t": start.replace(second=0)},
                )
            ).all()
        assert (start, 3_000) in recorded
        assert (start + timedelta(hours=1), 3_000) in recorded
        assert len(flows) == 3  # the transfer between the user's own wallets is not one
        by_symbol = {(f.symbol, f.amount > 0): f for f in flows}
        assert by_symbol["ETH", True].amount == 2 * 10**18
        assert by_symbol["ETH", True].value_usd == 6_000
        assert by_symbol["ETH", True].contract == NATIVE
        assert by_symbol["USDC", True].value_usd == 1_000
        assert by_symbol["ETH", False].value_usd == -3_000
        # Read at 11:30 into the 11:00 snapshot: the flows count in the interval ending there.
        assert {f.time for f in flows} == {start + timedelta(minutes=30)}
        summary = view.summary
        assert summary.deposits == pytest.approx(7_000)
        assert summary.withdrawals == pytest.approx(-3_000)  # signed, as the analytics report it
        assert summary.net_flows == pytest.approx(4_000)
        assert summary.end_value - summary.start_value == pytest.approx(4_000)
        assert summary.absolute_gain == pytest.approx(0, abs=1e-6)
        assert summary.twr == pytest.approx(0, abs=1e-9)

        # The chain goes back before the transfers: their flows are orphaned and dropped.
        revert(chain, before_transfers)
        clock.now = start + timedelta(hours=2)
        third = await worker.refresh()
        assert 1 in third.rescanned_chains
        async with engine.connect() as db:
            flows = await cash_flows_between(
                db, user_id=user_id, start=start - timedelta(hours=1), end=clock.now
            )
        assert flows == []


async def test_a_flow_found_later_is_valued_at_the_price_of_its_time(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    """ETH is 3,000 USD when 1 ETH arrives and 3,300 USD when the worker next looks, 45 minutes
    later: the deposit is worth 3,000 (the price the worker stored at the transfer's time), or
    the 300 USD of price gain would be counted as deposited money."""
    chain = restore_devnet.chain(1)
    tracked, outsider = chain.wallets[13], chain.wallets[18]
    user_id = await user_with_wallets(engine, 1, tracked)
    start = own_time(chain, days=401)  # the worker's clock follows the chain's
    clock = Clock(start)
    names = {c.chain_id: c.name for c in chains.config.chains}
    async with Bus("memory://") as bus:
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await worker.refresh()  # stores ETH at 3,000 for this minute
        transfer_native(chain, sender=outsider, to=tracked, amount=10**18)
        set_price(chain, "ETH", 3_300_00000000)
        clock.now = start + timedelta(minutes=45)
        await worker.refresh()  # reads 3,300 now
    async with engine.connect() as db:
        flows = await cash_flows_between(
            db, user_id=user_id, start=start - timedelta(hours=1), end=clock.now
        )
    assert [(f.amount, f.value_usd) for f in flows] == [(10**18, 3_000)]


def test_flow_time_lands_in_the_interval_whose_snapshot_first_includes_it() -> None:
    hour = datetime(2026, 1, 1, 12, tzinfo=UTC)
    now = hour + timedelta(minutes=20)
    late = hour + timedelta(minutes=10)
    # This refresh writes the 12:00 snapshot: flows it finds belong before it.
    assert flow_time(late, last_snapshot=hour - timedelta(hours=1), hour=hour, now=now) == hour
    early = hour - timedelta(minutes=30)
    assert flow_time(early, last_snapshot=hour - timedelta(hours=1), hour=hour, now=now) == early
    # A block older than the last snapshot (clocks disagree) still counts after it.
    last = hour - timedelta(hours=1)
    assert flow_time(
        last - timedelta(hours=3), last_snapshot=last, hour=hour, now=now
    ) == last + timedelta(microseconds=1)
    # The 12:00 snapshot was already taken this hour: the flow counts after it.
    assert flow_time(early, last_snapshot=hour, hour=hour, now=now) == hour + timedelta(
        microseconds=1
    )
    assert flow_time(late, last_snapshot=hour, hour=hour, now=now) == late


async def test_a_wallet_too_far_behind_skips_the_older_blocks(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    chain = restore_devnet.chain(1)
    tracked, outsider = chain.wallets[11], chain.wallets[18]
    user_id = await user_with_wallets(engine, 1, tracked)
    clock = Clock(START)
    names = {c.chain_id: c.name for c in chains.config.chains}
    options = WorkerOptions(max_scan_blocks=3)
    async with Bus("memory://") as bus:
        worker = Worker(
            engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names, options=options
        )
        await worker.refresh()
        transfer_native(chain, sender=outsider, to=tracked, amount=10**18)  # too old to see
        mine(chain, 3)
        transfer_token(chain, symbol="USDC", sender=outsider, to=tracked, amount=10**6)
        clock.now = START + timedelta(hours=1)
        await worker.refresh()
    async with engine.connect() as db:
        flows = await cash_flows_between(db, user_id=user_id, start=START, end=clock.now)
    assert [(f.symbol, f.amount) for f in flows] == [("USDC", 10**6)]


REPLACED = "is not the chain scanned before"


def replaced_warnings(caplog: pytest.LogCaptureFixture, chain_name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if REPLACED in r.getMessage() and chain_name in r.getMessage()
    ]


async def user_flows(engine: AsyncEngine, user_id: uuid.UUID) -> list[CashFlow]:
    far = timedelta(days=3650)
    async with engine.connect() as db:
        now = datetime.now(UTC)
        return await cash_flows_between(db, user_id=user_id, start=now - far, end=now + far)


async def test_a_reorg_deeper_than_the_confirmation_depth_records_no_flows_for_the_new_chain(
    engine: AsyncEngine,
    restore_devnet: Devnet,
    chains: ChainSet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The chain goes back 20 blocks (the worker confirms at 12) and other blocks are mined,
    one with a deposit the worker never saw happen: its state is the new starting value."""
    caplog.set_level(logging.WARNING, logger="chainfolio.worker.flows")
    chain = restore_devnet.chain(1)
    tracked, outsider = chain.wallets[12], chain.wallets[18]
    user_id = await user_with_wallets(engine, 1, tracked)
    start = own_time(chain, days=402)
    clock = Clock(start)
    names = {c.chain_id: c.name for c in chains.config.chains}
    async with Bus("memory://") as bus:
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await worker.refresh()
        caplog.clear()  # other tests' reverts may have replaced the chain its anchor is on
        old = snapshot(chain)
        mine(chain, 20)
        transfer_native(chain, sender=outsider, to=tracked, amount=10**18)  # seen: a flow
        clock.now = start + timedelta(minutes=10)
        await worker.refresh()
        assert [f.amount for f in await user_flows(engine, user_id)] == [10**18]

        revert(chain, old)  # 21 blocks back, then a different history, longer than the old one
        transfer_token(chain, symbol="USDC", sender=outsider, to=tracked, amount=500 * 10**6)
        mine(chain, 30)
        clock.now = start + timedelta(minutes=20)
        report = await worker.refresh()
        assert report.rebased_chains == {1}
        assert report.rescanned_chains == {}
        # The deposit seen on the old chain stays (it was seen happening); none for the new one.
        assert [f.amount for f in await user_flows(engine, user_id)] == [10**18]
        assert len(replaced_warnings(caplog, "devnet-1")) == 1

        # The new chain is now the chain: its transfers are flows again, and no more warnings.
        transfer_token(chain, symbol="USDC", sender=outsider, to=tracked, amount=7 * 10**6)
        clock.now = start + timedelta(minutes=30)
        report = await worker.refresh()
        assert report.rebased_chains == set()
    flows = await user_flows(engine, user_id)
    assert sorted((f.symbol, f.amount) for f in flows) == [("ETH", 10**18), ("USDC", 7 * 10**6)]
    assert len(replaced_warnings(caplog, "devnet-1")) == 1


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # a failure bound, not a performance limit
    while not await check():
        assert loop.time() < deadline, f"not within 60 s: {what}"
        await asyncio.sleep(0.2)


async def test_a_devnet_restarted_under_a_running_worker_invents_no_deposits(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A chain of its own (the session's must not restart): the restarted node deploys and
    funds everything again (10,000s of USD into the tracked wallets), which is not a deposit."""
    caplog.set_level(logging.WARNING, logger="chainfolio.worker.flows")
    chain_id = 31337
    async with Devnet(chain_ids=(chain_id,), wallets=4, position_wallets=4) as devnet:
        chain = devnet.chain(chain_id)
        tracked, outsider = chain.wallets[0], chain.wallets[3]
        user_id = await user_with_wallets(engine, chain_id, tracked)
        async with (
            open_chains(config_from_devnet(devnet.chains)) as opened,
            Bus("memory://") as bus,
        ):
            names = {c.chain_id: c.name for c in opened.config.chains}
            options = WorkerOptions(block_poll_s=0)
            worker = Worker(
                engine=engine,
                bus=bus,
                chains=opened,
                clock=lambda: datetime.now(UTC),
                chain_names=names,
                interval_s=0.3,
                options=options,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop))
            try:

                async def scanned() -> bool:  # a deposit before is the wallet's starting value
                    async with engine.connect() as db:
                        return bool(
                            await db.scalar(
                                text(
                                    "SELECT count(*) FROM transfer_cursors "
                                    "JOIN wallets ON wallets.id = wallet_id WHERE user_id = :u"
                                ),
                                {"u": user_id},
                            )
                        )

                async def seen(count: int) -> bool:
                    return len(await user_flows(engine, user_id)) == count

                await _eventually(scanned, "the first scan")
                transfer_native(chain, sender=outsider, to=tracked, amount=10**17)
                await _eventually(lambda: seen(1), "the deposit before the restart")
                await asyncio.to_thread(devnet.restart, chain_id)
                name = names[chain_id]

                async def warned() -> bool:
                    return bool(replaced_warnings(caplog, name))

                await _eventually(warned, "the restart noticed")
                transfer_native(chain, sender=outsider, to=tracked, amount=2 * 10**17)
                await _eventually(lambda: seen(2), "the deposit after the restart")
            finally:
                stop.set()
                await running
    flows = await user_flows(engine, user_id)
    assert sorted(f.amount for f in flows) == [10**17, 2 * 10**17]
    assert len(replaced_warnings(caplog, name)) == 1
