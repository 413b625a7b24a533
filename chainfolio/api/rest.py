"""The seed's REST compatibility routes (`/v1/portfolio*`), on the same resolvers as GraphQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from chainfolio.api.answers import cached_route
from chainfolio.api.web import JSONBody, authenticator_of, number, services_of
from chainfolio.core.currencies import parse_currency
from chainfolio.core.domain import plain
from chainfolio.core.errors import InvalidInput, PayloadTooLarge
from chainfolio.core.periods import parse_period
from chainfolio.resolvers import allocation as allocation_resolver
from chainfolio.resolvers import compare as compare_resolver
from chainfolio.resolvers import history as history_resolver
from chainfolio.resolvers import performance as performance_resolver
from chainfolio.resolvers import pnl as pnl_resolver
from chainfolio.resolvers import portfolio as portfolio_resolver
from chainfolio.resolvers import targets as targets_resolver
from chainfolio.resolvers import wallets as wallets_resolver
from chainfolio.resolvers.allocation import PolicyView, Slice
from chainfolio.resolvers.context import Caller
from chainfolio.resolvers.currency import convert_history
from chainfolio.resolvers.pages import Page
from chainfolio.storage import accounts
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.holdings import StoredHolding, current_holdings

MAX_BODY = 16 * 1024


def ok(data: Any, status: int = 200) -> JSONBody:
    """The seed's success envelope."""
    return JSONBody({"success": True, "data": data}, status_code=status)


async def _caller(request: Request) -> Caller:
    """The request's caller, authenticated (and counted by the rate limiter) once."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:
        caller = await authenticator_of(request).caller(request.headers.get("authorization"))
        request.state.caller = caller
    return caller


async def _changed(request: Request, caller: Caller, *, wallets: bool = False) -> None:
    """After a committed change, before answering: `Services.changed`."""
    await services_of(request).changed(caller.user_id, wallets=wallets)


@cached_route(_caller)
async def get_portfolio(request: Request) -> Response:
    """GET /v1/portfolio — the seed's overview shape, plus holdings and freshness."""
    caller = await _caller(request)
    services = services_of(request)
    async with services.engine.connect() as db:
        view = await portfolio_resolver.resolve_portfolio(
            db, user_id=caller.user_id, now=services.clock()
        )
    return ok(
        {
            "totalValue": number(view.total_value),
            "change24h": number(view.change_24h),
            "changePercent24h": number(view.change_percent_24h),
            "chains": [
                {
                    "chain": c.chain,
                    "chainId": c.chain_id,
                    "value": number(c.value),
                    "stale": c.stale,
                }
                for c in view.chains
            ],
            "assets": [
                {
                    "asset": a.asset,
                    "balance": number(a.balance),
                    "value": number(a.value),
                    "balanceExact": plain(a.balance),
                    "loan": number(a.loan),
                    "loanExact": plain(a.loan),
                    "netBalance": number(a.net_balance),
                }
                for a in view.assets
            ],
            "categories": [
                {"category": c.category, "value": number(c.value)} for c in view.categories
            ],
            "holdings": [_holding_json(s) for s in view.holdings],
            "stale": view.stale,
            "staleChains": list(view.stale_chains),
            "incomplete": view.incomplete,
            "updatedAt": view.updated_at.isoformat() if view.updated_at else None,
        }
    )


def _holding_json(s: StoredHolding) -> dict[str, Any]:
    return {
        "chain": s.chain,
        "chainId": s.holding.chain_id,
        "wallet": s.holding.wallet,
        "asset": s.holding.symbol,
        "contract": s.holding.contract,
        "category": s.holding.category.value,
        "amount": None if s.holding.amount is None else str(s.holding.amount),
        "decimals": s.holding.decimals,
        "balance": number(s.balance),
        "price": number(s.holding.price.usd) if s.holding.price else None,
        "priceSource": s.holding.price.source if s.holding.price else None,
        "value": number(s.value_usd),
        "updatedAt": s.updated_at.isoformat(),
        "stale": s.holding.stale,
        "error": s.holding.error,
    }


def _page_params(request: Request) -> tuple[int | None, str | None]:
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


@cached_route(_caller)
async def get_holdings(request: Request) -> Response:
    """GET /v1/portfolio/holdings?limit=50&cursor=… — holdings a page at a time."""
    caller = await _caller(request)
    services = services_of(request)
    limit, cursor = _page_params(request)
    async with services.engine.connect() as db:
        holdings = await current_holdings(db, user_id=caller.user_id)
    page = portfolio_resolver.holdings_page(holdings, first=limit, after=cursor)
    return paged([_holding_json(s) for _, s in page.edges], page)


@cached_route(_caller)
async def get_history(request: Request) -> Response:
    """GET /v1/portfolio/history?period=90d&interval=1d — a list of {timestamp, value}."""
    caller = await _caller(request)
    services = services_of(request)
    async with services.engine.connect() as db:
        view = await history_resolver.resolve_history(
            db,
            user_id=caller.user_id,
            period=request.query_params.get("period", "30d"),
            interval=request.query_params.get("interval", "1d"),
            now=services.clock(),
            retention_days=services.settings.snapshot_retention_days,
        )
        currency = parse_currency(request.query_params.get("currency"))
        view = await convert_history(db, view, currency)
    points = [{"timestamp": _iso(p.bucket), "value": number(p.total_value)} for p in view.points]
    return ok(points)


@cached_route(_caller)
async def get_performance(request: Request) -> Response:
    """GET /v1/portfolio/performance?period=30d&mar=0.05&annualise=true — the seed's fields,
    plus TWR, MWR, risk."""
    caller = await _caller(request)
    services = services_of(request)
    params = request.query_params
    mar = performance_resolver.parse_mar(params.get("mar"))
    annualise = performance_resolver.parse_flag(params.get("annualise"), name="annualise")
    async with services.engine.connect() as db:
        view = await performance_resolver.resolve_performance(
            db,
            user_id=caller.user_id,
            period=params.get("period", "30d"),
            now=services.clock(),
            retention_days=services.settings.snapshot_retention_days,
            risk_free_rate=services.settings.risk_free_rate,
            mar=mar,
            annualise=annualise,
        )
    return ok(performance_resolver.performance_fields(view))


async def _pnl_view(request: Request) -> pnl_resolver.PnlView:
    caller = await _caller(request)
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


@cached_route(_caller)
async def get_pnl(request: Request) -> Response:
    """GET /v1/portfolio/pnl?period=all&currency=USD&method= — realised and unrealised P&L."""
    view = await _pnl_view(request)
    return ok(
        {
            "period": view.period,
            "start": _iso(view.start),
            "end": _iso(view.end),
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


def _csv(header: Sequence[str], rows: AsyncIterator[list[list[str]]], name: str) -> Response:
    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        async for batch in rows:
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
    caller = await _caller(request)
    services = services_of(request)
    params = request.query_params
    currency = parse_currency(params.get("currency"))
    period = params.get("period", "all")
    now = services.clock()
    parse_period(period, now=now)  # a bad period is a 400, not a broken stream

    async def rows() -> AsyncIterator[list[list[str]]]:
        async with services.engine.connect() as db:
            async for batch in pnl_resolver.transaction_rows(
                db,
                user_id=caller.user_id,
                currency=currency,
                chain_names={c: info.name for c, info in services.chains.items()},
                period=period,
                now=now,
            ):
                yield batch

    return _csv(pnl_resolver.TRANSACTION_COLUMNS, rows(), "transactions.csv")


async def get_pnl_csv(request: Request) -> Response:
    """GET /v1/portfolio/pnl.csv?period=all&currency=USD — the P&L by asset."""
    view = await _pnl_view(request)

    async def rows() -> AsyncIterator[list[list[str]]]:
        yield pnl_resolver.pnl_rows(view)

    return _csv(pnl_resolver.PNL_COLUMNS, rows(), "pnl.csv")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _slices_json(slices: list[Slice]) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key,
            "label": s.label,
            "valueUsd": number(s.value_usd),
            "valueUsdExact": plain(s.value_usd),
            "weight": s.weight,
        }
        for s in slices
    ]


@cached_route(_caller)
async def get_allocation(request: Request) -> Response:
    """GET /v1/portfolio/allocation — weights by asset, chain and category (percent)."""
    caller = await _caller(request)
    async with services_of(request).engine.connect() as db:
        view = await allocation_resolver.resolve_allocation(db, user_id=caller.user_id)
    return ok(
        {
            "totalValue": number(view.total_value),
            "grossAssets": number(view.gross_assets),
            "liabilities": number(view.liabilities),
            "byAsset": _slices_json(view.by_asset),
            "byChain": _slices_json(view.by_chain),
            "byCategory": _slices_json(view.by_category),
            "unpricedCount": view.unpriced_count,
            "unpricedAssets": view.unpriced_assets,
        }
    )


def _policy_json(view: PolicyView) -> dict[str, Any]:
    return {
        "targets": [
            {"key": t.key, "weight": number(t.weight), "members": t.members} for t in view.targets
        ],
        "band": number(view.band),
        "minTradeUsd": number(view.min_trade_usd),
    }


@cached_route(_caller)
async def get_targets(request: Request) -> Response:
    """GET /v1/portfolio/targets — saved targets (percent), band (percent), minimum trade."""
    caller = await _caller(request)
    async with services_of(request).engine.connect() as db:
        view = await allocation_resolver.resolve_targets(db, user_id=caller.user_id)
    return ok(_policy_json(view))


def _decimal(value: Any, *, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{name} must be a number", code="INVALID_TARGETS")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"{name} must be a number", code="INVALID_TARGETS") from exc
    if not result.is_finite():
        raise InvalidInput(f"{name} must be a finite number", code="INVALID_TARGETS")
    return result


def _target(item: Any) -> tuple[str, Decimal, list[str]]:
    if not isinstance(item, dict) or not isinstance(item.get("key"), str):
        raise InvalidInput(
            "each target is an object with a string key and a weight", code="INVALID_TARGETS"
        )
    members = item.get("members") or []
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise InvalidInput("members must be a list of asset symbols", code="INVALID_TARGETS")
    return item["key"], _decimal(item.get("weight"), name="weight"), members


async def put_targets(request: Request) -> Response:
    """PUT /v1/portfolio/targets {targets: [{key, weight, members?}], band?, minTradeUsd?}."""
    caller = await _caller(request)
    data = await _json_body(request)
    targets = data.get("targets")
    if not isinstance(targets, list):
        raise InvalidInput("targets must be a list", code="INVALID_TARGETS")
    parsed = [_target(item) for item in targets]
    band = _decimal(data.get("band", 5), name="band")
    min_trade = _decimal(data.get("minTradeUsd", 50), name="minTradeUsd")
    async with services_of(request).engine.begin() as db:
        policy = await targets_resolver.set_allocation_targets(
            db, user_id=caller.user_id, targets=parsed, band_percent=band, min_trade_usd=min_trade
        )
    await _changed(request, caller)
    return ok(_policy_json(allocation_resolver.policy_view(policy)))


@cached_route(_caller)
async def get_rebalance(request: Request) -> Response:
    """GET /v1/portfolio/rebalance — suggested trades back within the bands, gas per chain."""
    caller = await _caller(request)
    services = services_of(request)
    async with services.engine.connect() as db:
        view = await allocation_resolver.resolve_rebalance(
            db, user_id=caller.user_id, chains=services.chains
        )
    return ok(
        {
            "withinBands": view.within_bands,
            "resultWithinBands": view.result_within_bands,
            "trades": [
                {
                    "side": t.side,
                    "asset": t.asset,
                    "chainId": t.chain_id,
                    "valueUsd": number(t.value_usd),
                    "amount": number(t.amount),
                    "amountExact": None if t.amount is None else plain(t.amount),
                    "position": t.position,
                }
                for t in view.trades
            ],
            "gas": [
                {
                    "chainId": g.chain_id,
                    "trades": g.trades,
                    "gasUnits": g.gas_units,
                    "costUsd": number(g.cost_usd),
                }
                for g in view.gas
            ],
            "totalGasUsd": number(view.total_gas_usd),
            "currentWeights": _slices_json(view.current_weights),
            "resultingWeights": _slices_json(view.resulting_weights),
            "targets": _slices_json(view.targets),
            "band": number(view.band),
            "minTradeUsd": number(view.min_trade_usd),
            "totalValueUsd": number(view.total_value_usd),
        }
    )


@cached_route(_caller)
async def get_compare(request: Request) -> Response:
    """GET /v1/portfolio/compare?period=90d&interval=1d&benchmark=ETH — indices and risk."""
    caller = await _caller(request)
    services = services_of(request)
    params = request.query_params
    async with services.engine.connect() as db:
        view = await compare_resolver.resolve_comparison(
            db,
            user_id=caller.user_id,
            period=params.get("period", "30d"),
            interval=params.get("interval") or None,
            benchmark=params.get("benchmark", "ETH"),
            now=services.clock(),
            retention_days=services.settings.snapshot_retention_days,
            risk_free_rate=services.settings.risk_free_rate,
        )
    stats = asdict(compare_resolver.comparison_stats(view))
    return ok(
        {
            "benchmark": view.benchmark,
            "period": view.period,
            "interval": view.interval,
            "start": _iso(view.start),
            "end": _iso(view.end),
            "timestamps": [_iso(t) for t in view.timestamps],
            "portfolio": view.portfolio,
            "benchmarkValues": view.benchmark_values,
            **{_camel(k): v for k, v in stats.items()},
            "intervals": view.intervals,
            "endIsLive": view.live_end,
            "startedLater": view.started_later,
            "nullReasons": compare_resolver.comparison_reasons(view),
        }
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _wallet_json(row: Wallet) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "chainId": row.chain_id,
        "address": row.address,
        "label": row.label,
        "createdAt": row.created_at.isoformat(),
    }


@cached_route(_caller)
async def list_wallets(request: Request) -> Response:
    """GET /v1/wallets — all of them, or a page with ?limit=&cursor= (then with `page`)."""
    caller = await _caller(request)
    limit, cursor = _page_params(request)
    async with services_of(request).engine.connect() as db:
        if limit is None and cursor is None:  # the unpaged answer, byte for byte as before
            rows = await accounts.list_wallets(db, user_id=caller.user_id)
            return ok([_wallet_json(r) for r in rows])
        page = await wallets_resolver.wallets_page(
            db, user_id=caller.user_id, first=limit, after=cursor
        )
    return paged([_wallet_json(r) for _, r in page.edges], page)


async def _json_body(request: Request) -> dict[str, Any]:
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


async def add_wallet(request: Request) -> Response:
    """POST /v1/wallets {chainId, address, label?}."""
    caller = await _caller(request)
    services = services_of(request)
    data = await _json_body(request)
    chain_id, address, label = data.get("chainId"), data.get("address"), data.get("label")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        raise InvalidInput("chainId must be an integer", code="INVALID_CHAIN")
    if not isinstance(address, str):
        raise InvalidInput("address must be a string", code="INVALID_ADDRESS")
    if label is not None and not isinstance(label, str):
        raise InvalidInput("label must be a string", code="INVALID_LABEL")
    async with services.engine.begin() as db:
        row = await wallets_resolver.add_wallet(
            db,
            user_id=caller.user_id,
            chain_id=chain_id,
            address=address,
            label=label,
            chains=services.chains,
            max_wallets=services.settings.max_wallets_per_user,
        )
    await _changed(request, caller, wallets=True)
    return ok(_wallet_json(row), status=201)


async def remove_wallet(request: Request) -> Response:
    """DELETE /v1/wallets/{id}."""
    caller = await _caller(request)
    async with services_of(request).engine.begin() as db:
        await wallets_resolver.remove_wallet(
            db, user_id=caller.user_id, wallet_id=request.path_params["wallet_id"]
        )
    await _changed(request, caller, wallets=True)
    return ok({"removed": request.path_params["wallet_id"]})


def rest_routes() -> list[BaseRoute]:
    """Every /v1 route."""
    return [
        Route("/v1/portfolio", get_portfolio, methods=["GET"]),
        Route("/v1/portfolio/holdings", get_holdings, methods=["GET"]),
        Route("/v1/portfolio/history", get_history, methods=["GET"]),
        Route("/v1/portfolio/performance", get_performance, methods=["GET"]),
        Route("/v1/portfolio/allocation", get_allocation, methods=["GET"]),
        Route("/v1/portfolio/targets", get_targets, methods=["GET"]),
        Route("/v1/portfolio/targets", put_targets, methods=["PUT"]),
        Route("/v1/portfolio/rebalance", get_rebalance, methods=["GET"]),
        Route("/v1/portfolio/compare", get_compare, methods=["GET"]),
        Route("/v1/portfolio/pnl", get_pnl, methods=["GET"]),
        Route("/v1/portfolio/pnl.csv", get_pnl_csv, methods=["GET"]),
        Route("/v1/portfolio/transactions.csv", get_transactions_csv, methods=["GET"]),
        Route("/v1/wallets", list_wallets, methods=["GET"]),
        Route("/v1/wallets", add_wallet, methods=["POST"]),
        Route("/v1/wallets/{wallet_id}", remove_wallet, methods=["DELETE"]),
    ]
