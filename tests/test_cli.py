"""The `chainfolio` command line as real processes against the session database."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import chainfolio as chainfolio_package
from chainfolio.cli import build_parser
from chainfolio.core.cache import RedisCache
from chainfolio.storage.accounts import user_id_for
from tests.fixtures.redis import RedisServer
from tests.servers import free_port


def chainfolio(
    *args: str, database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_DATA_DIR": str(data_dir),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "chainfolio", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_migrate_on_a_current_schema_changes_nothing(database_url: str, tmp_path: Path) -> None:
    done = chainfolio("migrate", database_url=database_url, data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "schema is up to date"


def test_wallet_add_list_remove(database_url: str, tmp_path: Path) -> None:
    user = f"cli-{uuid.uuid4().hex[:8]}"
    lowercase = "0xd8da6bf26964af9d7eed9e03e53415d37aa96045"
    checksum = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return chainfolio("wallet", *args, database_url=database_url, data_dir=tmp_path)

    added = run("add", "--user", user, "--chain-id", "1", "--address", lowercase, "--label", "cold")
    assert added.returncode == 0, added.stderr
    wallet_id, chain_id, address, label = added.stdout.strip().split("\t")
    assert (chain_id, address, label) == ("1", checksum, "cold")

    listed = run("list", "--user", user)
    assert listed.stdout.strip().split("\t") == [wallet_id, "1", checksum, "cold"]
    assert run("list", "--user", f"{user}-other").stdout == ""  # users never share wallets

    duplicate = run("add", "--user", user, "--chain-id", "1", "--address", checksum)
    assert duplicate.returncode == 2
    assert duplicate.stderr.startswith("error (DUPLICATE_WALLET):")

    removed = run("remove", "--user", user, wallet_id)
    assert removed.stdout.strip() == f"removed {wallet_id}"
    assert run("list", "--user", user).stdout == ""


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96046", "INVALID_ADDRESS"),  # bad checksum
        ("0x" + "zz" * 20, "INVALID_ADDRESS"),
    ],
    ids=["wrong-checksum", "not-hex"],
)
def test_wallet_add_rejects_bad_addresses(
    database_url: str, tmp_path: Path, address: str, code: str
) -> None:
    done = chainfolio(
        "wallet",
        "add",
        "--user",
        "cli-bad",
        "--chain-id",
        "1",
        "--address",
        address,
        database_url=database_url,
        data_dir=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error ({code}):"), done.stderr


def test_unknown_options_are_refused(database_url: str, tmp_path: Path) -> None:
    done = chainfolio(
        "token", "--user", "x", "--bogus", database_url=database_url, data_dir=tmp_path
    )
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stderr


async def test_wallet_changes_drop_the_users_cached_answers(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    user = f"cli-cache-{uuid.uuid4().hex[:8]}"
    user_id = user_id_for(user)
    cache = RedisCache(redis_server.url)
    now = datetime.now(UTC)
    try:
        _, generation = await cache.lookup(user_id, "portfolio", now)
        assert await cache.store(user_id, "portfolio", b"old", generation, now + timedelta(hours=1))
        added = await asyncio.to_thread(
            chainfolio,
            "wallet",
            *("add", "--user", user, "--chain-id", "1", "--address", "0x" + "ab" * 20),
            database_url=database_url,
            data_dir=tmp_path,
            extra_env={"CHAINFOLIO_REDIS_URL": redis_server.url},
        )
        assert added.returncode == 0, added.stderr
        assert (await cache.lookup(user_id, "portfolio", now))[0] is None
    finally:
        await cache.aclose()


def _ignoring_stop_signals() -> None:  # what `cmd &` in a script hands its children
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _answers(rpc_url: str) -> bool:
    try:
        with urllib.request.urlopen(rpc_url, data=b"{}", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _stopped_by(
    signum: signal.Signals, args: list[str], ready: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Start `chainfolio *args` with SIGINT and SIGTERM ignored, send `signum` once it printed
    a line containing `ready`, and return how it ended."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chainfolio", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ignoring_stop_signals,  # noqa: PLW1509 - no threads to deadlock here
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if ready in line:
                break
        else:
            pytest.fail(f"chainfolio {args[0]} did not start (exit {process.wait()}):{seen}")
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=60)  # a failure bound, not a performance limit
        return subprocess.CompletedProcess(args, process.returncode, "".join(seen) + rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_devnet_stops_on_a_signal_it_inherited_ignored(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """`chainfolio devnet` and its Hardhat node stop on Ctrl-C / SIGTERM although started with
    both ignored."""
    json_path = tmp_path / "devnet.json"
    args = ["devnet", "--chain-id", "1", "--wallets", "1", "--json", str(json_path)]
    done = _stopped_by(signum, args, "devnet ready")
    assert done.returncode == 0, done.stdout
    assert "stopping devnet" in done.stdout
    rpc_url = json.loads(json_path.read_text())[0]["rpc_url"]
    assert not _answers(rpc_url)  # the node is gone with it


def test_the_worker_stops_on_sigint_it_inherited_ignored(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    env = {
        **os.environ,
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_DATA_DIR": str(tmp_path),
        "CHAINFOLIO_REDIS_URL": redis_server.url,
    }
    done = _stopped_by(signal.SIGINT, ["worker"], "refresh", env)
    assert done.returncode == 0, done.stdout


def _options(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from ((f"{name} {o}", a) for o, a in _options(child))
        elif not isinstance(action, argparse._HelpAction):
            yield "/".join(action.option_strings) or action.dest, action


def test_every_option_has_help_and_shows_its_default() -> None:
    parser = build_parser()
    for name, action in _options(parser):
        assert action.help, f"{name} has no help text"
        if action.option_strings and not action.required and action.default != argparse.SUPPRESS:
            formatter = parser._get_formatter()
            shown = formatter._expand_help(action)
            assert "default:" in shown, f"{name}: {shown!r} does not show its default"
    devnet = subprocess.run(
        [sys.executable, "-m", "chainfolio", "devnet", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--chain-id", "--wallets", "--extra-tokens", "--json"):
        described = devnet[devnet.rindex(option) :].split("\n  --", 1)[0]
        assert "default:" in described, described


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


STARTUP_CASES = {
    "database-unreachable": (
        {"CHAINFOLIO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"},
        10,
        ["database unreachable at", "127.0.0.1:1", "CHAINFOLIO_DATABASE_URL"],
    ),
    "database-auth": (
        {"CHAINFOLIO_DATABASE_URL": "postgresql://no_such_role_fc@127.0.0.1:5432/postgres"},
        11,
        ["database refused the login", "CHAINFOLIO_DATABASE_URL"],
    ),
    "database-missing": (
        {"CHAINFOLIO_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/no_such_db_fc"},
        12,
        ["database missing at", "no_such_db_fc", "CHAINFOLIO_DATABASE_URL"],
    ),
    "redis-unreachable": (
        {"CHAINFOLIO_REDIS_URL": "redis://127.0.0.1:1/0"},
        13,
        ["Redis unreachable at redis://127.0.0.1:1/0", "CHAINFOLIO_REDIS_URL"],
    ),
    "bad-chains-file": (
        {"CHAINFOLIO_CHAINS_FILE": "{tmp}/chains.toml"},
        14,
        ["chains file", "chains.toml", "CHAINFOLIO_CHAINS_FILE"],
    ),
    "bad-jwks-url": (
        {"CHAINFOLIO_JWT_JWKS_URL": "http://127.0.0.1:1/jwks.json"},
        15,
        ["JWKS URL http://127.0.0.1:1/jwks.json", "CHAINFOLIO_JWT_JWKS_URL"],
    ),
    "port-in-use": ({}, 16, ["cannot listen on 127.0.0.1:{port}", "--port"]),
}


@pytest.mark.parametrize("case", list(STARTUP_CASES))
@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_a_startup_failure_ends_with_one_plain_line_and_its_exit_code(
    case: str, verbose: bool, database_url: str, tmp_path: Path, port_in_use: int
) -> None:
    settings, code, phrases = STARTUP_CASES[case]
    (tmp_path / "chains.toml").write_text("[[chains]\nname = ")  # a syntax error
    env = {k: v.format(tmp=tmp_path) for k, v in settings.items()}
    port = port_in_use if case == "port-in-use" else free_port()
    flags = ["-v"] if verbose else []
    done = chainfolio(
        *flags,
        "serve",
        "--port",
        str(port),
        database_url=database_url,
        data_dir=tmp_path,
        extra_env={"CHAINFOLIO_DATABASE_URL": database_url, **env},
    )
    assert done.returncode == code, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("chainfolio: "), done.stderr
    for phrase in phrases:
        assert phrase.format(port=port) in last, last
    assert ("Traceback" in done.stderr) is verbose, done.stderr
    if not verbose:
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_version(database_url: str, tmp_path: Path) -> None:
    done = chainfolio("--version", database_url=database_url, data_dir=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"chainfolio {chainfolio_package.__version__}"
