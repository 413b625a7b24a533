"""DEX liquidity positions as one row each: their legs (and uncollected fees) grouped back."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chainfolio.storage.holdings import StoredHolding


@dataclass(frozen=True, slots=True)
class PositionView:
    """One Uniswap V3 NFT or V2 LP balance of one wallet, with its legs."""

    id: str
    protocol: str
    chain_id: int
    chain: str
    wallet: str
    pool: str | None
    in_range: bool | None
    value_usd: Decimal | None
    """Sum of the legs; None while any leg's value is unknown."""
    legs: list[StoredHolding]


def group_positions(holdings: list[StoredHolding]) -> list[PositionView]:
    """The holdings that are position legs, grouped by position (largest value first)."""
    grouped: dict[tuple[int, str, str], list[StoredHolding]] = {}
    for stored in holdings:
        position = stored.holding.extra.get("position")
        if position:
            key = (stored.holding.chain_id, stored.holding.wallet, position)
            grouped.setdefault(key, []).append(stored)
    views: list[PositionView] = []
    for (chain_id, wallet, position), legs in grouped.items():
        legs.sort(key=lambda s: (s.holding.extra.get("leg", ""), s.holding.category.value))
        extra = legs[0].holding.extra
        values = [s.holding.value_usd for s in legs]
        known = [v for v in values if v is not None]
        in_range = extra.get("in_range")
        views.append(
            PositionView(
                id=position,
                protocol=extra.get("protocol", ""),
                chain_id=chain_id,
                chain=legs[0].chain,
                wallet=wallet,
                pool=extra.get("pool"),
                in_range=None if in_range is None else in_range == "true",
                value_usd=sum(known, Decimal(0)) if len(known) == len(values) else None,
                legs=legs,
            )
        )
    views.sort(key=lambda v: (v.value_usd is None, -(v.value_usd or 0), v.id))
    return views
