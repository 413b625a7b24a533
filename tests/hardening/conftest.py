"""Apps with hardening settings (limits, metrics, logs) on the session database, over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from chainfolio.app import create_app
from chainfolio.auth import issue_token
from chainfolio.settings import Settings

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
