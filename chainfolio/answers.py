"""Serving answers from the per-user cache (`chainfolio.cache`) on GraphQL and REST.

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
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainfolio.cache import CACHE_REQUESTS, expiry
from chainfolio.errors import ChainfolioError
from chainfolio.resolvers.context import Caller, Services
from chainfolio.schema.persisted import PersistedQueries
from chainfolio.web import graphql_error_response

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
def cacheable_query(query: str, operation_name: str | None) -> bool:
    """Whether the operation is a query whose root fields all read stored state only."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    return all(
        isinstance(selection, FieldNode) and selection.name.value in CACHEABLE_FIELDS
        for selection in operations[0].selection_set.selections
    )


def _graphql_key(payload: dict[str, Any]) -> str | None:
    query = payload.get("query")
    name = payload.get("operationName")
    if not isinstance(query, str) or len(query) > MAX_CACHED_QUERY:
        return None
    if name is not None and not isinstance(name, str):
        return None
    if not cacheable_query(query, name):
        return None
    canonical = orjson.dumps([query, payload.get("variables"), name], option=orjson.OPT_SORT_KEYS)
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


def _hit(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={CACHE_HEADER: "hit"})


async def graphql_with_cache(  # noqa: PLR0917 - an ASGI call plus its context
    app: ASGIApp,
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
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        try:
            resolved = persisted.resolve(payload)
        except ChainfolioError as exc:
            await graphql_error_response(exc)(scope, receive, send)
            return
        if resolved is not payload:
            payload, body = resolved, orjson.dumps(resolved)
    key = _graphql_key(payload) if isinstance(payload, dict) else None
    if key is None:
        await app(scope, _replay(body, receive), send)
        return
    now = services.clock()
    cached, generation = await services.cache.lookup(caller.user_id, key, now)
    if cached is not None:
        CACHE_REQUESTS.labels("graphql", "hit").inc()
        await _hit(cached)(scope, receive, send)
        return
    CACHE_REQUESTS.labels("graphql", "miss").inc()
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

    await app(scope, _replay(body, receive), capture)
    answer = b"".join(chunks)
    if status == 200 and _without_errors(answer):
        await services.cache.store(
            caller.user_id, key, answer, generation, expiry(now, services.settings.cache_ttl_s)
        )


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
            key = f"rest:{request.url.path}?{request.url.query}"
            now = services.clock()
            found, generation = await services.cache.lookup(caller.user_id, key, now)
            if found is not None:
                CACHE_REQUESTS.labels("rest", "hit").inc()
                return _hit(found)
            CACHE_REQUESTS.labels("rest", "miss").inc()
            response = await handler(request)
            response.headers[CACHE_HEADER] = "miss"
            if response.status_code == 200:
                await services.cache.store(
                    caller.user_id,
                    key,
                    bytes(response.body),
                    generation,
                    expiry(now, services.settings.cache_ttl_s),
                )
            return response

        return cached

    return decorate
