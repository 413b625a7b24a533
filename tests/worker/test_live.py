"""End to end: `chainfolio serve --with-worker` on the devnet; a transfer on the chain reaches a
subscribed websocket client within the refresh interval, and equals what the API answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from chainfolio.api.auth import issue_token
from chainfolio.core.settings import Settings
from chainfolio.devnet import Devnet, transfer_native
from chainfolio.fetchers.devnet_config import config_from_devnet
from tests.api.conftest import SECRET
from tests.servers import serve


def _serve_with_worker(
    database_url: str, devnet: Devnet, tmp_path: Path, **settings: str
) -> Iterator[str]:
    chains_file = tmp_path / "chains.json"
    chains_file.write_bytes(orjson.dumps(config_from_devnet(devnet.chains).model_dump(mode="json")))
    env = {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_JWT_SECRET": SECRET,
        "CHAINFOLIO_CHAINS_FILE": str(chains_file),
        "CHAINFOLIO_DATA_DIR": str(tmp_path),
        **{f"CHAINFOLIO_{name.upper()}": value for name, value in settings.items()},
    }
    with serve(env, "--with-worker") as base:
        yield base


@pytest.fixture
def live_server(database_url: str, devnet: Devnet, tmp_path: Path) -> Iterator[str]:
    yield from _serve_with_worker(database_url, devnet, tmp_path, refresh_interval_s="1")


async def test_transfer_reaches_subscriber_and_matches_query(
    live_server: str, restore_devnet: Devnet
) -> None:
    chain = restore_devnet.chain(1)
    wallet = chain.wallets[7]
    subject = f"live-{uuid.uuid4().hex[:6]}"
    token = issue_token(Settings(jwt_secret=SECRET), subject=subject)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=10) as http:
        ws_url = live_server.replace("http", "ws") + f"/v1/ws?token={token}"
        async with websockets.connect(ws_url) as ws:
            await ws.send(
                orjson.dumps(
                    {"type": "subscribe", "channel": "portfolio", "userId": subject}
                ).decode()
            )
            assert orjson.loads(await ws.recv())["type"] == "subscribed"
            # Subscribed before the wallet exists: the worker (a cycle a second, and one at
            # once for a user who adds a wallet) cannot publish its first valuation before
            # anyone listens, however slow this client is.
            added = await http.post("/v1/wallets", json={"chainId": 1, "address": wallet})
            assert added.status_code == 201
            first = orjson.loads(await asyncio.wait_for(ws.recv(), 30))  # first valuation
            assert first["type"] == "portfolio_update"
            before = first["data"]["totalValue"]

            transfer_native(chain, sender=wallet, to="0x" + "77" * 20, amount=10**18)  # 1 ETH
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["data"]["totalValue"] != before:
                    break
                assert asyncio.get_running_loop().time() < deadline
        # ETH is priced by the devnet's feed at 3000 USD; gas is paid too, so a bit more left.
        assert message["data"]["change"] == pytest.approx(-3000, abs=5)
        portfolio = (await http.get("/v1/portfolio")).json()["data"]
        assert portfolio["totalValue"] == pytest.approx(message["data"]["totalValue"], abs=1e-6)


@pytest.fixture
def slow_server(database_url: str, devnet: Devnet, tmp_path: Path) -> Iterator[str]:
    """`serve --with-worker` whose worker cycles once a minute and does not follow blocks."""
    yield from _serve_with_worker(
        database_url, devnet, tmp_path, refresh_interval_s="60", block_poll_s="0"
    )


async def test_wallets_added_by_graphql_are_valued_before_the_next_cycle(
    slow_server: str, devnet: Devnet
) -> None:
    # The worker cycles once a minute. The first wallet may be valued by the cycle at start or
    # by the mutation's request to refresh the user now; the second, added after that
    # valuation, only by the request: it arrives well before the next cycle.
    subject = f"nudge-{uuid.uuid4().hex[:6]}"
    token = issue_token(Settings(jwt_secret=SECRET), subject=subject)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = slow_server.replace("http", "ws") + f"/v1/ws?token={token}"
    mutation = "mutation($a: String!) { addWallet(chainId: 1, address: $a) { id } }"
    totals = []
    async with (
        httpx.AsyncClient(base_url=slow_server, headers=headers, timeout=10) as http,
        websockets.connect(ws_url) as ws,
    ):
        subscribe = {"type": "subscribe", "channel": "portfolio", "userId": subject}
        await ws.send(orjson.dumps(subscribe).decode())
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        for address in devnet.chain(1).wallets[9], devnet.chain(1).wallets[12]:
            body = {"query": mutation, "variables": {"a": address}}
            added = await http.post("/graphql", json=body)
            assert "errors" not in added.json(), added.json()
            update = orjson.loads(await asyncio.wait_for(ws.recv(), 50))  # before the next cycle
            assert update["type"] == "portfolio_update"
            totals.append(update["data"]["totalValue"])
        portfolio = (await http.get("/v1/portfolio")).json()["data"]
    assert 0 < totals[0] < totals[1]
    assert portfolio["totalValue"] == pytest.approx(totals[1], abs=1e-6)
