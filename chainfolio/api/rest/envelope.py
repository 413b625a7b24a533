"""What every /v1 route shares: the success envelope, the caller, pages, bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from chainfolio.api.web import JSONBody, authenticator_of, services_of
from chainfolio.core.errors import InvalidInput, PayloadTooLarge
from chainfolio.resolvers.context import Caller, Services
from chainfolio.resolvers.pages import Page

MAX_BODY = 16 * 1024


def ok(data: Any, status: int = 200) -> JSONBody:
    """The seed's success envelope."""
    return JSONBody({"success": True, "data": data}, status_code=status)


async def caller_of(request: Request) -> Caller:
    """The request's caller, authenticated (and counted by the rate limiter) once."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:
        caller = await authenticator_of(request).caller(request.headers.get("authorization"))
        request.state.caller = caller
    return caller


@asynccontextmanager
async def reading(request: Request) -> AsyncIterator[tuple[Caller, Services, AsyncConnection]]:
    """The caller, the services and a pooled connection: what every read route starts with."""
    caller = await caller_of(request)
    services = services_of(request)
    async with services.engine.connect() as db:
        yield caller, services, db


async def changed(request: Request, caller: Caller, *, wallets: bool = False) -> None:
    """After a committed change, before answering: `Services.changed`."""
    await services_of(request).changed(caller.user_id, wallets=wallets)


def page_params(request: Request) -> tuple[int | None, str | None]:
    """`limit` and `cursor` of a list route (limit checked by the resolver)."""
    limit = request.query_params.get("limit")
    if limit is not None and not limit.isdigit():
        raise InvalidInput(f"limit must be a whole number, got {limit!r}", code="INVALID_PAGE")
    return (int(limit) if limit is not None else None), request.query_params.get("cursor")


def paged(data: list[Any], page: Page[Any]) -> JSONBody:
    """The success envelope of one page of a list: `page` says how to ask for the next."""
    return JSONBody(
        {
            "success": True,
            "data": data,
            "page": {
                "nextCursor": page.end_cursor if page.has_next_page else None,
                "hasNextPage": page.has_next_page,
                "totalCount": page.total_count,
            },
        }
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def decimal_field(value: Any, *, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{name} must be a number", code="INVALID_TARGETS")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"{name} must be a number", code="INVALID_TARGETS") from exc
    if not result.is_finite():
        raise InvalidInput(f"{name} must be a finite number", code="INVALID_TARGETS")
    return result


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"request body larger than {MAX_BODY} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("request body is not valid JSON", code="INVALID_JSON") from exc
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object", code="INVALID_JSON")
    return data
