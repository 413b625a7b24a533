"""REST allocation, targets and rebalancing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chainfolio.api.answers import cached_route
from chainfolio.api.rest.envelope import (
    caller_of,
    changed,
    decimal_field,
    json_body,
    ok,
    reading,
)
from chainfolio.api.web import number, services_of
from chainfolio.core.domain import plain
from chainfolio.core.errors import InvalidInput
from chainfolio.resolvers import allocation as allocation_resolver
from chainfolio.resolvers import targets as targets_resolver
from chainfolio.resolvers.allocation import PolicyView, Slice


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


@cached_route(caller_of)
async def get_allocation(request: Request) -> Response:
    """GET /v1/portfolio/allocation — weights by asset, chain and category (percent)."""
    async with reading(request) as (caller, _, db):
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


@cached_route(caller_of)
async def get_targets(request: Request) -> Response:
    """GET /v1/portfolio/targets — saved targets (percent), band (percent), minimum trade."""
    async with reading(request) as (caller, _, db):
        view = await allocation_resolver.resolve_targets(db, user_id=caller.user_id)
    return ok(_policy_json(view))


def _target(item: Any) -> tuple[str, Decimal, list[str]]:
    if not isinstance(item, dict) or not isinstance(item.get("key"), str):
        raise InvalidInput(
            "each target is an object with a string key and a weight", code="INVALID_TARGETS"
        )
    members = item.get("members") or []
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise InvalidInput("members must be a list of asset symbols", code="INVALID_TARGETS")
    return item["key"], decimal_field(item.get("weight"), name="weight"), members


async def put_targets(request: Request) -> Response:
    """PUT /v1/portfolio/targets {targets: [{key, weight, members?}], band?, minTradeUsd?}."""
    caller = await caller_of(request)
    data = await json_body(request)
    targets = data.get("targets")
    if not isinstance(targets, list):
        raise InvalidInput("targets must be a list", code="INVALID_TARGETS")
    parsed = [_target(item) for item in targets]
    band = decimal_field(data.get("band", 5), name="band")
    min_trade = decimal_field(data.get("minTradeUsd", 50), name="minTradeUsd")
    async with services_of(request).engine.begin() as db:
        policy = await targets_resolver.set_allocation_targets(
            db, user_id=caller.user_id, targets=parsed, band_percent=band, min_trade_usd=min_trade
        )
    await changed(request, caller)
    return ok(_policy_json(allocation_resolver.policy_view(policy)))


@cached_route(caller_of)
async def get_rebalance(request: Request) -> Response:
    """GET /v1/portfolio/rebalance — suggested trades back within the bands, gas per chain."""
    async with reading(request) as (caller, services, db):
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
