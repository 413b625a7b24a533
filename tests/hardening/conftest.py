"""Apps with hardening settings (limits, metrics, logs) on the session database, over ASGI."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import websockets
from pydantic import SecretStr

from chainfolio.api.app import create_app
from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.storage.database import to_asyncpg_dsn
from tests.conftest import _replace_db

SECRET = "hardening-secret-that-is-long-enough-for-hs256"

OpenClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def bearer(subject: str) -> dict[str, str]:
    """Headers with a valid token for `subject`."""
    token = issue_token(Settings(jwt_secret=SecretStr(SECRET)), subject=subject)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def open_client(database_url: str, tmp_path: Path) -> OpenClient:
    """Opens an app (lifespan included) with the given settings and an HTTP client on it."""

    @asynccontextmanager
    async def opened(
        client_ip: str = "127.0.0.1", **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(
            database_url=SecretStr(database_url),
            jwt_secret=SecretStr(SECRET),
            data_dir=tmp_path,
            **overrides,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client

    return opened


def serve_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `chainfolio serve` process for these tests."""
    return {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_JWT_SECRET": SECRET,
        "CHAINFOLIO_DATA_DIR": str(data_dir),
        **extra,
    }


@asynccontextmanager
async def graphql_socket(base: str, subject: str) -> AsyncIterator[websockets.ClientConnection]:
    """A graphql-transport-ws connection to the server at `base`, initialised as `subject`."""
    async with websockets.connect(
        base.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as ws:
        await ws.send(
            orjson.dumps({"type": "connection_init", "payload": bearer(subject)}).decode()
        )
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        yield ws


@asynccontextmanager
async def scratch_database(pg_server_url: str) -> AsyncIterator[str]:
    """An empty database of its own (not migrated), dropped at the end; yields its URL."""
    name = f"chainfolio_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(pg_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _replace_db(pg_server_url, name)
    finally:
        admin = await asyncpg.connect(to_asyncpg_dsn(pg_server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
