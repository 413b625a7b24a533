"""Logs: credentials masked in any encoding of a query string; client errors logged at INFO,
without traceback, a few a minute per client."""

from __future__ import annotations

import logging

import pytest

from chainfolio.core.logs import ClientErrorLog, RedactSecrets
from tests.hardening.conftest import OpenClient, bearer

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "line",
    [
        f"GET /v1/ws?token={JWT} HTTP/1.1",
        f'"GET /v1/ws?%74oken={JWT}&x=1"',
        f"/v1/ws?T%6Fken={JWT}",
        f"/v1/ws?a=1&%2574oken={JWT}",
        f"/graphql?authToken={JWT}",
        f"/v1/ws?access_token={JWT};x=1",
    ],
)
def test_credentials_are_masked_in_any_encoding(line: str) -> None:
    record = logging.makeLogRecord({"msg": line})
    RedactSecrets().filter(record)
    assert JWT not in record.getMessage()
    assert "[redacted]" in record.getMessage()


def test_other_parameters_are_kept() -> None:
    record = logging.makeLogRecord({"msg": "/v1/portfolio/history?period=30d&interval=1h"})
    RedactSecrets().filter(record)
    assert record.getMessage() == "/v1/portfolio/history?period=30d&interval=1h"


def test_client_errors_are_rate_limited_per_client(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    errors = ClientErrorLog(per_minute=3, clock=lambda: now[0])
    logger = logging.getLogger("test.client_errors")
    with caplog.at_level(logging.INFO, logger="test.client_errors"):
        for i in range(10):
            errors.note(logger, "10.0.0.1", f"bad input {i}")
        errors.note(logger, "10.0.0.2", "another client")
        now[0] = 61.0
        errors.note(logger, "10.0.0.1", "next minute")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 5
    assert all(r.levelno == logging.INFO and not r.exc_info for r in caplog.records)
    assert messages[-1].endswith("next minute (7 more from this client not logged)")


async def test_graphql_input_errors_are_not_logged_as_faults(
    open_client: OpenClient, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_client() as http:
        with caplog.at_level(logging.INFO):
            for _ in range(30):
                await http.post(
                    "/graphql",
                    json={"query": 'mutation { addWallet(chainId: 1, address: "nope") { id } }'},
                    headers=bearer("noisy"),
                )
                await http.post("/graphql", json={"query": "{ nope }"}, headers=bearer("noisy"))
    faults = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert faults == []
    noted = [r for r in caplog.records if r.getMessage().startswith("client error")]
    assert 0 < len(noted) <= 10
