"""Real localhost HTTP servers for fetcher tests: a counting JSON-RPC proxy and fake APIs."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` for every path on 127.0.0.1; yield the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def dead_url() -> str:
    """A localhost URL where nothing listens (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class RpcProxy:
    """Forwards JSON-RPC to a node, counting requests; can be told to misbehave.

    mode "forward" | "garbage" (HTML, HTTP 200) | "refuse_batch" (one error object for any
    batch) | "lagging" (eth_call answers "header not found", like a node behind the head).
    `max_call_hex` answers "response size exceeded" for eth_calls whose data is longer.
    `max_log_range` refuses eth_getLogs over more blocks (as QuickNode and public nodes word
    it), `max_log_results` refuses those with more logs (as Infura does); `log_ranges` lists the
    (from, to) ranges answered.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self.max_call_hex: int | None = None
        self.max_log_range: int | None = None
        self.max_log_results: int | None = None
        self.log_ranges: list[tuple[int, int]] = []
        self.log_refusals = 0
        self.http_requests = 0
        self.rpc_calls = 0
        self.methods: Counter[str] = Counter()
        self.batch_sizes: list[int] = []
        self.size_errors = 0
        self._client = httpx.AsyncClient(timeout=30)

    def reset(self) -> None:
        """Zero the counters."""
        self.http_requests = self.rpc_calls = self.size_errors = 0
        self.methods.clear()
        self.batch_sizes.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler."""
        body = await request.read()
        payload = json.loads(body)
        items = payload if isinstance(payload, list) else [payload]
        self.http_requests += 1
        self.rpc_calls += len(items)
        self.batch_sizes.append(len(items) if isinstance(payload, list) else 0)
        self.methods.update(item["method"] for item in items)
        if self.mode == "garbage":
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if self.mode == "refuse_batch" and isinstance(payload, list):
            error = {"code": -32600, "message": "batch requests are not supported"}
            return web.json_response({"jsonrpc": "2.0", "id": None, "error": error})
        answers = await self._answers(items)
        return web.json_response(answers if isinstance(payload, list) else answers[0])

    async def _answers(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refused: dict[int, dict[str, Any]] = {}
        forward: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            data = item["params"][0].get("data", "") if item["method"] == "eth_call" else ""
            span = _log_span(item)
            if (
                span is not None
                and self.max_log_range
                and span[1] - span[0] + 1 > self.max_log_range
            ):
                self.log_refusals += 1
                error = {
                    "code": -32005,
                    "message": f"eth_getLogs is limited to a {self.max_log_range} blocks range",
                }
                refused[index] = {"jsonrpc": "2.0", "id": item["id"], "error": error}
            elif self.mode == "lagging" and item["method"] == "eth_call":
                error = {"code": -32000, "message": "header not found"}
                refused[index] = {"jsonrpc": "2.0", "id": item["id"], "error": error}
            elif self.max_call_hex is not None and len(data) > self.max_call_hex:
                self.size_errors += 1
                error = {"code": -32000, "message": "response size exceeded"}
                refused[index] = {"jsonrpc": "2.0", "id": item["id"], "error": error}
            else:
                forward.append(item)
        forwarded: list[dict[str, Any]] = []
        if forward:
            response = await self._client.post(self.upstream, json=forward)
            forwarded = response.json()
        by_id = {answer["id"]: answer for answer in forwarded}
        for item in forward:
            span = _log_span(item)
            answer = by_id[item["id"]]
            if span is None or "result" not in answer:
                continue
            if self.max_log_results is not None and len(answer["result"]) > self.max_log_results:
                self.log_refusals += 1
                message = f"query returned more than {self.max_log_results} results"
                by_id[item["id"]] = {
                    "jsonrpc": "2.0",
                    "id": item["id"],
                    "error": {"code": -32005, "message": message},
                }
            else:
                self.log_ranges.append(span)
        return [refused.get(i) or by_id[item["id"]] for i, item in enumerate(items)]

    async def close(self) -> None:
        """Close the upstream client."""
        await self._client.aclose()


def _log_span(item: dict[str, Any]) -> tuple[int, int] | None:
    if item["method"] != "eth_getLogs":
        return None
    query = item["params"][0]
    return int(query["fromBlock"], 16), int(query["toBlock"], 16)


@asynccontextmanager
async def rpc_proxy(upstream: str) -> AsyncIterator[tuple[str, RpcProxy]]:
    """A running RpcProxy in front of `upstream`; yields (proxy URL, proxy)."""
    proxy = RpcProxy(upstream)
    try:
        async with serve(proxy.handle) as url:
            yield url, proxy
    finally:
        await proxy.close()


async def hang(_: web.Request) -> web.StreamResponse:
    """A handler that never answers in time."""
    await asyncio.sleep(3600)
    return web.Response()
