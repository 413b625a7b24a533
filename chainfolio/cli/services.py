"""`serve`, `migrate` and `worker`: the long-running processes and the schema they need."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from typing import Any

from chainfolio.cli.startup import check_startup, database_url, log_format_of
from chainfolio.core.logs import logging_config
from chainfolio.core.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the API with uvicorn."""
    import uvicorn  # noqa: PLC0415

    from chainfolio.api.timeouts import TimedHttpProtocol  # noqa: PLC0415

    check_startup(settings, listen=(args.host, args.port))
    if args.with_worker:  # the factory reads settings from the environment
        os.environ["CHAINFOLIO_RUN_WORKER"] = "true"
    # uvicorn shuts down gracefully on SIGTERM (requests finish, websockets get a 1012 close
    # frame), then re-raises the signal; with this handler the re-raise is a no-op and a
    # clean shutdown exits 0
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        "chainfolio.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=logging_config(log_format_of(args, settings), args.log_level),
        access_log=False,  # chainfolio.core.logs writes the access lines, with request ids
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=False,
        http=TimedHttpProtocol,  # header and body read deadlines for slow clients
        # a client that never finishes its request must not keep the process alive
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    return 0


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    """Apply database migrations."""
    check_startup(settings, services=False)
    from chainfolio.storage.database import open_engine  # noqa: PLC0415
    from chainfolio.storage.migrations import StorageOptions, migrate  # noqa: PLC0415

    async def go() -> list[int]:
        async with open_engine(await database_url(settings), pool_size=1) as engine:
            return await migrate(
                engine,
                StorageOptions(
                    settings.snapshot_retention_days, settings.snapshot_compress_after_days
                ),
            )

    applied = asyncio.run(go())
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def cmd_worker(_args: argparse.Namespace, settings: Settings) -> int:
    """Run the refresh worker until interrupted."""
    from chainfolio.api.app import running_worker  # noqa: PLC0415
    from chainfolio.bus.broadcast import Bus  # noqa: PLC0415
    from chainfolio.core.cache import open_cache  # noqa: PLC0415
    from chainfolio.fetchers.config import load_chains  # noqa: PLC0415
    from chainfolio.resolvers.context import Services  # noqa: PLC0415
    from chainfolio.storage.database import open_engine  # noqa: PLC0415
    from chainfolio.storage.migrations import migrate  # noqa: PLC0415

    check_startup(settings)
    config = load_chains(settings.chains_file, max_tokens_per_chain=settings.max_tokens_per_chain)

    async def go() -> None:
        # SIGTERM too ends the run through the context managers (and the process exits
        # normally, so it leaves the embedded database like any other user)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with (
            open_engine(await database_url(settings)) as engine,
            Bus(settings.redis_url) as bus,
            open_cache(
                settings.redis_url, ttl_s=settings.cache_ttl_s, bounds=settings.cache_bounds
            ) as cache,
        ):
            await migrate(engine)
            services = Services(settings=settings, engine=engine, chains={}, bus=bus, cache=cache)
            async with running_worker(services, config):
                await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())
    return 0


def _add_log_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log line format (default: CHAINFOLIO_LOG_FORMAT, text)",
    )


def add_service_commands(sub: Any, uses_db: argparse.ArgumentParser) -> None:
    """`serve`, `migrate` and `worker`."""
    serve = sub.add_parser(
        "serve", help="run the API (GraphQL, REST, websockets)", parents=[uses_db]
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level",
    )
    serve.add_argument("--with-worker", action="store_true", help="refresh in this process")
    _add_log_format(serve)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations", parents=[uses_db]).set_defaults(
        func=cmd_migrate
    )
    worker = sub.add_parser("worker", help="run the refresh worker", parents=[uses_db])
    _add_log_format(worker)
    worker.set_defaults(func=cmd_worker)
