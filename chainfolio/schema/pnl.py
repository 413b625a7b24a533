"""P&L types: `pnl`, `lots`, and the cost-basis fields of a holding."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.resolvers import pnl as pnl_resolver
from chainfolio.resolvers.pnl import HoldingPnl, LotView, PnlView
from chainfolio.storage.holdings import StoredHolding


@strawberry.type(description="One asset's profit and loss in the requested currency.")
class AssetPnl:
    asset: str = strawberry.field(description="The symbol that prices it (WETH counts as ETH).")
    quantity: Decimal
    value: Decimal | None
    cost_basis: Decimal | None
    average_cost: Decimal | None
    realized: Decimal = strawberry.field(description="Known gains of the period's disposals.")
    unrealized: Decimal | None = strawberry.field(description="Value now minus cost basis.")
    unrealized_percent: Decimal | None
    unvalued: int = strawberry.field(description="Movements without a value (never zero).")


@strawberry.type(description="Realised and unrealised profit and loss.")
class Pnl:
    period: str
    start: datetime
    end: datetime
    currency: str
    method: str = strawberry.field(description="average or fifo.")
    realized: Decimal
    unrealized: Decimal | None = strawberry.field(
        description="null when an asset held is unvalued."
    )
    by_asset: list[AssetPnl]
    unvalued: int
    complete: bool = strawberry.field(
        description="false when an unvalued movement or holding leaves a figure partial."
    )

    @classmethod
    def of(cls, view: PnlView) -> Pnl:
        """From the resolver's view."""
        return cls(
            period=view.period,
            start=view.start,
            end=view.end,
            currency=view.currency,
            method=view.method,
            realized=view.realized,
            unrealized=view.unrealized,
            by_asset=[
                AssetPnl(
                    asset=a.asset,
                    quantity=a.quantity,
                    value=a.value,
                    cost_basis=a.cost_basis,
                    average_cost=a.average_cost,
                    realized=a.realized,
                    unrealized=a.unrealized,
                    unrealized_percent=a.unrealized_percent,
                    unvalued=a.unvalued,
                )
                for a in view.by_asset
            ],
            unvalued=view.unvalued,
            complete=view.complete,
        )


@strawberry.type(description="Units of an asset still held: a FIFO lot, or the average pool.")
class Lot:
    asset: str
    acquired: datetime
    quantity: Decimal
    cost: Decimal | None = strawberry.field(description="null: acquired unvalued.")
    unit_cost: Decimal | None

    @classmethod
    def of(cls, view: LotView) -> Lot:
        """From the resolver's view."""
        return cls(
            asset=view.asset,
            acquired=view.acquired,
            quantity=view.quantity,
            cost=view.cost,
            unit_cost=view.unit_cost,
        )


class HoldingsPnl:
    """The cost-basis fields of one portfolio's holdings, computed once when first asked."""

    def __init__(
        self,
        engine: AsyncEngine,
        user_id: uuid.UUID,
        currency: str,
        holdings: Sequence[StoredHolding],
    ) -> None:
        self._engine = engine
        self._user_id = user_id
        self._currency = currency
        self._holdings = holdings
        self._lock = asyncio.Lock()
        self._result: list[HoldingPnl | None] | None = None

    async def of(self, index: int) -> HoldingPnl | None:
        """The P&L of the holding at `index` (None for loans)."""
        async with self._lock:
            if self._result is None:
                async with self._engine.connect() as db:
                    books = await pnl_resolver.load_books(
                        db,
                        user_id=self._user_id,
                        currency=self._currency,
                        extra_moments={s.updated_at for s in self._holdings},
                        detailed=True,  # realised P&L per wallet and token
                    )
                self._result = pnl_resolver.holding_pnl(books, self._holdings)
        return self._result[index]
