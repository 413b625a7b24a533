"""Allocation of the current holdings, the saved targets, and the trades that restore them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio import analytics
from chainfolio.analytics import NotEnoughData
from chainfolio.core.domain import Category
from chainfolio.core.errors import Unprocessable
from chainfolio.resolvers.context import ChainInfo
from chainfolio.resolvers.trades import (
    CENT,
    UNKNOWN_DECIMALS,
    GasView,
    TradeView,
    any_price,
    gas_estimates,
    rebalance_plan,
    split_sell,
    tradable_positions,
    trade_amount,
)
from chainfolio.storage import accounts, market
from chainfolio.storage.accounts import AllocationPolicy
from chainfolio.storage.holdings import StoredHolding, current_holdings

# A weight this close to the band edge (percentage points) counts as inside, as in analytics.
_BAND_TOLERANCE_PERCENT = 1e-7


@dataclass(frozen=True, slots=True)
class Slice:
    """One key's value and its weight in percent of the total it is part of."""

    key: str
    label: str
    value_usd: Decimal
    weight: float


@dataclass(frozen=True, slots=True)
class AllocationView:
    """Weights by asset, chain and category of the priced holdings (loans negative)."""

    total_value: Decimal
    gross_assets: Decimal
    liabilities: Decimal
    by_asset: list[Slice]
    by_chain: list[Slice]
    by_category: list[Slice]
    unpriced_count: int
    unpriced_assets: list[str]


def _slices(values: Mapping[str, Decimal], labels: Mapping[str, str]) -> list[Slice]:
    """Slices in percent of the net total, largest value first."""
    if not values:
        return []
    try:
        weights = analytics.allocation(values_by_key=values).weights
    except NotEnoughData as exc:
        raise Unprocessable(
            f"loans exceed assets (net value {sum(values.values(), Decimal(0))} USD): "
            "weights of a non-positive total are undefined",
            code="NON_POSITIVE_NET_VALUE",
        ) from exc
    slices = [Slice(key, labels[key], value, weights[key]) for key, value in values.items()]
    slices.sort(key=lambda s: (-s.value_usd, s.key))
    return slices


def allocation_of(holdings: Iterable[StoredHolding]) -> AllocationView:
    """The allocation of stored holdings; unpriced ones are left out and counted."""
    by_asset: dict[str, Decimal] = defaultdict(Decimal)
    by_chain: dict[str, Decimal] = defaultdict(Decimal)
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    chain_names: dict[str, str] = {}
    unpriced: list[str] = []
    for stored in holdings:
        h = stored.holding
        value = h.value_usd
        if value is None:
            unpriced.append(h.symbol)
            continue
        by_asset[h.symbol] += value
        by_chain[str(h.chain_id)] += value
        chain_names[str(h.chain_id)] = stored.chain
        by_category[h.category.value] += value
    liabilities = by_category.get(Category.LOAN.value, Decimal(0))
    total = sum(by_asset.values(), Decimal(0))
    return AllocationView(
        total_value=total,
        gross_assets=total - liabilities,
        liabilities=liabilities,
        by_asset=_slices(by_asset, {k: k for k in by_asset}),
        by_chain=_slices(by_chain, chain_names),
        by_category=_slices(by_category, {k: k.capitalize() for k in by_category}),
        unpriced_count=len(unpriced),
        unpriced_assets=sorted(set(unpriced)),
    )


async def resolve_allocation(db: AsyncConnection, *, user_id: uuid.UUID) -> AllocationView:
    """The user's allocation by asset, chain and category, from the stored holdings."""
    return allocation_of(await current_holdings(db, user_id=user_id))


# --- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetView:
    """A target weight in percent for an asset, or for a group of assets (`members`)."""

    key: str
    weight: Decimal
    members: list[str]


@dataclass(frozen=True, slots=True)
class PolicyView:
    """Targets, drift band (percent) and minimum trade (USD), as the user edits them."""

    targets: list[TargetView]
    band: Decimal
    min_trade_usd: Decimal


def as_percent(fraction: Decimal) -> Decimal:
    """A stored fraction as a percentage without trailing zeros (0.6 -> 60, 0.125 -> 12.5)."""
    return Decimal(format((fraction * 100).normalize(), "f"))


def policy_view(policy: AllocationPolicy) -> PolicyView:
    """The stored policy (fractions) in the API's units (percent)."""
    return PolicyView(
        targets=[TargetView(t.key, as_percent(t.weight), list(t.members)) for t in policy.targets],
        band=as_percent(policy.band),
        min_trade_usd=Decimal(format(policy.min_trade_usd.normalize(), "f")),
    )


async def resolve_targets(db: AsyncConnection, *, user_id: uuid.UUID) -> PolicyView:
    """The user's saved targets (empty when never set) with band and minimum trade."""
    return policy_view(await accounts.get_policy(db, user_id=user_id))


# --- rebalancing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebalanceView:
    """Trades back into the bands, their gas, and the weights before, after and aimed at."""

    within_bands: bool
    result_within_bands: bool
    trades: list[TradeView]
    gas: list[GasView]
    total_gas_usd: Decimal | None
    current_weights: list[Slice]
    resulting_weights: list[Slice]
    targets: list[Slice]
    band: Decimal
    min_trade_usd: Decimal
    total_value_usd: Decimal


def _weight_slices(
    weights: Mapping[str, float], total: Decimal, order: Sequence[str]
) -> list[Slice]:
    return [
        Slice(key, key, (total * Decimal(repr(weights[key])) / 100).quantize(CENT), weights[key])
        for key in order
    ]


async def resolve_rebalance(
    db: AsyncConnection, *, user_id: uuid.UUID, chains: Mapping[int, ChainInfo]
) -> RebalanceView:
    """Trades that bring the saved targets' weights back within the band (suggestions only).

    Loans, NFTs and unpriced holdings are left out; the weights are of what remains.
    """
    policy = await accounts.get_policy(db, user_id=user_id)
    if not policy.targets:
        raise Unprocessable(
            "no allocation targets saved: set them with setAllocationTargets or "
            "PUT /v1/portfolio/targets",
            code="NO_TARGETS",
        )
    holdings = await current_holdings(db, user_id=user_id)
    positions = tradable_positions(holdings)
    plan = rebalance_plan(policy, positions)
    total = sum((p.value_usd for p in positions.values()), Decimal(0))

    decimals_of = {s.holding.symbol: s.holding.decimals for s in reversed(holdings)}
    priced = {s.holding.symbol for s in holdings if s.holding.price is not None}
    unheld = sorted({t.asset for t in plan.trades if t.asset not in priced})
    native_symbols = {
        info.native_price_symbol
        for cid in {t.chain_id for t in plan.trades if t.chain_id is not None}
        if (info := chains.get(cid)) is not None
    }
    quoted = await market.latest_prices(db, symbols=sorted({*unheld, *native_symbols}))

    trades: list[TradeView] = []
    for trade in plan.trades:
        side = trade.side.upper()
        usd = Decimal(repr(trade.usd)).quantize(CENT)
        position = positions.get((trade.asset, trade.chain_id)) if trade.chain_id else None
        price = position.price if position else any_price(holdings, trade.asset, quoted)
        view = TradeView(
            side=side,
            asset=trade.asset,
            chain_id=trade.chain_id,
            value_usd=usd,
            amount=trade_amount(
                usd=usd,
                side=side,
                position=position,
                price=price,
                decimals=position.decimals
                if position
                else decimals_of.get(trade.asset, UNKNOWN_DECIMALS),
            ),
        )
        trades += split_sell(view, position)
    gas = gas_estimates(plan, chains=chains, holdings=holdings, quoted=quoted)
    costs = [g.cost_usd for g in gas]
    band_percent = as_percent(policy.band)
    limit = float(band_percent) + _BAND_TOLERANCE_PERCENT
    order = sorted(plan.weights_before, key=lambda k: (-plan.weights_before[k], k))
    return RebalanceView(
        within_bands=all(
            abs(plan.weights_before[k] - plan.targets[k]) <= limit for k in plan.weights_before
        ),
        result_within_bands=plan.within_band,
        trades=trades,
        gas=gas,
        total_gas_usd=None
        if any(c is None for c in costs)
        else sum((c for c in costs if c is not None), Decimal(0)),
        current_weights=_weight_slices(plan.weights_before, total, order),
        resulting_weights=_weight_slices(plan.weights_after, total, order),
        targets=_weight_slices(plan.targets, total, order),
        band=band_percent,
        min_trade_usd=policy_view(policy).min_trade_usd,
        total_value_usd=total,
    )
