"""`chainfolio` command line: serve, migrate, token, wallet, discover, devnet, demo, worker,
schema, db."""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import chainfolio
from chainfolio.cli.accounts import add_account_commands
from chainfolio.cli.ops import add_ops_commands
from chainfolio.cli.services import add_service_commands
from chainfolio.cli.startup import EXIT_SETTINGS, StartupFailure, log_format_of
from chainfolio.core.errors import ChainfolioError
from chainfolio.core.logs import logging_config
from chainfolio.core.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]


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

    add_service_commands(sub, uses_db)
    add_account_commands(sub, uses_db)
    add_ops_commands(sub, uses_db)
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
        logging.config.dictConfig(logging_config(log_format_of(args, settings), level))
        return func(args, settings)
    except ChainfolioError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    except StartupFailure as exc:
        if args.verbose:
            traceback.print_exception(exc)
        print(f"chainfolio: {exc.what} (change {exc.setting})", file=sys.stderr)
        return exc.exit_code
