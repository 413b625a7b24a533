"""The trades of a rebalance, one by one: what each holding may trade, a sell split across DEX
position legs, token amounts, and the gas of each chain's trades (`allocation` assembles them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from chainfolio import analytics
from chainfolio.analytics import NotEnoughData, RebalancePlan
from chainfolio.core.domain import NATIVE, Category
from chainfolio.core.errors import InsufficientData, Unprocessable
from chainfolio.fetchers.config import SWAP_GAS_UNITS
from chainfolio.resolvers.context import ChainInfo
from chainfolio.storage.accounts import AllocationPolicy
from chainfolio.storage.holdings import StoredHolding

CENT = Decimal("0.01")
GAS_COST_STEP = Decimal("0.0001")
GWEI = Decimal("1e-9")
UNKNOWN_DECIMALS = 18
"""Places of a bought token's amount when no holding tells its decimals."""

# Loans are liabilities a swap does not move, and an NFT cannot be sold in part: both stay out
# of rebalancing (they still count in `allocation`).
_NOT_REBALANCED = frozenset({Category.LOAN, Category.NFT})


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
class TradablePosition:
    """Everything held of one asset on one chain that rebalancing may trade."""

    value_usd: Decimal
    balance: Decimal
    price: Decimal
    decimals: int
    in_positions: tuple[tuple[str, Decimal], ...] = ()
    """DEX position legs of this asset on this chain: (position id, USD), largest first."""


def tradable_positions(
    holdings: Iterable[StoredHolding],
) -> dict[tuple[str, int], TradablePosition]:
    positions: dict[tuple[str, int], TradablePosition] = {}
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
        positions[key] = TradablePosition(
            value_usd=value + (held.value_usd if held else 0),
            balance=(h.balance or Decimal(0)) + (held.balance if held else 0),
            price=held.price if held else h.price.usd,
            decimals=held.decimals if held else h.decimals,
            in_positions=tuple(sorted(legs.items(), key=lambda leg: (-leg[1], leg[0]))),
        )
    return positions


def split_sell(trade: TradeView, position: TradablePosition | None) -> list[TradeView]:
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


def rebalance_plan(
    policy: AllocationPolicy, positions: Mapping[tuple[str, int], TradablePosition]
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


def trade_amount(
    *,
    usd: Decimal,
    side: str,
    position: TradablePosition | None,
    price: Decimal | None,
    decimals: int,
) -> Decimal | None:
    """Token units worth `usd` (the cent-rounded value shown); a sell never exceeds the holding."""
    if price is None or price <= 0:
        return None
    amount = (usd / price).quantize(Decimal(1).scaleb(-decimals))
    if side == "SELL" and position is not None:
        amount = min(amount, position.balance)
    return amount


def any_price(
    holdings: Sequence[StoredHolding], asset: str, quoted: Mapping[str, Decimal]
) -> Decimal | None:
    """The asset's price from any holding of it (even an empty one), else the newest stored."""
    for stored in holdings:
        if stored.holding.symbol == asset and stored.holding.price is not None:
            return stored.holding.price.usd
    return quoted.get(asset)


def gas_estimates(
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
