"""/metrics scrapes in the Prometheus text format and counts what happened."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chainfolio.bus.broadcast import Bus
from chainfolio.core.metrics import SUBSCRIBERS, count_rpc_error, observe_chain_read
from tests.hardening.conftest import OpenClient, bearer


async def _scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_operations_and_refresh_figures(
    open_client: OpenClient,
) -> None:
    headers = bearer(f"metrics-{uuid.uuid4().hex[:8]}")
    async with open_client() as client:
        before = await _scrape(client)
        for _ in range(3):
            assert (await client.get("/v1/wallets", headers=headers)).status_code == 200
        assert (await client.get("/v1/wallets")).status_code == 401
        await client.delete(f"/v1/wallets/{uuid.uuid4()}", headers=headers)
        await client.post("/graphql", json={"query": "{ wallets { id } }"}, headers=headers)
        await client.post("/graphql", json={"query": "{ nope }"}, headers=headers)
        observe_chain_read("testchain", "ok", 0.3)
        count_rpc_error("testchain")
        after = await _scrape(client)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    latency = "chainfolio_http_request_duration_seconds_count"
    assert delta(latency, method="GET", route="/v1/wallets", status="200") == 3
    assert delta(latency, method="GET", route="/v1/wallets", status="401") == 1
    # the route template, not the path, so label values stay bounded
    assert delta(latency, method="DELETE", route="/v1/wallets/{wallet_id}", status="404") == 1
    operations = "chainfolio_graphql_operations_total"
    assert delta(operations, type="query", outcome="ok") == 1
    assert delta(operations, type="query", outcome="GRAPHQL_VALIDATION_FAILED") == 1
    assert delta("chainfolio_chain_read_duration_seconds_count", chain="testchain", state="ok") == 1
    assert delta("chainfolio_rpc_errors_total", chain="testchain") == 1
    assert ("chainfolio_bus_subscribers", frozenset()) in after
    assert ("chainfolio_bus_lag_seconds_count", frozenset()) in after  # 0 until a Redis message


async def test_metrics_can_be_turned_off(open_client: OpenClient) -> None:
    async with open_client(metrics_enabled=False) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_subscribers_gauge_follows_bus_subscriptions() -> None:
    def current() -> float:
        return SUBSCRIBERS._value.get()  # type: ignore[attr-defined, no-any-return]

    async with Bus("memory://") as bus:
        start = current()
        async with bus.subscribe("a"), bus.subscribe("a"), bus.subscribe("b"):
            assert current() == start + 3
        assert current() == start
