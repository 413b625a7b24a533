"""Slow clients against a real `serve`: half-sent headers and bodies are cut after their
deadlines; complete requests and upgraded websockets are not."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.hardening.conftest import bearer, graphql_socket, serve_env
from tests.servers import serve


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = serve_env(
        database_url,
        tmp_path_factory.mktemp("slow"),
        CHAINFOLIO_HEADER_TIMEOUT_S="1",
        CHAINFOLIO_BODY_TIMEOUT_S="1",
    )
    with serve(env) as base:
        yield base


def _send_and_wait(base: str, data: bytes) -> tuple[bytes, float]:
    """Send `data` and read until the server closes; (what it answered, seconds it took)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        started = time.monotonic()
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer, time.monotonic() - started


def test_half_sent_headers_are_cut(server: str) -> None:
    answer, took = _send_and_wait(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"REQUEST_TIMEOUT" in answer
    assert took < 15  # the 1 s deadline, not the hang guard


def test_half_sent_body_is_cut(server: str) -> None:
    token = bearer("slow-body")["Authorization"].encode()
    head = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Authorization: " + token + b"\r\nContent-Length: 100\r\n\r\n"
    answer, took = _send_and_wait(server, head + b'{"query"')
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < 15


def test_complete_requests_and_websockets_are_not_cut(server: str) -> None:
    answer, _ = _send_and_wait(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer

    async def idle_socket() -> str:
        async with graphql_socket(server, "slow-ws") as ws:
            await asyncio.sleep(2.5)  # past both deadlines
            await ws.send(orjson.dumps({"type": "ping"}).decode())
            return str(orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"])

    assert asyncio.run(idle_socket()) == "pong"
