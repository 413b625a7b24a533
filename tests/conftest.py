"""Session fixtures: a real PostgreSQL database per test session, migrated once.

`CHAINFOLIO_TEST_DATABASE_URL` names a server (CI: the machine's PostgreSQL); a fresh database
is created on it for the session and dropped afterwards. Without it, an embedded PostgreSQL is
started in a temporary directory, so the suite also runs where no server exists.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.storage.database import EmbeddedServer, create_engine, to_asyncpg_dsn
from chainfolio.storage.migrations import migrate

pytest_plugins = ["tests.fixtures.redis", "tests.fixtures.devnet"]


def _replace_db(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return f"{base}?{query}" if query else base


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (maintenance database)."""
    configured = os.environ.get("CHAINFOLIO_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="chainfolio-pg-") as tmp:
        server = EmbeddedServer(Path(tmp) / "pgdata")
        yield server.start()
        server.stop(force=True)  # before its data dir goes


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this session; dropped at the end."""
    name = f"chainfolio_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(pg_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _replace_db(pg_server_url, name)
    engine = create_engine(url, pool_size=2)
    await migrate(engine)
    await engine.dispose()
    yield url
    admin = await asyncpg.connect(to_asyncpg_dsn(pg_server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A shared engine on the session database."""
    eng = create_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()
