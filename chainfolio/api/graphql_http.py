"""GraphQL over HTTP and websockets: Strawberry's ASGI app with our context, authentication
and close codes, its direct answer for plain POSTed queries, and the authenticating front
that puts the answer cache before it (`api.answers`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from graphql import OperationType as GraphQLOperation
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from chainfolio.api.answers import graphql_with_cache, operation_kind
from chainfolio.api.sockets import SLOT, LegacyWSHandler, TransportWSHandler
from chainfolio.api.web import (
    authenticator_of,
    cancel,
    close_at_expiry,
    close_code,
    graphql_error_response,
    services_of,
)
from chainfolio.core.errors import ChainfolioError
from chainfolio.core.inputs import decode_json
from chainfolio.schema.context import Context
from chainfolio.schema.persisted import PersistedQueries

_DIRECT_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
"""What `GraphQLApp.answer` executes itself over HTTP POST: subscriptions (streamed over
HTTP) stay with Strawberry's view."""
_DIRECT_KINDS = frozenset({GraphQLOperation.QUERY, GraphQLOperation.MUTATION})


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """Closes with 4401 (not Strawberry's 4403) when the connection failed authentication,
    4429 past the user's rate limit (`web.close_code`). A socket closed at its token's `exp`
    (`web.close_at_expiry`) tells Strawberry so when it next sends, as a client leaving does."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.ws.application_state is WebSocketState.DISCONNECTED:
            raise WebSocketDisconnected
        await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        refused = self.ws.scope.get("state", {}).get("auth_error")
        if isinstance(refused, ChainfolioError):
            code, reason = close_code(refused)
        await self.ws.close(code=code, reason=reason)


def _token_from_params(params: dict[str, Any] | None) -> str | None:
    for key in ("Authorization", "authorization", "authToken", "token"):
        value = (params or {}).get(key)
        if isinstance(value, str) and value:
            return value if " " in value else f"Bearer {value}"
    return None


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context and bearer authentication."""

    websocket_adapter_class = _WebSocketAdapter
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    async def get_context(self, request: Any, response: Any) -> Context:
        caller = request.scope.get("state", {}).get("caller")
        return Context(services_of(request), caller, request, response)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate subscriptions from the `connection_init` payload (or the handshake)."""
        header = _token_from_params(context.connection_params) or context.request.headers.get(
            "authorization"
        )
        authenticator = authenticator_of(context.request)
        try:
            context.caller_ = await authenticator.caller(header)
            slot = await authenticator.sockets.acquire(context.caller_)
            context.request.scope.setdefault("state", {})[SLOT] = slot
        except ChainfolioError as exc:
            context.request.scope.setdefault("state", {})["auth_error"] = exc
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from exc
        # 4401 "token expired" at the token's `exp`; cancelled when the socket ends first
        expiry = close_at_expiry(context.request, context.caller_)
        context.request.scope.setdefault("state", {})["expiry"] = expiry
        unset: UnsetType = UNSET
        return unset

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    async def answer(
        self, scope: Scope, receive: Receive, payload: dict[str, Any]
    ) -> tuple[Response, bool] | None:
        """A POSTed JSON query or mutation answered as Strawberry's view would — same
        execution, result processing and encoding — without the view's second parse of the
        body and its per-request adapters; with whether it is an answer without errors.
        None when the payload is not that plain case (the caller hands the request to
        Strawberry, untouched)."""
        query = payload.get("query")
        variables = payload.get("variables")
        name = payload.get("operationName")
        extensions = payload.get("extensions")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict | None)
            or not isinstance(name, str | None)
            or not isinstance(extensions, dict | None)
            or operation_kind(query, name) not in _DIRECT_KINDS
        ):
            return None
        request = Request(scope, receive)
        sub_response = await self.get_sub_response(request)
        result = await self.schema.execute(
            query,
            variable_values=variables,
            context_value=await self.get_context(request, sub_response),
            operation_name=name,
            allowed_operation_types=_DIRECT_OPERATIONS,
            operation_extensions=extensions,
        )
        response = self.create_response(
            response_data=await self.process_result(request, result), sub_response=sub_response
        )
        return response, result.data is not None and not result.errors

    def decode_json(self, data: str | bytes) -> object:
        """Bodies, variables and websocket messages: JSON nested deeper than
        `inputs.MAX_JSON_DEPTH` is malformed (HTTP 400, websocket close 4400)."""
        return decode_json(data)


class AuthenticatedGraphQL:
    """Authenticates HTTP GraphQL requests (401 + GraphQL-shaped errors) before Strawberry.

    The GraphiQL page is answered here as a static page (a browser GET without a query; it
    sends the token itself): no document is executed without a token, on any route or method
    — before, `GET /graphql?query=…` with `Accept: text/html` ran the query anonymously.
    """

    def __init__(self, graphql: GraphQLApp, persisted: PersistedQueries) -> None:
        self._graphql = graphql
        self._persisted = persisted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            try:
                await self._graphql(scope, receive, send)
            finally:
                await cancel(scope.get("state", {}).get("expiry"))
            return
        if scope["type"] != "http":
            await self._graphql(scope, receive, send)
            return
        request = Request(scope, receive)
        if (
            request.method == "GET"
            and "text/html" in request.headers.get("accept", "")
            and not request.query_params
        ):
            await HTMLResponse(self._graphql.graphql_ide_html)(scope, receive, send)
            return
        try:
            caller = await authenticator_of(request).caller(request.headers.get("authorization"))
        except ChainfolioError as exc:  # 401 (or 429: the user's rate limit)
            await graphql_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await graphql_with_cache(
            self._graphql, scope, receive, send, services_of(request), caller, self._persisted
        )
