"""Subscription root: live portfolio updates from the bus."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from decimal import Decimal

import strawberry

from chainfolio.resolvers.updates import PortfolioUpdate as UpdateMessage
from chainfolio.resolvers.updates import watch_portfolio
from chainfolio.schema.context import Info


@strawberry.type
class ChangedHolding:
    chain_id: int
    wallet: str
    asset: str
    category: str
    amount: str | None
    value_usd: Decimal | None
    stale: bool
    error: str | None


@strawberry.type
class BlockNumber:
    chain_id: int
    block: int


@strawberry.type(
    description="Pushed after each refresh that changed the portfolio: its total, a holding, or "
    "its freshness (a chain or holding going stale or fresh)."
)
class PortfolioUpdate:
    total_value: Decimal
    change: Decimal = strawberry.field(description="Against the previous update.")
    change_percent: Decimal | None
    timestamp: datetime
    blocks: list[BlockNumber]
    holdings: list[ChangedHolding]
    stale_chains: list[int] = strawberry.field(
        description="Chains that could not be read: the same set as `portfolio.staleChains`."
    )
    incomplete: bool = strawberry.field(description="Some holding's amount is unknown.")

    @classmethod
    def of(cls, message: UpdateMessage) -> PortfolioUpdate:
        """From a bus message."""
        return cls(
            total_value=message.total_value,
            change=message.change,
            change_percent=message.change_percent,
            timestamp=message.timestamp,
            blocks=[BlockNumber(chain_id=c, block=b) for c, b in message.blocks.items()],
            holdings=[
                ChangedHolding(
                    chain_id=h.chain_id,
                    wallet=h.wallet,
                    asset=h.asset,
                    category=h.category,
                    amount=h.amount,
                    value_usd=h.value_usd,
                    stale=h.stale,
                    error=h.error,
                )
                for h in message.holdings
            ],
            stale_chains=list(message.stale_chains),
            incomplete=message.incomplete,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The caller's portfolio, pushed on every change.")
    async def portfolio_updates(self, info: Info) -> AsyncGenerator[PortfolioUpdate, None]:
        ctx = info.context
        async for message in watch_portfolio(ctx.services.bus, ctx.caller.user_id):
            yield PortfolioUpdate.of(message)
