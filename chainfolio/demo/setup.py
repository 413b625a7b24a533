"""Setting the demo up: its chain config, its database, the demo user's wallets, prices resumed
from the last run and the history back-filled once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.core.settings import Settings
from chainfolio.demo.history import positions_of, synthetic_history
from chainfolio.demo.market import TRACKED_WALLETS
from chainfolio.devnet import (
    DevnetDeployment,
    set_price,
)
from chainfolio.devnet.uniswap import UniswapDeployment
from chainfolio.fetchers.config import (
    ChainsConfig,
    RpcSettings,
    UniswapV2Config,
    UniswapV3Config,
)
from chainfolio.fetchers.devnet_config import (
    REVERTING_SYMBOL,
    config_from_devnet,
    devnet_chain_name,
)
from chainfolio.storage import accounts, timeseries
from chainfolio.storage import flows as flow_store
from chainfolio.storage import prices as price_store
from chainfolio.storage.holdings import current_holdings

log = logging.getLogger(__name__)


DEMO_SUBJECT = "demo"
MOVED_FEEDS = {"ETH": 8, "BTC": 8}
"""The feeds the ticker moves (key: decimals); a restart resumes them (`resume_prices`)."""


_FEED_MAX_AGE_S = 86_400


def with_uniswap(config: ChainsConfig, chain_id: int, uniswap: UniswapDeployment) -> ChainsConfig:
    """`config` with Uniswap V3 positions read (and V3/V2 pools pricing) on one chain."""
    v3 = UniswapV3Config(
        factory=uniswap.v3_factory,
        position_manager=uniswap.position_manager,
        pool_init_code_hash=uniswap.pool_init_code_hash,
    )
    v2 = UniswapV2Config(factory=uniswap.v2_factory)
    chains = [
        c.model_copy(update={"uniswap_v3": v3, "uniswap_v2": v2}) if c.chain_id == chain_id else c
        for c in config.chains
    ]
    return config.model_copy(update={"chains": chains})


def demo_config(chains: Sequence[DevnetDeployment]) -> ChainsConfig:
    """The devnet's chain config without its always-reverting test token."""
    # Local nodes answer in milliseconds: a paused one is called stale after 3 s, not 10.
    rpc = RpcSettings(timeout_s=3.0, backoff_s=1.0, backoff_max_s=10.0)
    config = config_from_devnet(chains, max_age=_FEED_MAX_AGE_S, rpc=rpc)
    return config.model_copy(
        update={
            "chains": [
                c.model_copy(
                    update={"tokens": [t for t in c.tokens if t.symbol != REVERTING_SYMBOL]}
                )
                for c in config.chains
            ]
        }
    )


def start_database(settings: Settings) -> tuple[str, Any]:
    """The configured URL, or the embedded server joined as a user (released in `close`)."""
    configured = settings.configured_database_url()
    if configured:
        return configured, None
    from chainfolio.storage.database import EmbeddedServer  # noqa: PLC0415

    server = EmbeddedServer(settings.embedded_pgdata)
    return server.acquire(keep=settings.keep_db), server


async def track_wallets(
    engine: AsyncEngine, config: ChainsConfig, chains: Sequence[DevnetDeployment], max_wallets: int
) -> tuple[uuid.UUID, dict[int, list[str]]]:
    from chainfolio.api.app import chain_infos  # noqa: PLC0415 - app imports the whole API
    from chainfolio.resolvers.wallets import add_wallet  # noqa: PLC0415

    tracked = {c.chain_id: c.wallets[:TRACKED_WALLETS] for c in chains}
    async with engine.begin() as db:
        user_id = await accounts.ensure_user(db, subject=DEMO_SUBJECT)
        have = {
            (w.chain_id, w.address.lower())
            for w in await accounts.list_wallets(db, user_id=user_id)
        }
        for chain_id, addresses in tracked.items():
            for i, address in enumerate(addresses):
                if (chain_id, address.lower()) in have:
                    continue
                await add_wallet(
                    db,
                    user_id=user_id,
                    chain_id=chain_id,
                    address=address,
                    label=f"demo {'hot' if i == 0 else 'cold'} ({devnet_chain_name(chain_id)})",
                    chains=chain_infos(config),
                    max_wallets=max_wallets,
                )
    return user_id, tracked


async def resume_prices(
    engine: AsyncEngine, user_id: uuid.UUID, chains: Sequence[DevnetDeployment]
) -> dict[str, int]:
    """Set the moved feeds of the fresh chains to the prices the demo user's holdings were last
    valued at (a restart continues the series instead of stepping back to the deployment's
    answers); return the feeds' answers."""
    async with engine.connect() as db:
        holdings = await current_holdings(db, user_id=user_id)
    last = {
        s.holding.price.symbol.upper(): s.holding.price.usd
        for s in holdings
        if s.holding.price is not None
    }
    answers = {key: chains[0].feed_answers[key] for key in MOVED_FEEDS}
    for key, decimals in MOVED_FEEDS.items():
        if key in last:
            answers[key] = int(last[key].scaleb(decimals))
            for chain in chains:
                set_price(chain, key, answers[key])
    return answers


async def backfill(
    engine: AsyncEngine, user_id: uuid.UUID, *, now: datetime, stop: asyncio.Event
) -> tuple[int, datetime | None]:
    """Write the synthetic history once per database; return the snapshots written and when
    the kept history starts."""
    async with engine.connect() as db:
        first = await timeseries.first_snapshot_time(db, user_id=user_id)
        oldest = await timeseries.oldest_snapshot_time(db, user_id=user_id)
    if first is not None and first < now - timedelta(days=1):
        log.info("demo history already present since %s: not back-filled again", oldest)
        return 0, oldest
    while True:  # the first refresh stores the holdings the history is derived from
        async with engine.connect() as db:
            holdings = await current_holdings(db, user_id=user_id)
        if holdings:  # one transaction stores every wallet of a refresh
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
        if stop.is_set():
            return 0, oldest
    history = synthetic_history(positions_of(holdings), user_id=user_id, now=now)
    async with engine.begin() as db:
        written = await timeseries.write_snapshots(db, history.snapshots)
        await price_store.write_prices(db, history.prices)
        await flow_store.write_cash_flows(db, history.flows)
        oldest = await timeseries.oldest_snapshot_time(db, user_id=user_id)
    return written, oldest
