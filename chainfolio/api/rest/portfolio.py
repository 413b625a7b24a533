"""The seed's REST routes over the portfolio: overview, holdings, history, performance,
comparison."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chainfolio.api.answers import cached_route
from chainfolio.api.rest.envelope import (
    caller_of,
    camel,
    iso,
    ok,
    page_params,
    paged,
    reading,
)
from chainfolio.api.web import number, services_of
from chainfolio.core.currencies import parse_currency
from chainfolio.core.domain import plain
from chainfolio.resolvers import compare as compare_resolver
from chainfolio.resolvers import history as history_resolver
from chainfolio.resolvers import performance as performance_resolver
from chainfolio.resolvers import portfolio as portfolio_resolver
from chainfolio.resolvers.currency import convert_history
from chainfolio.storage.holdings import HoldingRow, current_holdings


@cached_route(caller_of)
async def get_portfolio(request: Request) -> Response:
    """GET /v1/portfolio — the seed's overview shape, plus holdings and freshness."""
    caller = await caller_of(request)
    services = services_of(request)
    view, rows = await portfolio_resolver.resolve_portfolio_rows(
        services.engine, user_id=caller.user_id, now=services.clock()
    )
    # rows share their few times (one per wallet refresh); isoformat costs ~0.6 us a call
    times = {at: at.isoformat() for at in {r.updated_at for r in rows}}
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
            "holdings": [_holding_json(r, times[r.updated_at]) for r in rows],
            "stale": view.stale,
            "staleChains": list(view.stale_chains),
            "incomplete": view.incomplete,
            "updatedAt": view.updated_at.isoformat() if view.updated_at else None,
        }
    )


def _holding_json(r: HoldingRow, updated_at: str) -> dict[str, Any]:
    return {
        "chain": r.chain,
        "chainId": r.chain_id,
        "wallet": r.wallet,
        "asset": r.symbol,
        "contract": r.contract,
        "category": r.category,
        "amount": None if r.amount is None else str(r.amount),
        "decimals": r.decimals,
        "balance": number(r.balance),
        "price": number(r.price_usd),
        "priceSource": r.price_source,
        "value": number(r.value_usd),
        "updatedAt": updated_at,
        "stale": r.stale,
        "error": r.error,
    }


@cached_route(caller_of)
async def get_holdings(request: Request) -> Response:
    """GET /v1/portfolio/holdings?limit=50&cursor=… — holdings a page at a time."""
    caller = await caller_of(request)
    services = services_of(request)
    limit, cursor = page_params(request)
    async with services.engine.connect() as db:
        holdings = await current_holdings(db, user_id=caller.user_id)
    page = portfolio_resolver.holdings_page(holdings, first=limit, after=cursor)
    return paged(
        [_holding_json(HoldingRow.of(s), s.updated_at.isoformat()) for _, s in page.edges], page
    )


@cached_route(caller_of)
async def get_history(request: Request) -> Response:
    """GET /v1/portfolio/history?period=90d&interval=1d — a list of {timestamp, value}."""
    async with reading(request) as (caller, services, db):
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
    points = [{"timestamp": iso(p.bucket), "value": number(p.total_value)} for p in view.points]
    return ok(points)


@cached_route(caller_of)
async def get_performance(request: Request) -> Response:
    """GET /v1/portfolio/performance?period=30d&mar=0.05&annualise=true — the seed's fields,
    plus TWR, MWR, risk."""
    caller = await caller_of(request)
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


@cached_route(caller_of)
async def get_compare(request: Request) -> Response:
    """GET /v1/portfolio/compare?period=90d&interval=1d&benchmark=ETH — indices and risk."""
    caller = await caller_of(request)
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
            "start": iso(view.start),
            "end": iso(view.end),
            "timestamps": [iso(t) for t in view.timestamps],
            "portfolio": view.portfolio,
            "benchmarkValues": view.benchmark_values,
            **{camel(k): v for k, v in stats.items()},
            "intervals": view.intervals,
            "endIsLive": view.live_end,
            "startedLater": view.started_later,
            "nullReasons": compare_resolver.comparison_reasons(view),
        }
    )
