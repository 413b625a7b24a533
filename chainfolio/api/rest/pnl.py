"""REST P&L: `/v1/portfolio/pnl` and the streamed CSV exports."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from chainfolio.api.answers import cached_route
from chainfolio.api.rest.envelope import (
    caller_of,
    iso,
    ok,
)
from chainfolio.api.web import number, services_of
from chainfolio.core.currencies import parse_currency
from chainfolio.core.domain import plain
from chainfolio.core.periods import parse_period
from chainfolio.resolvers import pnl as pnl_resolver
from chainfolio.resolvers import pnl_export


async def _pnl_view(request: Request) -> pnl_resolver.PnlView:
    caller = await caller_of(request)
    services = services_of(request)
    params = request.query_params
    async with services.engine.connect() as db:
        return await pnl_resolver.resolve_pnl(
            db,
            user_id=caller.user_id,
            period=params.get("period", "all"),
            currency=params.get("currency"),
            now=services.clock(),
            method=params.get("method") or None,
        )


@cached_route(caller_of)
async def get_pnl(request: Request) -> Response:
    """GET /v1/portfolio/pnl?period=all&currency=USD&method= — realised and unrealised P&L."""
    view = await _pnl_view(request)
    return ok(
        {
            "period": view.period,
            "start": iso(view.start),
            "end": iso(view.end),
            "currency": view.currency,
            "method": view.method,
            "realized": number(view.realized),
            "realizedExact": plain(view.realized),
            "unrealized": number(view.unrealized),
            "unrealizedExact": None if view.unrealized is None else plain(view.unrealized),
            "unvalued": view.unvalued,
            "complete": view.complete,
            "byAsset": [
                {
                    "asset": a.asset,
                    "quantity": plain(a.quantity),
                    "value": number(a.value),
                    "costBasis": number(a.cost_basis),
                    "averageCost": number(a.average_cost),
                    "realized": number(a.realized),
                    "unrealized": number(a.unrealized),
                    "unrealizedPercent": number(a.unrealized_percent),
                    "unvalued": a.unvalued,
                    "exact": {
                        k: None if v is None else plain(v)
                        for k, v in (
                            ("value", a.value),
                            ("costBasis", a.cost_basis),
                            ("averageCost", a.average_cost),
                            ("realized", a.realized),
                            ("unrealized", a.unrealized),
                        )
                    },
                }
                for a in view.by_asset
            ],
        }
    )


def _csv(header: Sequence[str], rows: AsyncIterator[list[list[str]] | str], name: str) -> Response:
    """A streamed CSV file: batches of rows, or of lines already written (`\\r\\n`)."""

    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        async for batch in rows:
            if isinstance(batch, str):
                buffer.write(batch)
            else:
                writer.writerows(batch)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def get_transactions_csv(request: Request) -> Response:
    """GET /v1/portfolio/transactions.csv?period=all&currency=USD — every movement, streamed."""
    caller = await caller_of(request)
    services = services_of(request)
    params = request.query_params
    currency = parse_currency(params.get("currency"))
    period = params.get("period", "all")
    now = services.clock()
    parse_period(period, now=now)  # a bad period is a 400, not a broken stream

    async def rows() -> AsyncIterator[str]:
        async with services.engine.connect() as db:
            async for batch in pnl_export.transaction_lines(
                db,
                user_id=caller.user_id,
                currency=currency,
                chain_names={c: info.name for c, info in services.chains.items()},
                period=period,
                now=now,
            ):
                yield batch

    return _csv(pnl_export.TRANSACTION_COLUMNS, rows(), "transactions.csv")


async def get_pnl_csv(request: Request) -> Response:
    """GET /v1/portfolio/pnl.csv?period=all&currency=USD — the P&L by asset."""
    view = await _pnl_view(request)

    async def rows() -> AsyncIterator[list[list[str]]]:
        yield pnl_export.pnl_rows(view)

    return _csv(pnl_export.PNL_COLUMNS, rows(), "pnl.csv")
