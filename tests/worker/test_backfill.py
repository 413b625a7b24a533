"""Back-fill on start: a worker that was down for hours fills the missed hourly snapshots from
balances at the block nearest each hour (Hardhat serves historic state), valued with the prices
stored nearest that hour; the withdrawals it finds meanwhile keep performance flow-neutral."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus
from chainfolio.devnet import Devnet, increase_time, set_price, transfer_native, web3_for
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import ChainSet, open_chains
from chainfolio.resolvers.performance import resolve_performance
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.worker.cycle import Worker
from tests.fixtures.devnet import own_time
from tests.worker.test_flows import Clock, user_with_wallets

OUTSIDE = "0x" + "ef" * 20
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
async def chains(devnet: Devnet) -> AsyncIterator[ChainSet]:
    async with open_chains(config_from_devnet(devnet.chains[:1])) as opened:
        yield opened


async def test_restart_backfills_missed_hours_at_historic_blocks(
    engine: AsyncEngine, restore_devnet: Devnet, chains: ChainSet
) -> None:
    chain = restore_devnet.chain(1)
    wallet = chain.wallets[19]
    user_id = await user_with_wallets(engine, 1, wallet)
    w3 = web3_for(chain)
    started = own_time(chain, days=402)  # the worker's clock follows the chain's
    clock = Clock(started)
    names = {1: chain_name(chains)}
    async with Bus("memory://") as bus:
        first = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await first.refresh()  # then the worker is down for three hours
        for _ in range(2):
            increase_time(chain, 3_600)
            transfer_native(chain, sender=wallet, to=OUTSIDE, amount=10**18)  # -3,000 USD
        increase_time(chain, 3_600)
        for feed, answer in chain.feed_answers.items():  # fresh rounds: feeds are not stale
            set_price(chain, feed, answer)
        start_hour = started.replace(minute=0, second=0, microsecond=0)
        now = datetime.fromtimestamp(w3.eth.get_block("latest")["timestamp"], UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        missed = []
        moment = start_hour + HOUR
        while moment < hour:
            missed.append(moment)
            moment += HOUR
        assert len(missed) >= 2
        async with engine.begin() as db:  # other workers kept recording prices meanwhile
            rows = await db.execute(
                text("SELECT symbol, price, source FROM prices WHERE time = :t"),
                {"t": started.replace(second=0, microsecond=0)},
            )
            observed = list(rows)
            assert observed
            await write_prices(
                db, [PricePoint(m, s, Decimal(p), src) for m in missed for s, p, src in observed]
            )

        clock.now = now
        restarted = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        report = await restarted.refresh()
        again = await restarted.refresh()  # back-fill happens once per user and worker
    assert report.flows >= 2  # the two withdrawals (other tests' users may add theirs)
    assert again.backfilled == 0
    series = await snapshot_series(engine, user_id)
    async with engine.connect() as db:
        view = await resolve_performance(
            db, user_id=user_id, period="24h", now=now, retention_days=90, risk_free_rate=0.0
        )
    assert list(series) == [start_hour, *missed, hour]
    base = series[start_hour]
    # Each back-filled hour holds what the wallet had at the block nearest it.
    assert series[start_hour + HOUR] == base
    assert series[start_hour + 2 * HOUR] == base - 3_000
    assert series[hour] == base - 6_000
    summary = view.summary
    assert summary.net_flows == pytest.approx(-6_000)
    assert summary.absolute_gain == pytest.approx(0, abs=1e-6)


def chain_name(chains: ChainSet) -> str:
    """The devnet chain 1's configured name."""
    return chains.config.chains[0].name


async def snapshot_series(engine: AsyncEngine, user_id: uuid.UUID) -> dict[datetime, Decimal]:
    """The user's stored snapshots: hour -> total value, oldest first."""
    async with engine.connect() as db:
        rows = await db.execute(
            text(
                'SELECT "timestamp", total_value FROM portfolio_snapshots '
                'WHERE user_id = :u ORDER BY "timestamp"'
            ),
            {"u": user_id},
        )
        return dict(rows.all())
