"""A bounded, local load-and-abuse run against a real `serve`: the attacks of issues 20 and 21
at once, and the limits hold (no 5xx, caps exact, slow clients cut, the server still healthy).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.hardening.conftest import bearer, graphql_socket, serve_env
from tests.hardening.heavy import HEAVY
from tests.servers import serve

PER_USER = 40
WALLET_CAP = 5
ENV = {
    "CHAINFOLIO_RATE_LIMIT_PER_MINUTE": str(PER_USER),
    "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0",
    "CHAINFOLIO_MAX_WALLETS_PER_USER": str(WALLET_CAP),
    "CHAINFOLIO_WS_MAX_SOCKETS_PER_USER": "2",
    "CHAINFOLIO_HEADER_TIMEOUT_S": "2",
    "CHAINFOLIO_BODY_TIMEOUT_S": "2",
}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(serve_env(database_url, tmp_path_factory.mktemp("abuse"), **ENV)) as base:
        yield base


async def _flood(http: httpx.AsyncClient, subject: str, count: int) -> Counter[int]:
    answers = await asyncio.gather(
        *(http.get("/v1/wallets", headers=bearer(subject)) for _ in range(count))
    )
    return Counter(a.status_code for a in answers)


async def _add_wallets(http: httpx.AsyncClient, subject: str, count: int) -> Counter[int]:
    mutation = "mutation($a: String!) { addWallet(chainId: 1, address: $a) { id } }"
    answers = await asyncio.gather(
        *(
            http.post(
                "/graphql",
                json={"query": mutation, "variables": {"a": f"0x{i + 1:040x}"}},
                headers=bearer(subject),
            )
            for i in range(count)
        )
    )
    return Counter(a.status_code for a in answers)


async def _half_sent(base: str) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)  # until the server closes
    writer.close()
    return answer


async def _sockets(base: str, subject: str, count: int) -> list[int | None]:
    """Open `count` sockets of one user and hold them: None for each opened, else the close
    code it was refused with."""
    codes: list[int | None] = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(count):
            try:
                await stack.enter_async_context(graphql_socket(base, subject))
                codes.append(None)
            except websockets.ConnectionClosed as exc:
                codes.append(exc.rcvd.code if exc.rcvd else -1)
    return codes


async def test_the_limits_hold_under_abuse(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        flood, adds, half = await asyncio.gather(
            _flood(http, "abuse-flood", 3 * PER_USER),
            _add_wallets(http, "abuse-cap", 20),
            asyncio.gather(*(_half_sent(server) for _ in range(30))),
        )
        # after the storm: on a loaded machine a handshake's own headers could miss the
        # (deliberately short) header deadline of this test
        sockets = await _sockets(server, "abuse-sockets", 6)
        # the analytics attack of issue 21 (nine compare at 8,640 buckets in one document) is
        # refused before anything runs
        nine = " ".join(f"c{i}: {HEAVY}" for i in range(9))
        analytics = await http.post(
            "/graphql",
            json={"query": f"query($b: String!) {{ {nine} }}", "variables": {"b": "ETH"}},
            headers=bearer("abuse-analytics"),
        )
        # the per-user limit: exactly PER_USER answered, the rest refused, nothing failed
        assert flood == Counter({200: PER_USER, 429: 2 * PER_USER}), flood
        # the wallet cap under 20 concurrent adds
        assert set(adds) == {200}
        wallets = await http.get("/v1/wallets", headers=bearer("abuse-cap"))
        assert len(wallets.json()["data"]) == WALLET_CAP
        # slow clients were cut (408), not held
        assert all(a.startswith(b"HTTP/1.1 408") for a in half), half[:3]
        # two sockets per user
        assert sockets == [None, None, 4429, 4429, 4429, 4429], sockets
        refusal = analytics.json()["errors"][0]
        assert refusal["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "over the limit of 500" in refusal["message"]
        # and the server is fine
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/v1/wallets", headers=bearer("abuse-after"))).status_code == 200


def test_no_connection_left_behind(server: str) -> None:
    """After the run the server accepts new connections at once (none exhausted)."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
