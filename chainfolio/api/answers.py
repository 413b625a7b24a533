"""Serving answers from the per-user cache (`chainfolio.core.cache`) on GraphQL and REST.

GraphQL: persisted-query hashes are first resolved to their documents
(`chainfolio.schema.persisted`). Then a POSTed JSON query whose root fields are all in
`CACHEABLE_FIELDS` (every query field over stored data) is answered from the cache when the
user's entry is there; otherwise Strawberry runs as usual and an answer without errors is kept.
The key is the query text, its variables and operation name, so two differently shaped queries
never share an answer. Anything else (other fields, mutations, subscriptions, GET, other
content types, unparsable documents) goes straight to Strawberry, untouched.

REST: `cached_route` does the same for the GET routes over stored data, keyed by path and
query string. Every answer says `x-chainfolio-cache: hit` or `miss`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainfolio.api.web import graphql_error_response
from chainfolio.core.cache import CACHE_REQUESTS, NoCache, expiry
from chainfolio.core.errors import ChainfolioError, InvalidInput
from chainfolio.core.inputs import decode_json
from chainfolio.resolvers.context import Caller, Services
from chainfolio.schema.persisted import PersistedQueries

CACHE_HEADER = "x-chainfolio-cache"
CACHEABLE_FIELDS = frozenset(
    {
        # the stored state itself
        "portfolio",
        "allocation",
        "allocationTargets",
        "rebalance",
        "wallets",
        # windows ending now over stored snapshots, flows and prices: cached, they lag the
        # sliding window by at most the TTL — the freshness the values themselves have
        "history",
        "performance",
        "compare",
        "__typename",
    }
)
# Longer documents are not worth a second parse here: they go to Strawberry uncached.
MAX_CACHED_QUERY = 8 * 1024


@functools.lru_cache(maxsize=512)
def _operation(query: str, operation_name: str | None) -> OperationDefinitionNode | None:
    """The one operation a request runs, or None (unparsable, none or ambiguous)."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    return operations[0] if len(operations) == 1 else None


def operation_kind(query: str, operation_name: str | None) -> OperationType | None:
    """Query, mutation or subscription: what the request runs (None when unparsable,
    missing or ambiguous). Documents longer than `MAX_CACHED_QUERY` are not parsed here."""
    if len(query) > MAX_CACHED_QUERY:
        return None
    operation = _operation(query, operation_name)
    return None if operation is None else operation.operation


def cacheable_query(query: str, operation_name: str | None) -> bool:
    """Whether the operation is a query whose root fields all read stored state only."""
    operation = _operation(query, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    return all(
        isinstance(selection, FieldNode) and selection.name.value in CACHEABLE_FIELDS
        for selection in operation.selection_set.selections
    )


def _cacheable(payload: dict[str, Any]) -> bool:
    """Whether the payload is a query the cache may answer (`cacheable_query`)."""
    query = payload.get("query")
    name = payload.get("operationName")
    if not isinstance(query, str) or len(query) > MAX_CACHED_QUERY:
        return False
    if name is not None and not isinstance(name, str):
        return False
    return cacheable_query(query, name)


def _graphql_key(payload: dict[str, Any]) -> str:
    """The cache key of a cacheable query: its text, variables and operation name."""
    canonical = orjson.dumps(
        [payload["query"], payload.get("variables"), payload.get("operationName")],
        option=orjson.OPT_SORT_KEYS,
    )
    return "graphql:" + hashlib.blake2b(canonical, digest_size=16).hexdigest()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect

    return replayed


@dataclass(frozen=True, slots=True)
class _Entry:
    """Where a fresh answer goes after a miss: the lookup's user, key, time and generation."""

    services: Services
    user_id: uuid.UUID
    key: str
    now: datetime
    generation: Any

    async def keep(self, answer: bytes) -> None:
        """Store the answer, unless the user's data changed since the lookup."""
        ttl_s = self.services.settings.cache_ttl_s
        cache = self.services.cache
        await cache.store(self.user_id, self.key, answer, self.generation, expiry(self.now, ttl_s))


async def _lookup(
    services: Services, caller: Caller, key_of: Callable[[], str], surface: str
) -> tuple[bytes | None, _Entry | None]:
    """The cached answer (None on a miss), counted per surface, and where to keep a new one:
    None with the cache off (no key is computed, nothing looked up, nothing will be kept)."""
    if isinstance(services.cache, NoCache):
        CACHE_REQUESTS.labels(surface, "miss").inc()
        return None, None
    key = key_of()
    now = services.clock()
    found, generation = await services.cache.lookup(caller.user_id, key, now)
    CACHE_REQUESTS.labels(surface, "miss" if found is None else "hit").inc()
    return found, _Entry(services, caller.user_id, key, now, generation)


def _hit(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={CACHE_HEADER: "hit"})


class DirectGraphQL(Protocol):
    """Strawberry's ASGI app with a direct answer for the plain case (`app.GraphQLApp`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    async def answer(
        self, scope: Scope, receive: Receive, payload: dict[str, Any]
    ) -> tuple[Response, bool] | None: ...


async def graphql_with_cache(  # noqa: PLR0917 - an ASGI call plus its context
    app: DirectGraphQL,
    scope: Scope,
    receive: Receive,
    send: Send,
    services: Services,
    caller: Caller,
    persisted: PersistedQueries,
) -> None:
    """Serve an authenticated GraphQL HTTP request: persisted-query hashes resolved to their
    documents, then from the cache where the answer may be."""
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    if scope["method"] != "POST" or not content_type.startswith(b"application/json"):
        await app(scope, receive, send)
        return
    body = await _read_body(receive)
    try:
        payload = decode_json(body)
    except json.JSONDecodeError as exc:  # in the GraphQL shape, not strawberry's plain text
        refused = InvalidInput(f"request body is not valid JSON: {exc.msg}", code="INVALID_JSON")
        await graphql_error_response(refused)(scope, receive, send)
        return
    if not isinstance(payload, dict):
        await app(scope, _replay(body, receive), send)
        return
    try:
        resolved = persisted.resolve(payload)
    except ChainfolioError as exc:
        await graphql_error_response(exc)(scope, receive, send)
        return
    if resolved is not payload:
        payload, body = resolved, orjson.dumps(resolved)
    cacheable = _cacheable(payload)
    entry = None
    if cacheable:
        cached, entry = await _lookup(services, caller, lambda: _graphql_key(payload), "graphql")
        if cached is not None:
            await _hit(cached)(scope, receive, send)
            return
    direct = await app.answer(scope, _replay(body, receive), payload)
    if direct is None:  # not the plain case: Strawberry's view, as it always was
        await _through_view(app, scope, _replay(body, receive), send, cacheable, entry)
        return
    response, without_errors = direct
    if cacheable:
        response.headers[CACHE_HEADER] = "miss"
    kept = len(response.body) <= services.settings.cache_max_bytes_per_user
    if entry is not None and response.status_code == 200 and kept and without_errors:
        await entry.keep(bytes(response.body))
    await response(scope, receive, send)


async def _through_view(  # noqa: PLR0917 - an ASGI call plus where its answer goes
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    cacheable: bool,
    entry: _Entry | None,
) -> None:
    if not cacheable:
        await app(scope, receive, send)
        return
    status = 0
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message = {
                **message,
                "headers": [*message.get("headers", []), (CACHE_HEADER.encode(), b"miss")],
            }
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
        await send(message)

    await app(scope, receive, capture)
    answer = b"".join(chunks)
    if entry is None:  # the cache is off: nothing to keep, nothing to parse
        return
    # an answer over the user's bytes is never kept: not parsed either (2 MB took 30 ms of
    # the event loop for nothing)
    kept = len(answer) <= entry.services.settings.cache_max_bytes_per_user
    if status == 200 and kept and _without_errors(answer):
        await entry.keep(answer)


def _without_errors(answer: bytes) -> bool:
    try:
        decoded = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return False
    return isinstance(decoded, dict) and "data" in decoded and not decoded.get("errors")


Handler = Callable[[Request], Awaitable[Response]]


def cached_route(
    authenticate: Callable[[Request], Awaitable[Caller]],
) -> Callable[[Handler], Handler]:
    """A REST GET route over stored state, answered from the user's cache when it can be."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def cached(request: Request) -> Response:
            caller = await authenticate(request)
            services: Services = request.app.state.services
            found, entry = await _lookup(
                services, caller, lambda: f"rest:{request.url.path}?{request.url.query}", "rest"
            )
            if found is not None:
                return _hit(found)
            response = await handler(request)
            response.headers[CACHE_HEADER] = "miss"
            if entry is not None and response.status_code == 200:
                await entry.keep(bytes(response.body))
            return response

        return cached

    return decorate
