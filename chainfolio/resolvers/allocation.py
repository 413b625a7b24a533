"""Allocation of the current holdings, the saved targets, and the trades that restore them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio import analytics
from chainfolio.analytics import NotEnoughData, RebalancePlan
from chainfolio.core.domain import NATIVE, Category
from chainfolio.core.errors import InsufficientData, Unprocessable
from chainfolio.fetchers.config import SWAP_GAS_UNITS
from chainfolio.resolvers.context import ChainInfo
from chainfolio.storage import accounts, market
from chainfolio.storage.accounts import AllocationPolicy
from chainfolio.storage.holdings import StoredHolding, current_holdings

CENT = Decimal("0.01")
GAS_COST_STEP = Decimal("0.0001")
GWEI = Decimal("1e-9")
UNKNOWN_DECIMALS = 18
"""Places of a bought token's amount when no holding tells its decimals."""

# Loans are liabilities a swap does not move, and an NFT cannot be sold in part: both stay out
# of rebalancing (they still count in `allocation`).
_NOT_REBALANCED = frozenset({Category.LOAN, Category.NFT})
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
class TradeView:
    """Sell or buy `value_usd` of `asset` on `chain_id`; `amount` in token units when priced.

    `REDUCE` names a DEX position (`position`) to withdraw `value_usd` of `asset` from: a leg
    is never sold directly (it is not a token the wallet holds).
    """

    side: str
    asset: str
    chain_id: int | None
    value_usd: Decimal
    amount: Decimal | None
    position: str | None = None


@dataclass(frozen=True, slots=True)
class GasView:
    """Estimated gas of one chain's trades; cost None without a gas price or a native price."""

    chain_id: int
    trades: int
    gas_units: int
    cost_usd: Decimal | None


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


@dataclass(frozen=True, slots=True)
class _Position:
    """Everything held of one asset on one chain that rebalancing may trade."""

    value_usd: Decimal
    balance: Decimal
    price: Decimal
    decimals: int
    in_positions: tuple[tuple[str, Decimal], ...] = ()
    """DEX position legs of this asset on this chain: (position id, USD), largest first."""


def _tradable_positions(holdings: Iterable[StoredHolding]) -> dict[tuple[str, int], _Position]:
    positions: dict[tuple[str, int], _Position] = {}
    for stored in holdings:
        h = stored.holding
        value = h.value_usd
        if value is None or value <= 0 or h.category in _NOT_REBALANCED or h.price is None:
            continue
        key = (h.symbol, h.chain_id)
        held = positions.get(key)
        legs = dict(held.in_positions) if held else {}
        if position := h.extra.get("position"):
            legs[position] = legs.get(position, Decimal(0)) + value
        positions[key] = _Position(
            value_usd=value + (held.value_usd if held else 0),
            balance=(h.balance or Decimal(0)) + (held.balance if held else 0),
            price=held.price if held else h.price.usd,
            decimals=held.decimals if held else h.decimals,
            in_positions=tuple(sorted(legs.items(), key=lambda leg: (-leg[1], leg[0]))),
        )
    return positions


def _split_sell(trade: TradeView, position: _Position | None) -> list[TradeView]:
    """A sell larger than the freely held tokens: the rest reduces positions, largest first."""
    if trade.side != "SELL" or position is None or not position.in_positions:
        return [trade]
    in_legs = sum((usd for _, usd in position.in_positions), Decimal(0))
    free = max(position.value_usd - in_legs, Decimal(0)).quantize(CENT, rounding=ROUND_FLOOR)
    if trade.value_usd <= free:
        return [trade]
    unit = Decimal(1).scaleb(-position.decimals)
    split: list[TradeView] = []
    if free > 0:
        amount = min((free / position.price).quantize(unit), position.balance)
        split.append(replace(trade, value_usd=free, amount=amount))
    remaining = trade.value_usd - free
    for position_id, usd in position.in_positions:
        if remaining <= 0:
            break
        piece = min(usd.quantize(CENT, rounding=ROUND_FLOOR), remaining)
        if piece <= 0:
            continue
        amount = (piece / position.price).quantize(unit)
        split.append(
            replace(trade, side="REDUCE", value_usd=piece, amount=amount, position=position_id)
        )
        remaining -= piece
    return split


def _plan(
    policy: AllocationPolicy, positions: Mapping[tuple[str, int], _Position]
) -> RebalancePlan:
    by_asset: dict[str, dict[int, Decimal]] = defaultdict(dict)
    for (symbol, chain_id), position in positions.items():
        by_asset[symbol][chain_id] = position.value_usd
    try:
        return analytics.rebalance(
            holdings=by_asset,
            targets={t.key: float(t.weight) for t in policy.targets},
            band=float(policy.band),
            min_trade_usd=float(policy.min_trade_usd),
            groups={t.key: t.members for t in policy.targets if t.members},
        )
    except NotEnoughData as exc:
        raise InsufficientData(
            "no priced holdings to rebalance (loans, NFTs and unpriced holdings are left out)"
        ) from exc
    except ValueError as exc:  # e.g. an asset in two groups, a group named like an asset
        raise Unprocessable(
            f"saved targets cannot be applied: {exc}", code="INVALID_TARGETS"
        ) from exc


def _amount(
    *, usd: Decimal, side: str, position: _Position | None, price: Decimal | None, decimals: int
) -> Decimal | None:
    """Token units worth `usd` (the cent-rounded value shown); a sell never exceeds the holding."""
    if price is None or price <= 0:
        return None
    amount = (usd / price).quantize(Decimal(1).scaleb(-decimals))
    if side == "SELL" and position is not None:
        amount = min(amount, position.balance)
    return amount


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
    positions = _tradable_positions(holdings)
    plan = _plan(policy, positions)
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
        price = position.price if position else _any_price(holdings, trade.asset, quoted)
        view = TradeView(
            side=side,
            asset=trade.asset,
            chain_id=trade.chain_id,
            value_usd=usd,
            amount=_amount(
                usd=usd,
                side=side,
                position=position,
                price=price,
                decimals=position.decimals
                if position
                else decimals_of.get(trade.asset, UNKNOWN_DECIMALS),
            ),
        )
        trades += _split_sell(view, position)
    gas = _gas(plan, chains=chains, holdings=holdings, quoted=quoted)
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


def _any_price(
    holdings: Sequence[StoredHolding], asset: str, quoted: Mapping[str, Decimal]
) -> Decimal | None:
    """The asset's price from any holding of it (even an empty one), else the newest stored."""
    for stored in holdings:
        if stored.holding.symbol == asset and stored.holding.price is not None:
            return stored.holding.price.usd
    return quoted.get(asset)


def _gas(
    plan: RebalancePlan,
    *,
    chains: Mapping[int, ChainInfo],
    holdings: Sequence[StoredHolding],
    quoted: Mapping[str, Decimal],
) -> list[GasView]:
    """Per chain: trades x swap gas units x configured gas price x native coin price."""
    counts: dict[int, int] = defaultdict(int)
    for trade in plan.trades:
        if trade.chain_id is not None:
            counts[trade.chain_id] += 1
    native_held = {
        s.holding.chain_id: s.holding.price.usd
        for s in holdings
        if s.holding.contract == NATIVE and s.holding.price is not None
    }
    estimates: list[GasView] = []
    for chain_id, count in sorted(counts.items()):
        info = chains.get(chain_id)
        units = count * (info.swap_gas_units if info else SWAP_GAS_UNITS)
        native_price = native_held.get(chain_id)
        if native_price is None and info is not None:
            native_price = quoted.get(info.native_price_symbol)
        cost = None
        if info is not None and info.gas_price_gwei is not None and native_price is not None:
            cost = (units * info.gas_price_gwei * GWEI * native_price).quantize(GAS_COST_STEP)
        estimates.append(GasView(chain_id, count, units, cost))
    return estimates
