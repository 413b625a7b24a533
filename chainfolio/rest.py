"""The seed's REST compatibility routes (`/v1/portfolio*`), on the same resolvers as GraphQL."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chainfolio.errors import InvalidInput
from chainfolio.resolvers import history as history_resolver
from chainfolio.resolvers import performance as performance_resolver
from chainfolio.resolvers import portfolio as portfolio_resolver
from chainfolio.resolvers import wallets as wallets_resolver
from chainfolio.resolvers.context import Caller
from chainfolio.storage import accounts
from chainfolio.storage.accounts import Wallet
from chainfolio.web import authenticator_of, number, services_of

MAX_BODY = 16 * 1024


def ok(data: Any, status: int = 200) -> JSONResponse:
    """The seed's success envelope."""
    return JSONResponse({"success": True, "data": data}, status_code=status)


async def _caller(request: Request) -> Caller:
    return await authenticator_of(request).caller(request.headers.get("authorization"))


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
                    "balanceExact": str(a.balance),
                }
                for a in view.assets
            ],
            "categories": [
                {"category": c.category, "value": number(c.value)} for c in view.categories
            ],
            "holdings": [
                {
                    "chain": s.chain,
                    "chainId": s.holding.chain_id,
                    "wallet": s.holding.wallet,
                    "asset": s.holding.symbol,
                    "contract": s.holding.contract,
                    "category": s.holding.category.value,
                    "amount": None if s.holding.amount is None else str(s.holding.amount),
                    "decimals": s.holding.decimals,
                    "balance": number(s.holding.balance),
                    "price": number(s.holding.price.usd) if s.holding.price else None,
                    "priceSource": s.holding.price.source if s.holding.price else None,
                    "value": number(s.holding.value_usd),
                    "updatedAt": s.updated_at.isoformat(),
                    "stale": s.holding.stale,
                    "error": s.holding.error,
                }
                for s in view.holdings
            ],
            "stale": view.stale,
            "updatedAt": view.updated_at.isoformat() if view.updated_at else None,
        }
    )


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
    points = [
        {"timestamp": p.bucket.isoformat().replace("+00:00", "Z"), "value": number(p.total_value)}
        for p in view.points
    ]
    return ok(points)


async def get_performance(request: Request) -> Response:
    """GET /v1/portfolio/performance?period=30d — the seed's fields, plus TWR, MWR, risk."""
    caller = await _caller(request)
    services = services_of(request)
    async with services.engine.connect() as db:
        view = await performance_resolver.resolve_performance(
            db,
            user_id=caller.user_id,
            period=request.query_params.get("period", "30d"),
            now=services.clock(),
            retention_days=services.settings.snapshot_retention_days,
            risk_free_rate=services.settings.risk_free_rate,
        )
    return ok(performance_resolver.performance_fields(view))


def _wallet_json(row: Wallet) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "chainId": row.chain_id,
        "address": row.address,
        "label": row.label,
        "createdAt": row.created_at.isoformat(),
    }


async def list_wallets(request: Request) -> Response:
    """GET /v1/wallets."""
    caller = await _caller(request)
    async with services_of(request).engine.connect() as db:
        rows = await accounts.list_wallets(db, user_id=caller.user_id)
    return ok([_wallet_json(r) for r in rows])


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidInput(f"request body larger than {MAX_BODY} bytes", code="BODY_TOO_LARGE")
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
    return ok(_wallet_json(row), status=201)


async def remove_wallet(request: Request) -> Response:
    """DELETE /v1/wallets/{id}."""
    caller = await _caller(request)
    async with services_of(request).engine.begin() as db:
        await wallets_resolver.remove_wallet(
            db, user_id=caller.user_id, wallet_id=request.path_params["wallet_id"]
        )
    return ok({"removed": request.path_params["wallet_id"]})


def rest_routes() -> list[BaseRoute]:
    """Every /v1 route."""
    return [
        Route("/v1/portfolio", get_portfolio, methods=["GET"]),
        Route("/v1/portfolio/history", get_history, methods=["GET"]),
        Route("/v1/portfolio/performance", get_performance, methods=["GET"]),
        Route("/v1/wallets", list_wallets, methods=["GET"]),
        Route("/v1/wallets", add_wallet, methods=["POST"]),
        Route("/v1/wallets/{wallet_id}", remove_wallet, methods=["DELETE"]),
    ]
