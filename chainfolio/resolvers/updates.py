"""Portfolio update messages: what the worker publishes and subscribers receive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

import orjson

from chainfolio.bus.broadcast import Bus, portfolio_channel
from chainfolio.core.domain import MONEY, unsigned_zero


@dataclass(frozen=True, slots=True)
class HoldingChange:
    """One holding whose amount, value or freshness changed in this refresh."""

    chain_id: int
    wallet: str
    asset: str
    category: str
    amount: str | None
    value_usd: Decimal | None
    stale: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PortfolioUpdate:
    """A user's new total after a refresh; `change` is against the previous update.

    Sent when the total, a holding or the freshness changed: `stale_chains` (chains that could
    not be read, the same set `portfolio.staleChains` answers) and `incomplete` (some amount
    unknown) are part of the state, so a chain going stale or recovering is pushed too.
    """

    user_id: str
    total_value: Decimal
    change: Decimal
    change_percent: Decimal | None
    timestamp: datetime
    blocks: dict[int, int] = field(default_factory=dict)
    holdings: tuple[HoldingChange, ...] = ()
    stale_chains: tuple[int, ...] = ()
    incomplete: bool = False

    def to_json(self) -> str:
        """Wire form on the bus (decimals as strings: exact)."""
        return orjson.dumps(
            {
                "userId": self.user_id,
                "totalValue": str(self.total_value),
                "change": str(self.change),
                "changePercent": None if self.change_percent is None else str(self.change_percent),
                "timestamp": self.timestamp.isoformat(),
                "blocks": {str(k): v for k, v in self.blocks.items()},
                "holdings": [
                    {
                        "chainId": h.chain_id,
                        "wallet": h.wallet,
                        "asset": h.asset,
                        "category": h.category,
                        "amount": h.amount,
                        "valueUsd": None if h.value_usd is None else str(h.value_usd),
                        "stale": h.stale,
                        "error": h.error,
                    }
                    for h in self.holdings
                ],
                "staleChains": list(self.stale_chains),
                "incomplete": self.incomplete,
            }
        ).decode()

    @classmethod
    def from_json(cls, raw: str) -> PortfolioUpdate:
        """Parse the wire form."""
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            user_id=data["userId"],
            total_value=Decimal(data["totalValue"]),
            change=Decimal(data["change"]),
            change_percent=None
            if data["changePercent"] is None
            else Decimal(data["changePercent"]),
            timestamp=datetime.fromisoformat(data["timestamp"]),
            blocks={int(k): int(v) for k, v in data["blocks"].items()},
            holdings=tuple(
                HoldingChange(
                    h["chainId"],
                    h["wallet"],
                    h["asset"],
                    h["category"],
                    h["amount"],
                    None if h["valueUsd"] is None else Decimal(h["valueUsd"]),
                    h.get("stale", False),
                    h.get("error"),
                )
                for h in data["holdings"]
            ),
            stale_chains=tuple(data.get("staleChains", ())),
            incomplete=data.get("incomplete", False),
        )


def percent_change(new: Decimal, old: Decimal) -> Decimal | None:
    """(new - old) / |old| in percent, 4 decimals; None when old is zero."""
    if old == 0:
        return None
    with localcontext(MONEY):
        return unsigned_zero(((new - old) / abs(old) * 100).quantize(Decimal("0.0001")))


async def watch_portfolio(
    bus: Bus, user_id: object, *, subscribed: asyncio.Event | None = None
) -> AsyncIterator[PortfolioUpdate]:
    """The user's updates as they are published, for as long as the caller iterates.

    `subscribed` is set once the bus subscription exists, so a protocol can acknowledge a
    subscription only when no later publication can be missed.
    """
    async with bus.subscribe(portfolio_channel(user_id)) as subscription:
        if subscribed is not None:
            subscribed.set()
        async for raw in subscription:
            yield PortfolioUpdate.from_json(raw)
