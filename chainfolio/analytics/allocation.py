"""Allocation weights, asset groups, and rebalancing trades back into a drift band.

Weights are percentages of the net total (loans count negative), so they always sum to 100.
The rebalancing algorithm is described on `rebalance` and in docs/METRICS.md.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from chainfolio.analytics.errors import NotEnoughData
from chainfolio.analytics.validation import Amount, finite_number

# A drift within a billionth of the band counts as inside it, so float noise never trades.
_BAND_TOLERANCE = 1e-9
_NOISE = 1e-12
_TARGET_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Allocation:
    """Weights in percent of the net total (loans negative); they sum to 100."""

    net_total: float
    gross_assets: float
    liabilities: float
    weights: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Trade:
    """One leg of a rebalance: sell or buy `usd` worth of `asset` on `chain_id` (None: unknown)."""

    side: Literal["sell", "buy"]
    asset: str
    chain_id: int | None
    usd: float


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    """Trades that bring every weight back within the band, their gas, and the weights after."""

    trades: tuple[Trade, ...]
    targets: Mapping[str, float]
    weights_before: Mapping[str, float]
    weights_after: Mapping[str, float]
    within_band: bool
    turnover_usd: float
    gas_usd_by_chain: Mapping[int, float]
    gas_usd_total: float | None


@dataclass(frozen=True, slots=True)
class _Position:
    asset: str
    chain_id: int | None
    usd: float


def allocation(*, values_by_key: Mapping[str, Amount]) -> Allocation:
    """Percentage weight of each key in the net total; loans (negative values) stay negative."""
    values = {
        key: finite_number(value, name=f"value of {key!r}") for key, value in values_by_key.items()
    }
    net_total = math.fsum(values.values())
    if net_total <= 0:
        raise NotEnoughData(
            f"net total is {net_total}; weights of a non-positive total are undefined"
        )
    return Allocation(
        net_total=net_total,
        gross_assets=math.fsum(value for value in values.values() if value > 0),
        liabilities=math.fsum(value for value in values.values() if value < 0),
        weights={key: 100.0 * value / net_total for key, value in values.items()},
    )


def group_values(
    *, values_by_key: Mapping[str, Amount], groups: Mapping[str, Collection[str]]
) -> dict[str, float]:
    """Sum member values into their group (e.g. stablecoins = USDC + USDT + DAI)."""
    group_of = _group_index(groups=groups, keys=values_by_key.keys())
    totals: dict[str, float] = {}
    for key, value in values_by_key.items():
        name = group_of.get(key, key)
        totals[name] = totals.get(name, 0.0) + finite_number(value, name=f"value of {key!r}")
    return totals


def rebalance(
    *,
    holdings: Mapping[str, Amount | Mapping[int, Amount]],
    targets: Mapping[str, float],
    band: float,
    min_trade_usd: float = 0.0,
    gas_usd_by_chain: Mapping[int, float] | None = None,
    groups: Mapping[str, Collection[str]] | None = None,
) -> RebalancePlan:
    """Fewest trades that bring every (group) weight within `band` of its target.

    Only keys outside the band trade. Their combined value is re-spread so each ends at
    target + delta (one common delta, floored at 0), which keeps sells equal to buys; while
    some trading key would still be outside the band, the in-band key drifted furthest the
    other way joins the trading set. Trades under `min_trade_usd` are dropped and the other
    side shrunk to match. Sells take the largest (asset, chain) position first; a buy goes to
    the key's largest position, else the chain of the largest sell.
    """
    if not (math.isfinite(band) and 0 <= band < 1):
        raise ValueError(f"band must be an absolute weight drift in [0, 1), got {band}")
    if not (math.isfinite(min_trade_usd) and min_trade_usd >= 0):
        raise ValueError(f"min_trade_usd must be >= 0, got {min_trade_usd}")
    positions = _positions(holdings)
    group_of = _group_index(groups=groups or {}, keys={p.asset for p in positions})
    target_weights = _normalised_targets(targets=targets, group_of=group_of)
    key_values: dict[str, float] = dict.fromkeys(target_weights, 0.0)
    for position in positions:
        key = group_of.get(position.asset, position.asset)
        key_values[key] = key_values.get(key, 0.0) + position.usd
    total = math.fsum(key_values.values())
    if total <= 0:
        raise NotEnoughData("holdings total 0; there is nothing to rebalance")
    keys = sorted(key_values)
    weights = {key: key_values[key] / total for key in keys}
    goal = {key: target_weights.get(key, 0.0) for key in keys}

    final = _final_weights(weights=weights, goal=goal, band=band)
    trade_usd = _filter_small(
        {key: (final[key] - weights[key]) * total for key in final},
        floor=max(min_trade_usd, _NOISE * total),
    )
    after = {key: key_values[key] + trade_usd.get(key, 0.0) for key in keys}
    trades = _legs(trade_usd=trade_usd, positions=positions, group_of=group_of, groups=groups)
    gas_by_chain: dict[int, float] = {}
    if gas_usd_by_chain is not None:
        for trade in trades:
            if trade.chain_id is not None and trade.chain_id in gas_usd_by_chain:
                cost = finite_number(gas_usd_by_chain[trade.chain_id], name="gas cost")
                gas_by_chain[trade.chain_id] = gas_by_chain.get(trade.chain_id, 0.0) + cost
    weights_after = {key: after[key] / total for key in keys}
    return RebalancePlan(
        trades=trades,
        targets={key: 100.0 * goal[key] for key in keys},
        weights_before={key: 100.0 * weights[key] for key in keys},
        weights_after={key: 100.0 * weights_after[key] for key in keys},
        within_band=all(
            abs(weights_after[key] - goal[key]) <= band + _BAND_TOLERANCE for key in keys
        ),
        turnover_usd=math.fsum(trade.usd for trade in trades if trade.side == "sell"),
        gas_usd_by_chain=gas_by_chain,
        gas_usd_total=math.fsum(gas_by_chain.values()) if gas_usd_by_chain is not None else None,
    )


def _final_weights(
    *, weights: Mapping[str, float], goal: Mapping[str, float], band: float
) -> dict[str, float]:
    """Weights after rebalancing for the keys that trade (see `rebalance`)."""
    drift = {key: weights[key] - goal[key] for key in weights}
    trading = [key for key in weights if abs(drift[key]) > band + _BAND_TOLERANCE]
    if not trading:
        return {}
    while True:
        final = _spread(
            goal={key: goal[key] for key in trading},
            budget=math.fsum(weights[key] for key in trading),
        )
        if all(abs(final[key] - goal[key]) <= band + _BAND_TOLERANCE for key in trading):
            return final
        idle = [key for key in weights if key not in final]
        if not idle:
            return final
        surplus = math.fsum(drift[key] for key in trading)
        # The trading set holds too much (surplus > 0): recruit the most under-weight key to
        # buy; holds too little: recruit the most over-weight key to sell.
        direction = -1.0 if surplus > 0 else 1.0
        trading.append(max(idle, key=lambda key: direction * drift[key]))


def _spread(*, goal: Mapping[str, float], budget: float) -> dict[str, float]:
    """Final weights goal + delta floored at 0 that add up to `budget` (simplex projection)."""
    if budget <= 0:
        return dict.fromkeys(goal, 0.0)
    ordered = sorted(goal.values(), reverse=True)
    delta = budget - ordered[0]
    cumulative = ordered[0]
    for count, weight in enumerate(ordered[1:], start=2):
        cumulative += weight
        # weight + (budget - cumulative) / count > 0, written without the cancellation.
        if count * weight - cumulative + budget > 0:
            delta = (budget - cumulative) / count
    return {key: max(weight + delta, 0.0) for key, weight in goal.items()}


def _filter_small(trade_usd: Mapping[str, float], *, floor: float) -> dict[str, float]:
    """Drop trades under `floor`, then shrink the larger side so sells still fund buys."""
    kept = dict(trade_usd)
    while True:
        kept = {key: amount for key, amount in kept.items() if abs(amount) >= floor}
        buys = math.fsum(amount for amount in kept.values() if amount > 0)
        sells = -math.fsum(amount for amount in kept.values() if amount < 0)
        if buys == 0 or sells == 0:
            return {}
        ratio = sells / buys
        kept = {
            key: amount * min(ratio, 1.0) if amount > 0 else amount * min(1.0 / ratio, 1.0)
            for key, amount in kept.items()
        }
        if all(abs(amount) >= floor for amount in kept.values()):
            return kept


def _legs(
    *,
    trade_usd: Mapping[str, float],
    positions: list[_Position],
    group_of: Mapping[str, str],
    groups: Mapping[str, Collection[str]] | None,
) -> tuple[Trade, ...]:
    """Turn per-key USD amounts into sell legs per (asset, chain) and one buy leg per key."""
    by_key: dict[str, list[_Position]] = {}
    for position in sorted(positions, key=lambda p: (-p.usd, p.asset, _chain_order(p.chain_id))):
        by_key.setdefault(group_of.get(position.asset, position.asset), []).append(position)
    sells: list[Trade] = []
    for key, amount in sorted(trade_usd.items()):
        if amount >= 0:
            continue
        remaining = -amount
        for position in by_key.get(key, []):
            if remaining <= _NOISE * -amount:
                break
            piece = min(position.usd, remaining)
            sells.append(Trade("sell", position.asset, position.chain_id, piece))
            remaining -= piece
    sells.sort(key=lambda trade: -trade.usd)
    proceeds_chain = sells[0].chain_id if sells else None
    buys: list[Trade] = []
    for key, amount in sorted(trade_usd.items()):
        if amount <= 0:
            continue
        held = by_key.get(key)
        if held:
            buys.append(Trade("buy", held[0].asset, held[0].chain_id, amount))
        else:
            members = sorted((groups or {}).get(key, [key]))
            buys.append(Trade("buy", members[0], proceeds_chain, amount))
    buys.sort(key=lambda trade: -trade.usd)
    return (*sells, *buys)


def _chain_order(chain_id: int | None) -> int:
    return -1 if chain_id is None else chain_id


def _positions(holdings: Mapping[str, Amount | Mapping[int, Amount]]) -> list[_Position]:
    positions: list[_Position] = []
    for asset, held in holdings.items():
        per_chain: list[tuple[int | None, Amount]] = (
            list(held.items()) if isinstance(held, Mapping) else [(None, held)]
        )
        for chain_id, value in per_chain:
            usd = finite_number(value, name=f"holding of {asset!r}")
            if usd < 0:
                raise ValueError(
                    f"holding of {asset!r} is negative ({usd}); leave loans out of rebalancing"
                )
            positions.append(_Position(asset, chain_id, usd))
    return positions


def _group_index(*, groups: Mapping[str, Collection[str]], keys: Collection[str]) -> dict[str, str]:
    """Map each member asset to its group name, rejecting overlaps and ambiguous names."""
    group_of: dict[str, str] = {}
    for name, members in groups.items():
        if isinstance(members, str):
            raise TypeError(f"members of group {name!r} must be a collection of names, not a str")
        for member in members:
            if member in group_of and group_of[member] != name:
                raise ValueError(f"{member!r} is in both {group_of[member]!r} and {name!r}")
            group_of[member] = name
    for key in keys:
        if key in groups and group_of.get(key) != key:
            raise ValueError(f"{key!r} is both an asset outside the group and a group name")
    return group_of


def _normalised_targets(
    *, targets: Mapping[str, float], group_of: Mapping[str, str]
) -> dict[str, float]:
    """Targets as fractions; accepts weights summing to 1 or to 100."""
    if not targets:
        raise ValueError("targets are empty")
    weights: dict[str, float] = {}
    for key, weight in targets.items():
        value = finite_number(weight, name=f"target of {key!r}")
        if value < 0:
            raise ValueError(f"target of {key!r} is negative ({value})")
        if key in group_of and group_of[key] != key:
            raise ValueError(f"target names {key!r}, which belongs to group {group_of[key]!r}")
        weights[key] = value
    total = math.fsum(weights.values())
    if abs(total - 1) > _TARGET_SUM_TOLERANCE and abs(total - 100) > 100 * _TARGET_SUM_TOLERANCE:
        raise ValueError(f"target weights must sum to 1 or to 100, got {total}")
    return {key: value / total for key, value in weights.items()}
