"""`demo`, `devnet`, `schema` and `db`: local chains, the demo, the published schema and the
embedded database's lifecycle."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainfolio.core.errors import ChainfolioError
from chainfolio.core.settings import Settings


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


def add_ops_commands(sub: Any, uses_db: argparse.ArgumentParser) -> None:
    """`demo` and `devnet` (local chains), `schema`, and `db` (the embedded server's lifecycle)."""
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
