"""Startup checks that fail early with one plain line and an exit code, and the settings
every command derives (the database URL, the log format)."""

from __future__ import annotations

import argparse
import asyncio
import socket

from chainfolio.core.errors import ChainfolioError
from chainfolio.core.logs import LogFormat
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


async def database_url(settings: Settings) -> str:
    from chainfolio.storage.database import resolve_database_url  # noqa: PLC0415

    return await resolve_database_url(
        settings.configured_database_url(), settings.embedded_pgdata, keep=settings.keep_db
    )


def log_format_of(args: argparse.Namespace, settings: Settings) -> LogFormat:
    chosen: LogFormat | None = getattr(args, "log_format", None)
    return chosen or settings.log_format
