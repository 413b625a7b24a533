"""`chainfolio serve` as a real process: JSON logs with request ids, the websocket message
cap, and a graceful SIGTERM (in-flight requests finish, new connections are refused,
websockets get a close frame, the process exits 0)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.hardening.conftest import SECRET, bearer
from tests.servers import free_port


@contextmanager
def serving(
    database_url: str, data_dir: Path, *args: str, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A `chainfolio serve` process, ready; yields its base URL, the process and its log file.

    The output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
    """
    port = free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chainfolio", "serve", "--port", str(port), *args],
            env={
                **os.environ,
                "CHAINFOLIO_DATABASE_URL": database_url,
                "CHAINFOLIO_JWT_SECRET": SECRET,
                "CHAINFOLIO_DATA_DIR": str(data_dir),
                **env,
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        while proc.poll() is None:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"chainfolio serve did not start:\n{log_path.read_text()}")
        yield base, proc, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def test_sigterm_closes_websockets_exits_0_and_logs_json(
    database_url: str, tmp_path: Path
) -> None:
    subject = "sigterm-user"
    token = bearer(subject)["Authorization"].split()[1]
    with serving(database_url, tmp_path, "--log-format", "json") as (base, proc, log_path):
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.get(
                "/v1/wallets", headers={**bearer(subject), "X-Request-ID": "trace-42"}
            )
            assert answer.status_code == 200
            assert answer.headers["X-Request-ID"] == "trace-42"
            made = await http.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
            assert len(made.headers["X-Request-ID"]) == 32  # a fresh one replaces it
        async with connect(_ws_url(base, f"/v1/ws?token={token}")) as ws:
            subscribe = {"type": "subscribe", "channel": "portfolio", "userId": subject}
            await ws.send(json.dumps(subscribe))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None  # a close frame, not a dropped connection
            assert closed.value.rcvd.code == 1012  # service restart: clients reconnect
        assert proc.wait(timeout=30) == 0
        output = log_path.read_text()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert records, output
    access = [r for r in records if r["logger"] == "chainfolio.access"]
    traced = [r for r in access if r["request_id"] == "trace-42"]
    assert len(traced) == 1
    assert traced[0]["path"] == "/v1/wallets"
    assert traced[0]["status"] == 200
    assert traced[0]["duration_ms"] >= 0
    assert any(r["message"] == "Application shutdown complete." for r in records)
    # the websocket's ?token= is logged by uvicorn's own line, masked
    assert token not in output
    assert any("/v1/ws?token=[redacted]" in r["message"] for r in records)


def _wait_for_log(proc: subprocess.Popen[bytes], log_path: Path, message: str) -> None:
    """Until the server has logged `message` (JSON records), or fail if it exits first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("{") and json.loads(line)["message"].startswith(message):
                return
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # polling the log file for a condition, not waiting for time to pass
    pytest.fail(f"the server never logged {message!r}:\n{log_path.read_text()}")


def _read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers (lower-cased names) and body of one response with Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the response headers: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the end of the body"
        body += chunk
    return status, headers, body


@contextmanager
def _in_flight(base: str, subject: str, body: bytes, sent: int) -> Iterator[socket.socket]:
    """A POST /graphql whose headers and first `sent` body bytes the app is reading."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # "Expect: 100-continue": the server answers "100 Continue" once the application
        # reads the body, so the request is known to be in flight before SIGTERM.
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Authorization: {bearer(subject)['Authorization']}\r\n".encode()
            + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body[:sent])
        yield sock


def test_a_request_that_never_finishes_is_cut_after_the_shutdown_timeout(
    database_url: str, tmp_path: Path
) -> None:
    body = json.dumps({"query": "{ wallets { id } }"}).encode()
    with (
        serving(database_url, tmp_path, CHAINFOLIO_SHUTDOWN_TIMEOUT_S="1") as (base, proc, _),
        _in_flight(base, "sigterm-stuck", body, len(body) // 2),
    ):
        proc.send_signal(signal.SIGTERM)
        # the client never sends the rest: without a timeout the process would wait forever
        assert proc.wait(timeout=30) == 0


def test_sigterm_lets_an_in_flight_request_finish_and_refuses_new_connections(
    database_url: str, tmp_path: Path
) -> None:
    body = json.dumps({"query": "{ wallets { id label } }"}).encode()
    half = len(body) // 2
    with serving(database_url, tmp_path, "--log-format", "json") as (base, proc, log_path):
        host, port = base.removeprefix("http://").split(":")
        with _in_flight(base, "sigterm-in-flight", body, half) as sock:
            proc.send_signal(signal.SIGTERM)
            # logged once the listening socket is closed and the server waits for this request
            _wait_for_log(proc, log_path, "Waiting for connections to close")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((host, int(port)), timeout=5).close()
            assert proc.poll() is None  # still serving the request in flight

            sock.sendall(body[half:])
            status, headers, answer = _read_response(sock)
        assert status == "HTTP/1.1 200 OK"
        assert headers["connection"] == "close"  # no keep-alive while shutting down
        assert json.loads(answer) == {"data": {"wallets": []}}
        assert proc.wait(timeout=30) == 0
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line[:1] == "{"]
    assert any(r["message"] == "Application shutdown complete." for r in records)


async def test_websocket_messages_over_the_cap_close_with_1009(
    database_url: str, tmp_path: Path
) -> None:
    env = {"CHAINFOLIO_WS_MAX_MESSAGE_BYTES": "2048"}
    with serving(database_url, tmp_path, **env) as (base, _proc, _log):
        async with connect(
            _ws_url(base, "/graphql"),
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            await ws.send("x" * 4096)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009  # message too big


async def test_metrics_add_up_uvicorn_worker_processes(database_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    with serving(database_url, tmp_path, "--workers", "2", **env) as (base, proc, _log):
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(6):
                assert (await http.get("/v1/wallets", headers=bearer("multi"))).status_code == 200
            scraped = (await http.get("/metrics")).text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    labels = 'method="GET",route="/v1/wallets",status="200"'
    assert f"chainfolio_http_request_duration_seconds_count{{{labels}}} 6.0" in scraped.splitlines()
    assert list(shared.glob("histogram_*.db"))  # the figures went through the shared files


async def test_websocket_handshakes_over_the_ip_limit_get_429(
    database_url: str, tmp_path: Path
) -> None:
    env = {"CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "1"}
    with serving(database_url, tmp_path, **env) as (base, _proc, _log):
        token = bearer("ws-limited")["Authorization"].split()[1]
        async with connect(_ws_url(base, f"/v1/ws?token={token}")) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
        with pytest.raises(InvalidStatus) as refused:
            await connect(_ws_url(base, f"/v1/ws?token={token}"))
        response = refused.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert json.loads(response.body)["error"]["code"] == "RATE_LIMITED"


async def test_websockets_past_the_user_limit_close_with_4429(
    database_url: str, tmp_path: Path
) -> None:
    # two a minute: the connection and its ping (messages count like requests)
    env = {"CHAINFOLIO_RATE_LIMIT_PER_MINUTE": "2", "CHAINFOLIO_RATE_LIMIT_PER_IP_PER_MINUTE": "0"}
    token = bearer("ws-user-limited")["Authorization"].split()[1]
    with serving(database_url, tmp_path, **env) as (base, _proc, _log):
        async with connect(_ws_url(base, f"/v1/ws?token={token}")) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
        async with connect(_ws_url(base, f"/v1/ws?token={token}")) as ws:
            assert json.loads(await ws.recv())["error"]["code"] == "RATE_LIMITED"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4429, "RATE_LIMITED")
        async with connect(
            _ws_url(base, "/graphql"),
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4429
