"""Prometheus metrics: the collectors, the HTTP timing middleware, the GraphQL extension and
the `/metrics` endpoint.

Collectors are module-level (prometheus_client's registry is process-wide); they hold no
connection. With several uvicorn workers set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
shared by them and `/metrics` aggregates every worker process (prometheus_client's
multiprocess mode); otherwise each process reports its own figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

HTTP_LATENCY = Histogram(
    "chainfolio_http_request_duration_seconds",
    "HTTP request latency by route template, method and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
GRAPHQL_OPERATIONS = Counter(
    "chainfolio_graphql_operations_total",
    "GraphQL operations by type and outcome (`ok` or the first error's code)",
    ["type", "outcome"],
)
SUBSCRIBERS = Gauge(
    "chainfolio_bus_subscribers",
    "Local subscribers of the bus (GraphQL subscriptions and /v1/ws)",
    multiprocess_mode="livesum",
)
BUS_LAG = Histogram(
    "chainfolio_bus_lag_seconds",
    "Delay from a Redis bus publication (the publisher's wall clock) to its delivery to this"
    " process's subscribers",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHAIN_READ = Histogram(
    "chainfolio_chain_read_duration_seconds",
    "Time to read one chain's wallets in a refresh, by chain and result (ok / stale)",
    ["chain", "state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
)
RPC_ERRORS = Counter(
    "chainfolio_rpc_errors_total",
    "Failed requests to an RPC URL (each one moves to the next URL)",
    ["chain"],
)


def observe_chain_read(chain: str, state: str, duration_s: float) -> None:
    """Record one chain read of a refresh cycle."""
    CHAIN_READ.labels(chain=chain, state=state).observe(duration_s)


def observe_bus_lag(lag_s: float) -> None:
    """Record one bus message's delay (0 when the clocks disagree the other way)."""
    BUS_LAG.observe(max(lag_s, 0.0))


def count_rpc_error(chain: str) -> None:
    """Record one failed RPC request."""
    RPC_ERRORS.labels(chain=chain).inc()


def route_of(scope: Scope) -> str:
    """The matched route's template (bounded label values), or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class HttpMetrics:
    """Times every HTTP request (up to the end of its response body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            HTTP_LATENCY.labels(
                method=scope["method"], route=route_of(scope), status=str(status)
            ).observe(time.perf_counter() - started)


class GraphQLMetrics(SchemaExtension):
    """Counts operations; listed before ErrorCodes so it sees the mapped error codes."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # an unparsable document has no operation type
            kind = "unknown"
        result = context.result
        outcome = "ok"
        if result is not None and result.errors:
            outcome = str((result.errors[0].extensions or {}).get("code", "ERROR"))
        elif context.pre_execution_errors:
            error = context.pre_execution_errors[0]
            outcome = str((error.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED"))
        GRAPHQL_OPERATIONS.labels(type=kind, outcome=outcome).inc()


async def metrics_endpoint(_request: Request) -> Response:
    """GET /metrics in the Prometheus text format."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
