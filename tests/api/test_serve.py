"""`chainfolio serve` as a real subprocess, called over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(database_url: str, tmp_path: os.PathLike[str]) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "CHAINFOLIO_DATABASE_URL": database_url, "CHAINFOLIO_JWT_SECRET": SECRET,
           "CHAINFOLIO_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chainfolio", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail(proc.stdout.read().decode() if proc.stdout else "server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_serve_answers_over_http(served: str) -> None:
    token = subprocess.run(
        [sys.executable, "-m", "chainfolio", "token", "--user", "cli-user"],
        env={**os.environ, "CHAINFOLIO_JWT_SECRET": SECRET}, capture_output=True, text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    portfolio = httpx.get(f"{served}/v1/portfolio", headers=headers, timeout=5)
    assert portfolio.status_code == 200
    assert portfolio.json() == {
        "success": True,
        "data": {
            "totalValue": 0.0, "change24h": None, "changePercent24h": None, "chains": [],
            "assets": [], "categories": [], "holdings": [], "stale": False, "updatedAt": None,
        },
    }
    graphql = httpx.post(f"{served}/graphql", json={"query": "{ wallets { id } }"},
                         headers=headers, timeout=5)
    assert graphql.json() == {"data": {"wallets": []}}
    assert httpx.get(f"{served}/v1/portfolio", timeout=5).status_code == 401
    page = httpx.get(f"{served}/graphql", headers={"Accept": "text/html"}, timeout=5)
    assert page.status_code == 200 and "graphiql" in page.text.lower()
