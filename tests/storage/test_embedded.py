"""The embedded PostgreSQL's lifecycle: `chainfolio db …` and the last-user-stops rule, with
real `chainfolio` processes on one data dir (initialised once for the module)."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from chainfolio.storage.database import EmbeddedServer
from tests.servers import serve, worker_process
from tests.test_cli import chainfolio as run_cli

ADDRESS = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """A data dir whose embedded server is stopped before and after each test."""
    # short: the server's unix socket lives in the data dir (108 bytes at most)
    with tempfile.TemporaryDirectory(prefix="cf-db-") as tmp:
        path = Path(tmp)
        yield path
        EmbeddedServer(path / "pgdata").stop(force=True)


@pytest.fixture
def env(data_dir: Path) -> Iterator[dict[str, str]]:
    """The environment of a chainfolio process on the embedded server, as a new user has it."""
    variables = {
        "CHAINFOLIO_DATA_DIR": str(data_dir),
        "CHAINFOLIO_DATABASE_URL": "",  # none configured: embedded
        "CHAINFOLIO_REDIS_URL": "memory://",
        "XDG_RUNTIME_DIR": "",  # as under `sudo`, cron, a container: platformdirs falls back
    }
    yield variables
    EmbeddedServer(data_dir / "pgdata").stop(force=True)


def chainfolio(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    data_dir = Path(env["CHAINFOLIO_DATA_DIR"])
    return run_cli(*args, database_url="", data_dir=data_dir, extra_env=env)


def server_processes(pgdata: Path) -> set[int]:
    """The postmaster of `pgdata` and its children, running now."""
    info = EmbeddedServer(pgdata).status()
    if info.pid is None:
        return set()
    postmaster = psutil.Process(info.pid)
    return {postmaster.pid, *(c.pid for c in postmaster.children(recursive=True))}


def still_running(pids: set[int], pgdata: Path) -> list[str]:
    """Those of `pids` alive, and any process naming `pgdata` on its command line, once the
    ones that are exiting had a few seconds (`pg_ctl -w stop` returns when the postmaster is
    gone; the kernel may list it, or a child, a moment longer)."""
    deadline = time.monotonic() + 5
    while True:
        left = [f"pid {p}" for p in pids if _alive(p)]
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if str(pgdata) in " ".join(proc.info["cmdline"] or ()) and _alive(proc.pid):
                left.append(f"pid {proc.info['pid']}: {proc.info['cmdline']}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "ctrl-c"])
def test_serve_stops_the_embedded_server_when_it_exits(
    env: dict[str, str], data_dir: Path, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    pgdata = data_dir / "pgdata"
    log = tmp_path / "serve.log"
    with serve(env, stop_signal=stop_signal, log_path=log):
        status = EmbeddedServer(pgdata).status()
        assert status.running
        assert len(status.users) == 1  # the serve process
        pids = server_processes(pgdata)
        assert len(pids) > 1  # the postmaster and its background workers
        # a short-lived second user joins and leaves: the server stays for serve
        assert chainfolio(env, "wallet", "list", "--user", "someone").returncode == 0
        assert EmbeddedServer(pgdata).status().running
    assert still_running(pids, pgdata) == []
    assert not EmbeddedServer(pgdata).status().running
    output = log.read_text()
    assert "Warning" not in output, output  # e.g. platformdirs' RuntimeDirWarning
    assert "Traceback" not in output, output


def test_a_worker_stopped_by_sigterm_stops_it_too(env: dict[str, str], data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with worker_process(env) as worker:
        deadline = time.monotonic() + 60
        while EmbeddedServer(pgdata).status().users != (worker.pid,):
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never joined the server"
            time.sleep(0.2)
        pids = server_processes(pgdata)
    assert worker.returncode == 0  # SIGTERM: a clean exit, through the exit handlers
    assert still_running(pids, pgdata) == []


def test_keep_db_leaves_it_running_until_db_stop(env: dict[str, str], data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with serve(env, "--keep-db"):
        pass
    status = chainfolio(env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("running\n")
    assert "used by   none" in status.stdout
    pids = server_processes(pgdata)

    stopped = chainfolio(env, "db", "stop")
    assert stopped.stdout.strip() == f"stopped ({pgdata})"
    assert still_running(pids, pgdata) == []
    again = chainfolio(env, "db", "status")
    assert (again.returncode, again.stdout.split("\n")[0]) == (3, "stopped")
    assert chainfolio(env, "db", "stop").stdout.strip() == f"not running ({pgdata})"


def test_db_start_keeps_it_and_db_stop_refuses_while_in_use(
    env: dict[str, str], data_dir: Path
) -> None:
    pgdata = data_dir / "pgdata"
    started = chainfolio(env, "db", "start")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == chainfolio(env, "db", "url").stdout.strip()
    assert started.stderr == ""  # no log noise, no warnings
    assert chainfolio(env, "migrate").returncode == 0  # a user leaves: kept by `db start`
    assert EmbeddedServer(pgdata).status().kept

    with serve(env) as _:
        refused = chainfolio(env, "db", "stop")
        assert refused.returncode == 2
        assert refused.stderr.startswith("error (DATABASE_IN_USE):"), refused.stderr
    assert EmbeddedServer(pgdata).status().running  # serve left, `db start` keeps it
    assert chainfolio(env, "db", "stop").returncode == 0
    assert not EmbeddedServer(pgdata).status().running


def test_a_killed_user_does_not_keep_the_server(env: dict[str, str], data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with serve(env, stop_signal=signal.SIGKILL):
        pass  # died without releasing: its file stays behind
    server = EmbeddedServer(pgdata)
    assert server.status().running
    assert server.status().users == ()  # pruned: that pid is gone
    url = server.acquire()
    assert url == server.url()
    twice = EmbeddedServer(pgdata)  # this process holds it a second time
    assert twice.acquire() == url
    server.release()
    assert twice.status().running
    twice.release()  # the last live user out stops it
    assert not server.status().running


def test_dump_and_restore(env: dict[str, str], tmp_path: Path) -> None:
    assert chainfolio(env, "db", "start").returncode == 0
    user = ("--user", "dumped")
    added = chainfolio(env, "wallet", "add", *user, "--chain-id", "1", "--address", ADDRESS)
    assert added.returncode == 0, added.stderr
    listed = chainfolio(env, "wallet", "list", *user).stdout
    dump = tmp_path / "chainfolio.dump"
    done = chainfolio(env, "db", "dump", str(dump))
    assert done.returncode == 0, done.stderr
    assert dump.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format

    later = chainfolio(env, "wallet", "add", *user, "--chain-id", "1", "--address", "0x" + "1" * 40)
    assert later.returncode == 0, later.stderr
    restored = chainfolio(env, "db", "restore", str(dump))
    assert restored.returncode == 0, restored.stderr
    assert chainfolio(env, "wallet", "list", *user).stdout == listed

    garbage = tmp_path / "garbage.dump"
    garbage.write_text("not a dump")
    failed = chainfolio(env, "db", "restore", str(garbage))
    assert failed.returncode == 2
    assert failed.stderr.startswith("error (RESTORE_FAILED): pg_restore failed:"), failed.stderr
    assert chainfolio(env, "wallet", "list", *user).stdout == listed  # nothing changed
    missing = chainfolio(env, "db", "restore", str(tmp_path / "missing.dump"))
    assert missing.stderr.startswith("error (INVALID_DUMP):"), missing.stderr


def test_db_commands_on_a_configured_server(env: dict[str, str], database_url: str) -> None:
    configured = {**env, "CHAINFOLIO_DATABASE_URL": database_url}
    refused = chainfolio(configured, "db", "start")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error (EXTERNAL_DATABASE):"), refused.stderr
    assert chainfolio(configured, "db", "url").stdout.strip() == database_url
    stopped = chainfolio(env, "db", "url")  # embedded, not started
    assert stopped.returncode == 2
    assert stopped.stderr.startswith("error (DATABASE_STOPPED):"), stopped.stderr
