"""`chainfolio serve` as a real subprocess, called over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import SECRET
from tests.servers import serve


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    env = {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_JWT_SECRET": SECRET,
        "CHAINFOLIO_DATA_DIR": str(tmp_path),
    }
    with serve(env) as base:
        yield base


def test_serve_answers_over_http(served: str) -> None:
    token = subprocess.run(
        [sys.executable, "-m", "chainfolio", "token", "--user", "cli-user"],
        env={**os.environ, "CHAINFOLIO_JWT_SECRET": SECRET},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    portfolio = httpx.get(f"{served}/v1/portfolio", headers=headers, timeout=5)
    assert portfolio.status_code == 200
    assert portfolio.json() == {
        "success": True,
        "data": {
            "totalValue": 0.0,
            "change24h": None,
            "changePercent24h": None,
            "chains": [],
            "assets": [],
            "categories": [],
            "holdings": [],
            "stale": False,
            "staleChains": [],
            "incomplete": False,
            "updatedAt": None,
        },
    }
    graphql = httpx.post(
        f"{served}/graphql", json={"query": "{ wallets { id } }"}, headers=headers, timeout=5
    )
    assert graphql.json() == {"data": {"wallets": []}}
    assert httpx.get(f"{served}/v1/portfolio", timeout=5).status_code == 401
    page = httpx.get(f"{served}/graphql", headers={"Accept": "text/html"}, timeout=5)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
