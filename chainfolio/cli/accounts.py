"""`token`, `wallet` and `discover`: a user's token and wallets, and the tokens a wallet
received."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from chainfolio.api.auth import issue_token
from chainfolio.cli.startup import database_url
from chainfolio.core.settings import Settings


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
        async with open_engine(await database_url(settings), pool_size=1) as engine:
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


def add_account_commands(sub: Any, uses_db: argparse.ArgumentParser) -> None:
    """`token`, `wallet` and `discover` (read only)."""
    token = sub.add_parser("token", help="print a dev JWT (HS256, configured secret)")
    token.add_argument("--user", required=True, help="subject (user id)")
    token.add_argument("--days", type=int, default=30, help="days until the token expires")
    token.set_defaults(func=cmd_token)

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
