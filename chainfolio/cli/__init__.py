"""`chainfolio` command line: serve, migrate, token, wallet, discover, devnet, demo, worker,
schema, db."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import logging.config
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import chainfolio
from chainfolio.api.auth import issue_token
from chainfolio.core.errors import ChainfolioError
from chainfolio.core.logs import LogFormat, logging_config
from chainfolio.core.settings import Settings


class StartupFailure(Exception):
    """A startup failure the user can fix: what failed, the setting to change, an exit code."""

    def __init__(self, what: str, setting: str, exit_code: int) -> None:
        super().__init__(what)
        self.what = what
        self.setting = setting
        self.exit_code = exit_code


# Exit codes of startup failures (docs/API.md, "Command line"); 2 stays argparse's and errors'.
EXIT_SETTINGS = 9
EXIT_DATABASE_UNREACHABLE = 10
EXIT_DATABASE_AUTH = 11
EXIT_DATABASE_MISSING = 12
EXIT_REDIS_UNREACHABLE = 13
EXIT_CHAINS_FILE = 14
EXIT_JWKS_URL = 15
EXIT_PORT_IN_USE = 16
_CHECK_TIMEOUT_S = 5.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _check_chains(settings: Settings) -> None:
    from chainfolio.fetchers.config import load_chains  # noqa: PLC0415

    try:
        load_chains(settings.chains_file, max_tokens_per_chain=settings.max_tokens_per_chain)
    except (OSError, ValueError, ChainfolioError) as exc:  # TOML/JSON syntax errors are both
        raise StartupFailure(
            f"chains file {settings.chains_file} is unusable: {_first_line(exc)}",
            "CHAINFOLIO_CHAINS_FILE",
            EXIT_CHAINS_FILE,
        ) from exc


def _check_port(host: str, port: int) -> None:
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartupFailure(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "--port (or --host)",
                EXIT_PORT_IN_USE,
            ) from exc


async def _check_database(url: str) -> None:
    import asyncpg  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    from chainfolio.storage.database import to_asyncpg_dsn, to_sqlalchemy_url  # noqa: PLC0415

    parsed = make_url(to_sqlalchemy_url(url)).set(drivername="postgresql")
    shown = parsed.render_as_string(hide_password=True)
    setting = "CHAINFOLIO_DATABASE_URL"
    try:
        conn = await asyncpg.connect(to_asyncpg_dsn(url), timeout=_CHECK_TIMEOUT_S)
    except asyncpg.InvalidCatalogNameError as exc:
        what = f"database missing at {shown}: {_first_line(exc)}"
        raise StartupFailure(what, setting, EXIT_DATABASE_MISSING) from exc
    except (
        asyncpg.InvalidPasswordError,
        asyncpg.InvalidAuthorizationSpecificationError,
    ) as exc:
        what = f"database refused the login at {shown}: {_first_line(exc)}"
        raise StartupFailure(what, setting, EXIT_DATABASE_AUTH) from exc
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        what = f"database unreachable at {shown}: {_first_line(exc)}"
        raise StartupFailure(what, setting, EXIT_DATABASE_UNREACHABLE) from exc
    await conn.close()


async def _check_redis(url: str) -> None:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return
    import redis.asyncio  # noqa: PLC0415

    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=_CHECK_TIMEOUT_S)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        what = f"Redis unreachable at {url}: {_first_line(exc)}"
        raise StartupFailure(what, "CHAINFOLIO_REDIS_URL", EXIT_REDIS_UNREACHABLE) from exc
    finally:
        await client.aclose()


async def _check_jwks(url: str | None) -> None:
    if url is None:
        return
    import httpx  # noqa: PLC0415

    setting = "CHAINFOLIO_JWT_JWKS_URL"
    try:
        async with httpx.AsyncClient(timeout=_CHECK_TIMEOUT_S) as client:
            response = await client.get(url)
            response.raise_for_status()
            keys = response.json().get("keys")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        what = f"JWKS URL {url} gives no key set: {_first_line(exc)}"
        raise StartupFailure(what, setting, EXIT_JWKS_URL) from exc
    if not isinstance(keys, list):
        what = f'JWKS URL {url} gives no key set: the document has no "keys" list'
        raise StartupFailure(what, setting, EXIT_JWKS_URL)


def check_startup(
    settings: Settings, *, listen: tuple[str, int] | None = None, services: bool = True
) -> None:
    """Fail early, with one plain line, on what a user can get wrong: the chains file, the
    port, the database, Redis and the JWKS URL (`StartupFailure`)."""
    if services:
        _check_chains(settings)
    if listen is not None:
        _check_port(*listen)

    async def reachable() -> None:
        configured = settings.configured_database_url()
        if configured:  # the embedded server is started (and its failures told) later
            await _check_database(configured)
        if services:
            await _check_redis(settings.redis_url)
            await _check_jwks(settings.jwt_jwks_url)

    asyncio.run(reachable())


async def _database_url(settings: Settings) -> str:
    from chainfolio.storage.database import resolve_database_url  # noqa: PLC0415

    return await resolve_database_url(
        settings.configured_database_url(), settings.embedded_pgdata, keep=settings.keep_db
    )


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
    # A full garbage collection walks every live object: 0.5 to 1.4 s with 10,000 websockets,
    # a pause in every client's updates that made the fan-out p99 (docs/BENCHMARKS.md). Ten
    # times rarer (every 100 middle-generation collections instead of 10); CPython still also
    # waits until the long-lived objects grew by 25 %.
    gc.set_threshold(*gc.get_threshold()[:2], 100)
    uvicorn.run(
        "chainfolio.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=logging_config(_log_format(args, settings), args.log_level),
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
        async with open_engine(await _database_url(settings), pool_size=1) as engine:
            return await migrate(
                engine,
                StorageOptions(
                    settings.snapshot_retention_days, settings.snapshot_compress_after_days
                ),
            )

    applied = asyncio.run(go())
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print a dev JWT for a user."""
    from datetime import timedelta  # noqa: PLC0415

    print(issue_token(settings, subject=args.user, ttl=timedelta(days=args.days)))
    return 0


def cmd_wallet(args: argparse.Namespace, settings: Settings) -> int:
    """Add, list or remove wallets of a user."""
    from chainfolio.api.app import chain_infos  # noqa: PLC0415
    from chainfolio.bus.broadcast import Bus  # noqa: PLC0415
    from chainfolio.core.cache import open_cache  # noqa: PLC0415
    from chainfolio.fetchers.config import load_chains  # noqa: PLC0415
    from chainfolio.resolvers import wallets  # noqa: PLC0415
    from chainfolio.resolvers.context import Services  # noqa: PLC0415
    from chainfolio.storage import accounts  # noqa: PLC0415
    from chainfolio.storage.database import open_engine  # noqa: PLC0415
    from chainfolio.storage.migrations import migrate  # noqa: PLC0415

    async def go() -> None:
        async with open_engine(await _database_url(settings), pool_size=1) as engine:
            await migrate(engine)
            async with engine.begin() as db:
                user_id = await accounts.ensure_user(db, subject=args.user)
                if args.action == "add":
                    row = await wallets.add_wallet(
                        db,
                        user_id=user_id,
                        chain_id=args.chain_id,
                        address=args.address,
                        label=args.label,
                        chains=chain_infos(
                            load_chains(
                                settings.chains_file,
                                max_tokens_per_chain=settings.max_tokens_per_chain,
                            )
                        ),
                        max_wallets=settings.max_wallets_per_user,
                    )
                    print(f"{row.id}\t{row.chain_id}\t{row.address}\t{row.label or ''}")
                elif args.action == "remove":
                    await wallets.remove_wallet(db, user_id=user_id, wallet_id=args.wallet_id)
                    print(f"removed {args.wallet_id}")
                else:
                    for row in await accounts.list_wallets(db, user_id=user_id):
                        print(f"{row.id}\t{row.chain_id}\t{row.address}\t{row.label or ''}")
            if args.action in {"add", "remove"}:
                # committed: drop the user's cached answers and ask a worker to refresh them
                # now (both reach other processes when they share Redis; otherwise the cache
                # of a running API ends with its TTL and the worker's next cycle reads them)
                async with (
                    open_cache(
                        settings.redis_url, ttl_s=settings.cache_ttl_s, bounds=settings.cache_bounds
                    ) as cache,
                    Bus(settings.redis_url) as bus,
                ):
                    services = Services(
                        settings=settings, engine=engine, chains={}, bus=bus, cache=cache
                    )
                    await services.changed(user_id, wallets=True)

    asyncio.run(go())
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
            open_engine(await _database_url(settings)) as engine,
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo: database, local chains, worker, API, history and live changes."""
    from chainfolio.demo import DemoOptions, run_demo  # noqa: PLC0415

    chain_ids = tuple(int(c) for c in args.chains.split(",") if c.strip())
    options = DemoOptions(
        host=args.host, port=args.port, chain_ids=chain_ids, tick_s=args.tick, json_path=args.json
    )
    return run_demo(settings, options)


def cmd_devnet(args: argparse.Namespace, _settings: Settings) -> int:
    """Run local Hardhat chains: `python -m chainfolio.devnet` with the same options."""
    from chainfolio.devnet.__main__ import main as devnet_main  # noqa: PLC0415 - slow import

    devnet_argv: list[str] = args.devnet_argv
    return devnet_main(devnet_argv, prog="chainfolio devnet")


def cmd_schema(_args: argparse.Namespace, _settings: Settings) -> int:
    """Print the GraphQL schema (SDL): `chainfolio schema > schema.graphql`."""
    from chainfolio.schema import build_schema  # noqa: PLC0415

    print(build_schema().as_str())
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Start, stop, inspect, dump or restore the database (the embedded one unless configured)."""
    from chainfolio.storage.database import (  # noqa: PLC0415
        EmbeddedServer,
        dump_database,
        restore_database,
    )

    configured = settings.configured_database_url()
    server = EmbeddedServer(settings.embedded_pgdata)
    action: str = args.action
    if configured and action in {"start", "stop", "status"}:
        raise ChainfolioError(
            "CHAINFOLIO_DATABASE_URL is set: chainfolio does not run that server",
            code="EXTERNAL_DATABASE",
        )
    if action == "start":
        print(server.start(keep=True))
    elif action == "stop":
        stopped = server.stop(force=args.force)
        print(f"stopped ({server.pgdata})" if stopped else f"not running ({server.pgdata})")
    elif action == "status":
        status = server.status()
        users = ", ".join(map(str, status.users)) or "none"
        print(
            f"{'running' if status.running else 'stopped'}\n  data dir  {status.pgdata}\n"
            + (f"  pid       {status.pid}\n  url       {status.url}\n" if status.running else "")
            + f"  used by   {users}{' (kept: db start)' if status.kept else ''}"
        )
        return 0 if status.running else 3  # like pg_ctl status
    else:
        url = configured or server.url()
        if url is None:
            raise ChainfolioError(
                f"the embedded PostgreSQL in {server.pgdata} is not running: chainfolio db start",
                code="DATABASE_STOPPED",
            )
        if action == "url":
            print(url)
        elif action == "dump":
            dump_database(url, args.file)
            print(f"dumped to {args.file}")
        else:
            restore_database(url, args.file)
            print(f"restored from {args.file}")
    return 0


def progress_bar(scanned: int, total: int, *, width: int = 30) -> str:
    """`[#######-------]  45%  450,000/1,000,000 blocks`."""
    done = width * scanned // total if total else width
    share = 100 * scanned // total if total else 100
    return f"[{'#' * done}{'-' * (width - done)}] {share:3d}%  {scanned:,}/{total:,} blocks"


def cmd_discover(args: argparse.Namespace, settings: Settings) -> int:
    """Scan a wallet's Transfer logs for the tokens it received (read only, nothing stored)."""
    from chainfolio.fetchers.config import load_chains  # noqa: PLC0415
    from chainfolio.fetchers.discovery import discover_tokens  # noqa: PLC0415
    from chainfolio.fetchers.portfolio import open_chains, validate_wallet  # noqa: PLC0415
    from chainfolio.fetchers.spam import inspect_tokens  # noqa: PLC0415

    config = load_chains(settings.chains_file, max_tokens_per_chain=settings.max_tokens_per_chain)
    _, wallet = validate_wallet(config, chain_id=args.chain_id, address=args.address)
    blocks = args.blocks or config.discovery.initial_blocks

    async def report(scanned: int, total: int) -> None:
        print(f"\r{progress_bar(scanned, total)}", end="", file=sys.stderr, flush=True)

    async def go() -> None:
        async with open_chains(config) as chains:
            reader = chains.reader(args.chain_id)
            head = int(await reader.rpc.call("eth_blockNumber", []), 16)
            scan = await discover_tokens(
                reader.rpc,
                wallets=[wallet],
                first_block=max(0, head - blocks + 1),
                last_block=head,
                max_range=args.max_range or config.discovery.max_range_blocks,
                on_progress=report,
            )
            print(file=sys.stderr)
            known = reader.known_contracts()
            new = [c for c in scan.candidates if c.contract not in known]
            first = {c.contract: c.first_block for c in new}
            for meta, spam in await inspect_tokens(reader, new) if new else []:
                notes = "; ".join(n for n in (meta.unreadable, spam and f"spam: {spam}") if n)
                decimals = "" if meta.decimals is None else meta.decimals
                print(
                    f"{meta.address}\t{meta.display_symbol}\t{meta.name or ''}\t{decimals}\t"
                    f"{first[meta.address]}\t{notes}"
                )
            print(
                f"{len(new)} tokens beyond the configured and listed ones "
                f"({len(scan.candidates) - len(new)} known), {scan.log_queries} log queries",
                file=sys.stderr,
            )

    asyncio.run(go())
    return 0


Command = Callable[[argparse.Namespace, Settings], int]


def _log_format(args: argparse.Namespace, settings: Settings) -> LogFormat:
    chosen: LogFormat | None = getattr(args, "log_format", None)
    return chosen or settings.log_format


class _DefaultsShown(argparse.HelpFormatter):
    """Help that ends with each option's default, when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and not action.required
            and action.default not in (None, argparse.SUPPRESS)
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults (sub-command parsers are of this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(*args, **kwargs)


def _add_discover_command(sub: Any) -> None:
    """`discover`: a wallet's received tokens, read only."""
    discover = sub.add_parser(
        "discover", help="find the tokens a wallet received (Transfer logs; nothing stored)"
    )
    discover.add_argument("--chain-id", type=int, required=True, help="the wallet's chain id")
    discover.add_argument("--address", required=True, help="the wallet's address (0x…)")
    discover.add_argument("--blocks", type=int, help="blocks back from the head (default: config)")
    discover.add_argument(
        "--max-range", type=int, help="widest eth_getLogs range (default: config)"
    )
    discover.set_defaults(func=cmd_discover)


def _add_ops_commands(sub: Any) -> None:
    """`schema` and `db`: the published contract and the embedded server's lifecycle."""
    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(func=cmd_schema)
    db = sub.add_parser(
        "db",
        help="the embedded PostgreSQL: start | stop | status | url | dump FILE | restore FILE",
        description="Processes using the embedded server stop it when the last one exits, "
        "unless run with --keep-db; `db start` keeps it running until `db stop`. "
        "url, dump and restore also work on a configured CHAINFOLIO_DATABASE_URL.",
    )
    dsub = db.add_subparsers(dest="action", required=True)
    dsub.add_parser("start", help="start it and keep it running until `db stop`")
    dstop = dsub.add_parser("stop", help="stop it (refused while chainfolio processes use it)")
    dstop.add_argument("--force", action="store_true", help="stop it even while in use")
    dsub.add_parser("status", help="running or not, data dir, URL, processes using it")
    dsub.add_parser("url", help='print the connection URL (psql "$(chainfolio db url)")')
    dsub.add_parser("dump", help="write a pg_dump (custom format)").add_argument(
        "file", type=Path, help="the dump file to write"
    )
    restore = dsub.add_parser("restore", help="replace the database with a dump")
    restore.add_argument("file", type=Path, help="a dump written by `db dump`")
    db.set_defaults(func=cmd_db)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = _Parser(prog="chainfolio", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logs; tracebacks of startup failures"
    )
    parser.add_argument(
        "--version", action="version", version=f"chainfolio {chainfolio.__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # every command that opens the database: the embedded server's lifetime
    uses_db = _Parser(add_help=False)
    uses_db.add_argument(
        "--keep-db",
        action="store_true",
        help="leave the embedded PostgreSQL running when this is its last process to exit",
    )

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
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log line format (default: CHAINFOLIO_LOG_FORMAT, text)",
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations", parents=[uses_db]).set_defaults(
        func=cmd_migrate
    )
    worker = sub.add_parser("worker", help="run the refresh worker", parents=[uses_db])
    worker.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log line format (default: CHAINFOLIO_LOG_FORMAT, text)",
    )
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="print a dev JWT (HS256, configured secret)")
    token.add_argument("--user", required=True, help="subject (user id)")
    token.add_argument("--days", type=int, default=30, help="days until the token expires")
    token.set_defaults(func=cmd_token)

    demo = sub.add_parser(
        "demo", help="run the demo: local chains, history, live dashboard", parents=[uses_db]
    )
    demo.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    demo.add_argument("--port", type=int, default=8000, help="port the API listens on")
    demo.add_argument("--chains", default="1,137,42161", help="devnet chain ids, comma-separated")
    demo.add_argument(
        "--tick", type=float, default=5.0, help="seconds between live changes (0: none)"
    )
    demo.add_argument(
        "--json", type=Path, help="also write the URL, token and chains to this file (default: no)"
    )
    demo.set_defaults(func=cmd_demo)

    # Its options belong to `python -m chainfolio.devnet`, which parses them (and --help).
    devnet = sub.add_parser(
        "devnet",
        help="run local Hardhat chains with tokens, feeds, a vault and a lending market",
        add_help=False,
    )
    devnet.set_defaults(func=cmd_devnet)

    _add_discover_command(sub)
    wallet = sub.add_parser("wallet", help="manage a user's wallets", parents=[uses_db])
    wsub = wallet.add_subparsers(dest="action", required=True)
    add = wsub.add_parser("add", help="track a wallet")
    add.add_argument("--user", required=True, help="subject (user id)")
    add.add_argument("--chain-id", type=int, required=True, help="EVM chain id of the wallet")
    add.add_argument("--address", required=True, help="0x address (checksum or lowercase)")
    add.add_argument("--label", help="a name shown with the wallet (default: none)")
    lst = wsub.add_parser("list", help="list the user's wallets (id, chain, address, label)")
    lst.add_argument("--user", required=True, help="subject (user id)")
    rm = wsub.add_parser("remove", help="stop tracking a wallet")
    rm.add_argument("--user", required=True, help="subject (user id)")
    rm.add_argument("wallet_id", help="the id `wallet list` shows")
    wallet.set_defaults(func=cmd_wallet)

    _add_ops_commands(sub)
    return parser


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop every command, whatever this process inherited: a shell starts
    `chainfolio … &` with SIGINT ignored, and Python then installs no handler of its own."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `chainfolio` console script."""
    _stop_on_signals()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "devnet":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.devnet_argv = extra
    if getattr(args, "keep_db", False):  # serve's app factory reads settings from the environment
        os.environ["CHAINFOLIO_KEEP_DB"] = "true"
    func: Command = args.func
    try:
        try:
            settings = Settings()
        except ValueError as exc:  # pydantic's ValidationError: a CHAINFOLIO_* value is wrong
            what = f"invalid setting: {' '.join(str(exc).split())}"
            raise StartupFailure(what, "the CHAINFOLIO_* variable named", EXIT_SETTINGS) from exc
        level = "DEBUG" if args.verbose else "INFO"
        logging.config.dictConfig(logging_config(_log_format(args, settings), level))
        return func(args, settings)
    except ChainfolioError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    except StartupFailure as exc:
        if args.verbose:
            traceback.print_exception(exc)
        print(f"chainfolio: {exc.what} (change {exc.setting})", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
