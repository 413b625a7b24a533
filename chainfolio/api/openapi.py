"""The OpenAPI 3 document of the REST routes, served at `/openapi.json`.

Written as data next to the routes rather than derived from docstrings; only operations the
app actually serves are listed (`openapi_document` is given the app's routes), so the
document never promises a route that is not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chainfolio.core.periods import INTERVALS, PERIOD_ALIASES, PERIODS

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def _success(data: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"type": "boolean", "enum": [True]}, "data": data},
    }


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description, **schema}


_PERIOD = _query(
    "period",
    "time window (default 30d)",
    {"schema": {"type": "string", "enum": [*PERIODS, *PERIOD_ALIASES]}},
)
_INTERVAL = _query(
    "interval", "bucket width (default 1d)", {"schema": {"type": "string", "enum": [*INTERVALS]}}
)
_BENCHMARK = _query(
    "benchmark", "asset symbol to compare with (default ETH)", {"schema": {"type": "string"}}
)
_LIMIT = _query(
    "limit",
    "page size, 1 to 500 (default 50); the answer then has `page`",
    {"schema": {"type": "integer", "minimum": 1, "maximum": 500}},
)
_CURSOR = _query("cursor", "`page.nextCursor` of the previous page", {"schema": {"type": "string"}})
_OBJECT: Schema = {"type": "object"}
_ARRAY: Schema = {"type": "array", "items": {"type": "object"}}

_WALLET_BODY: Schema = {
    "type": "object",
    "required": ["chainId", "address"],
    "properties": {
        "chainId": {"type": "integer"},
        "address": {"type": "string", "description": "0x-prefixed EVM address"},
        "label": {"type": "string"},
    },
}
_TARGETS_BODY: Schema = {
    "type": "object",
    "required": ["targets"],
    "properties": {
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "weight"],
                "properties": {
                    "key": {"type": "string"},
                    "weight": {"type": "number", "description": "percent"},
                    "members": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "band": {"type": "number", "description": "drift band, percent"},
        "minTradeUsd": {"type": "number"},
    },
}


class _Op(NamedTuple):
    summary: str
    params: list[Schema]
    body: Schema | None  # JSON request body
    data: Schema  # `data` of the success envelope
    status: int = 200


_OPERATIONS: dict[tuple[str, str], _Op] = {
    ("/v1/portfolio", "GET"): _Op("Portfolio overview and holdings", [], None, _OBJECT, 200),
    ("/v1/portfolio/holdings", "GET"): _Op(
        "Holdings a page at a time", [_LIMIT, _CURSOR], None, _ARRAY, 200
    ),
    ("/v1/portfolio/history", "GET"): _Op(
        "Value history as {timestamp, value} points",
        [_PERIOD, _INTERVAL],
        None,
        _ARRAY,
        200,
    ),
    ("/v1/portfolio/performance", "GET"): _Op(
        "Returns (TWR, MWR) and risk over a period",
        [_PERIOD],
        None,
        _OBJECT,
        200,
    ),
    ("/v1/portfolio/allocation", "GET"): _Op(
        "Weights by asset, chain and category",
        [],
        None,
        _OBJECT,
        200,
    ),
    ("/v1/portfolio/targets", "GET"): _Op("Saved allocation targets", [], None, _OBJECT, 200),
    ("/v1/portfolio/targets", "PUT"): _Op(
        "Replace allocation targets",
        [],
        _TARGETS_BODY,
        _OBJECT,
        200,
    ),
    ("/v1/portfolio/rebalance", "GET"): _Op(
        "Trades back within the drift bands",
        [],
        None,
        _OBJECT,
        200,
    ),
    ("/v1/portfolio/compare", "GET"): _Op(
        "Portfolio against a benchmark asset",
        [_PERIOD, _INTERVAL, _BENCHMARK],
        None,
        _OBJECT,
        200,
    ),
    ("/v1/wallets", "GET"): _Op("The user's wallets", [_LIMIT, _CURSOR], None, _ARRAY, 200),
    ("/v1/wallets", "POST"): _Op("Track a wallet", [], _WALLET_BODY, _OBJECT, 201),
    ("/v1/wallets/{wallet_id}", "DELETE"): _Op("Stop tracking a wallet", [], None, _OBJECT, 200),
}

_UNAUTHENTICATED = {"/healthz", "/readyz"}


def _operation(path: str, op: _Op) -> Schema:
    operation: Schema = {
        "summary": op.summary,
        "parameters": list(op.params),
        "responses": {
            str(op.status): {
                "description": "success",
                "content": {"application/json": {"schema": _success(op.data)}},
            },
            "default": {
                "description": "error (400, 401, 404, 413, 422, 429, 503 …)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if "{wallet_id}" in path:
        operation["parameters"].append(
            {"name": "wallet_id", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.body}},
        }
    return operation


def _health(summary: str) -> Schema:
    return {
        "summary": summary,
        "security": [],
        "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": _OBJECT}}},
            "503": {
                "description": "not ready",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }


def openapi_document(routes: Iterable[BaseRoute]) -> Schema:
    """The OpenAPI 3.0 document for the REST operations among `routes`."""
    served = {
        (route.path, method)
        for route in routes
        if isinstance(route, Route)
        for method in (route.methods or ())
    }
    paths: dict[str, Schema] = {}
    for (path, method), op in _OPERATIONS.items():
        if (path, method) in served:
            paths.setdefault(path, {})[method.lower()] = _operation(path, op)
    for path in sorted(_UNAUTHENTICATED):
        if (path, "GET") in served:
            paths[path] = {"get": _health("Liveness" if path == "/healthz" else "Readiness")}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "chainfolio REST API",
            "version": "1",
            "description": "Errors: {success: false, error: {code, message}}. "
            "GraphQL is at /graphql.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": ERROR},
        },
    }


async def openapi_endpoint(request: Request) -> Response:
    """GET /openapi.json."""
    return JSONResponse(openapi_document(request.app.routes))
