"""JSON-RPC over HTTP with ordered failover, a per-URL circuit breaker and batch requests.

A unit of work (one refresh of one chain) runs against a single URL so that every call in it
sees the same node and the same pinned block; if that URL fails mid-way the whole unit is
retried on the next healthy URL at once. Call-level JSON-RPC errors (a revert, "response too
large") are returned to the caller; transport failures and garbage answers mark the URL down.

A URL that failed is skipped while it backs off (`backoff_s`, doubling up to `backoff_max_s`)
as long as another URL answers. When none does, the breaker is half-open: one unit of work at a
time goes to a failed URL whose probe is due — at most `probe_max_s` after its last failure,
however long its back-off — so a chain recovers within that time of its node answering again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from chainfolio.core.errors import SourceUnavailable
from chainfolio.core.metrics import count_rpc_error
from chainfolio.fetchers.config import RpcSettings

T = TypeVar("T")

_SIZE_ERROR_HINTS = (
    "out of gas",
    "gas required exceeds",
    "exceeds block gas limit",
    "gas limit",
    "too large",
    "response size",
    "size exceeded",
    "exceeds the limit",
    "payload",
    "max response",
    "limit exceeded",
    "too many",
)


# eth_getLogs refusals a smaller range may pass: "block range is too large", "query returned
# more than 10000 results", "eth_getLogs is limited to a 10,000 range", "Log response size
# exceeded", "exceed maximum block range: 5000", "query timeout exceeded" …
_LOG_RANGE_HINTS = (
    "range",
    "more than",
    "10000 results",
    "too many",
    "too large",
    "limit",
    "exceed",
    "response size",
    "query timeout",
)

_MISSING_BLOCK_HINTS = ("header not found", "unknown block", "block not found", "missing trie node")


class RpcError(Exception):
    """A JSON-RPC error object returned for one call (the node is healthy)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data

    @property
    def is_size_error(self) -> bool:
        """True when asking for less at once may succeed (gas, payload or response limits)."""
        text = self.message.lower()
        return self.code == 413 or any(hint in text for hint in _SIZE_ERROR_HINTS)

    @property
    def is_log_range_error(self) -> bool:
        """True when an eth_getLogs over fewer blocks may succeed (range or result limits)."""
        text = self.message.lower()
        return self.is_size_error or any(hint in text for hint in _LOG_RANGE_HINTS)

    @property
    def is_missing_block(self) -> bool:
        """True when this node lacks the pinned block (it lags, or is not an archive node)."""
        text = self.message.lower()
        return any(hint in text for hint in _MISSING_BLOCK_HINTS)


class EndpointFailure(Exception):
    """The URL timed out, refused, errored at HTTP level or answered something not JSON-RPC."""


class ChainUnavailable(SourceUnavailable):
    """Every RPC URL of a chain failed or is backing off."""


def display_url(url: str) -> str:
    """The URL without path or query: provider URLs often carry an API key there."""
    parsed = httpx.URL(url)
    shown = f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
    return shown if parsed.path in ("", "/") and not parsed.query else shown + "/…"


@dataclass(slots=True)
class EndpointHealth:
    """What we know about one RPC URL (`label` is the form safe to show and log)."""

    url: str
    label: str = ""
    failures: int = 0
    down_until: float = 0.0
    probe_at: float = 0.0
    """When a half-open probe may try this URL although it backs off (no other URL answers)."""
    probing: bool = False
    last_error: str | None = None
    supports_batch: bool = True
    max_batch: int | None = None


@dataclass(slots=True)
class RpcStats:
    """Counters for benchmarks, tests and /metrics."""

    http_requests: int = 0
    rpc_calls: int = 0
    failovers: int = 0
    probes: int = 0


@dataclass(slots=True)
class _Ids:
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next(self) -> int:
        return next(self.counter)


_FAILED = object()
"""What `RpcClient._attempt` returns when the URL failed (a result may be anything)."""

RpcOutcome = Any
"""A call's `result` value, or the `RpcError` it produced."""


class RpcConnection:
    """JSON-RPC calls to one URL."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: EndpointHealth,
        *,
        settings: RpcSettings,
        stats: RpcStats,
        ids: _Ids,
    ) -> None:
        self._http = http
        self.endpoint = endpoint
        self._settings = settings
        self._stats = stats
        self._ids = ids

    @property
    def url(self) -> str:
        """The URL this connection talks to, as it may be shown (no path, no key)."""
        return self.endpoint.label

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        """One call; raises RpcError for a JSON-RPC error, EndpointFailure for a bad URL."""
        (outcome,) = await self.batch([(method, params)])
        if isinstance(outcome, RpcError):
            raise outcome
        return outcome

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[RpcOutcome]:
        """Several calls in one HTTP request when the node allows it, else one by one."""
        if len(calls) == 1 or not (self._settings.batch and self.endpoint.supports_batch):
            return [await self._single(method, params) for method, params in calls]
        limit = self.endpoint.max_batch
        if limit is not None and len(calls) > limit:
            outcomes: list[RpcOutcome] = []
            for start in range(0, len(calls), limit):
                outcomes.extend(await self.batch(calls[start : start + limit]))
            return outcomes
        requests = [self._request(method, params) for method, params in calls]
        body = await self._post(requests, len(calls))
        if isinstance(body, dict):
            # One error object for the whole batch: too many items, or no batch support at all.
            error = body.get("error")
            message = str(error.get("message", "")) if isinstance(error, dict) else ""
            if RpcError(-1, message).is_size_error:
                self.endpoint.max_batch = max(1, len(calls) // 2)
                return await self.batch(calls)
            self.endpoint.supports_batch = False
            return [await self._single(method, params) for method, params in calls]
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        outcomes = []
        for request in requests:
            item = by_id.get(request["id"])
            if item is None:
                raise EndpointFailure(f"{self.url}: batch answer lacks id {request['id']}")
            outcomes.append(self._outcome(item))
        return outcomes

    async def block_number(self) -> int:
        """The node's latest block number."""
        return parse_quantity(await self.call("eth_blockNumber", []), self.url)

    async def _single(self, method: str, params: Sequence[Any]) -> RpcOutcome:
        request = self._request(method, params)
        body = await self._post(request, 1)
        if not isinstance(body, dict) or body.get("id") != request["id"]:
            raise EndpointFailure(f"{self.url}: answer is not a JSON-RPC response for our id")
        return self._outcome(body)

    def _request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self._ids.next(), "method": method, "params": list(params)}

    async def _post(self, payload: Any, calls: int) -> Any:
        self._stats.http_requests += 1
        self._stats.rpc_calls += calls
        try:
            response = await self._http.post(
                self.endpoint.url,
                content=orjson.dumps(payload),
                headers={"content-type": "application/json"},
                timeout=self._settings.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise EndpointFailure(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 413:
            return _size_error_for(payload)
        if response.status_code == 429 or response.status_code >= 500:
            raise EndpointFailure(f"{self.url}: HTTP {response.status_code}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise EndpointFailure(
                f"{self.url}: answer is not JSON (HTTP {response.status_code})"
            ) from exc
        if isinstance(body, list) and isinstance(payload, list):
            return body
        if isinstance(body, dict):
            return body
        raise EndpointFailure(f"{self.url}: answer is not a JSON-RPC object")

    def _outcome(self, item: dict[str, Any]) -> RpcOutcome:
        if "error" in item and item["error"] is not None:
            error = item["error"]
            if not isinstance(error, dict):
                raise EndpointFailure(f"{self.url}: malformed error object")
            code = error.get("code")
            return RpcError(
                code if isinstance(code, int) else -1,
                str(error.get("message", "")),
                error.get("data"),
            )
        if "result" not in item:
            raise EndpointFailure(f"{self.url}: response has neither result nor error")
        return item["result"]


def _size_error_for(payload: Any) -> Any:
    """HTTP 413 means the request was too large: report it per call so the caller splits."""
    error = {"code": 413, "message": "HTTP 413: request entity too large"}
    if isinstance(payload, list):
        return [{"jsonrpc": "2.0", "id": p["id"], "error": error} for p in payload]
    return {"jsonrpc": "2.0", "id": payload["id"], "error": error}


def parse_quantity(value: Any, url: str) -> int:
    """A JSON-RPC hex quantity ("0x1a") as int; garbage marks the URL bad."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise EndpointFailure(f"{url}: expected a hex quantity, got {value!r:.60}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise EndpointFailure(f"{url}: expected a hex quantity, got {value!r:.60}") from exc


def parse_data(value: Any, url: str) -> bytes:
    """JSON-RPC hex data ("0x…") as bytes; garbage marks the URL bad."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise EndpointFailure(f"{url}: expected hex data, got {value!r:.60}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise EndpointFailure(f"{url}: expected hex data, got {value!r:.60}") from exc


class RpcClient:
    """The RPC URLs of one chain, tried in order, skipping those in back-off."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        http: httpx.AsyncClient,
        settings: RpcSettings,
        chain: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chain = chain
        self.endpoints = [EndpointHealth(url, display_url(url)) for url in urls]
        self.stats = RpcStats()
        self.settings = settings
        self._http = http
        self._clock = clock
        self._ids = _Ids()

    async def run(self, work: Callable[[RpcConnection], Awaitable[T]]) -> T:
        """Run `work` on the first healthy URL, moving on when a URL fails."""
        if not self.endpoints:
            raise ChainUnavailable(f"{self.chain}: no RPC URL configured")
        now = self._clock()
        errors: list[str] = []
        backing_off: list[EndpointHealth] = []
        for endpoint in self.endpoints:
            if endpoint.down_until > now:
                backing_off.append(endpoint)
                continue
            outcome = await self._attempt(endpoint, work, errors)
            if outcome is not _FAILED:
                return outcome  # type: ignore[return-value]
        # Half-open: no URL answered; one probe at a time to each failed URL whose probe is due.
        for endpoint in backing_off:
            if endpoint.probing or endpoint.probe_at > self._clock():
                wait = endpoint.probe_at - self._clock()
                state = "probe under way" if endpoint.probing else f"probe in {max(wait, 0):.1f}s"
                errors.append(
                    f"{endpoint.label} backing off ({state}) after: {endpoint.last_error}"
                )
                continue
            self.stats.probes += 1
            endpoint.probing = True
            try:
                outcome = await self._attempt(endpoint, work, errors)
            finally:
                endpoint.probing = False
            if outcome is not _FAILED:
                return outcome  # type: ignore[return-value]
        raise ChainUnavailable(f"{self.chain}: all RPC URLs failed: " + "; ".join(errors))

    async def _attempt(
        self,
        endpoint: EndpointHealth,
        work: Callable[[RpcConnection], Awaitable[T]],
        errors: list[str],
    ) -> T | object:
        """`work` on one URL: its result, or `_FAILED` (the URL is marked down, why noted)."""
        connection = RpcConnection(
            self._http, endpoint, settings=self.settings, stats=self.stats, ids=self._ids
        )
        try:
            result = await work(connection)
        except EndpointFailure as exc:
            self._mark_failed(endpoint, str(exc))
            self.stats.failovers += 1
            errors.append(str(exc))
            return _FAILED
        endpoint.failures = 0
        endpoint.last_error = None
        endpoint.down_until = endpoint.probe_at = 0.0
        return result

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        """One call with failover."""

        async def work(connection: RpcConnection) -> Any:
            return await connection.call(method, params)

        return await self.run(work)

    def _mark_failed(self, endpoint: EndpointHealth, error: str) -> None:
        count_rpc_error(self.chain)
        endpoint.failures += 1
        endpoint.last_error = error
        delay = self.settings.backoff_s * 2 ** min(endpoint.failures - 1, 32)
        now = self._clock()
        endpoint.down_until = now + min(delay, self.settings.backoff_max_s)
        endpoint.probe_at = now + min(delay, self.settings.probe_max_s)
