"""GraphQL object types: thin views over resolver results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from chainfolio.resolvers.history import HistoryView
from chainfolio.resolvers.portfolio import PortfolioView
from chainfolio.schema.series import DateTimeSeries, DecimalSeries
from chainfolio.storage.accounts import Wallet as WalletRow
from chainfolio.storage.holdings import StoredHolding


@strawberry.type(description="One asset held by one wallet on one chain.")
class Holding:
    chain_id: int
    chain: str
    wallet: str
    asset: str
    contract: str
    kind: str
    category: str
    decimals: int
    amount: str | None = strawberry.field(description="Exact amount in base units (integer).")
    balance: Decimal | None = strawberry.field(description="Amount in whole units, exact.")
    price: Decimal | None
    price_source: str | None
    price_updated_at: datetime | None
    value_usd: Decimal | None = strawberry.field(description="Signed: loans are negative.")
    block_number: int | None
    updated_at: datetime
    stale: bool
    error: str | None

    @classmethod
    def of(cls, stored: StoredHolding) -> Holding:
        """From a stored holding."""
        h = stored.holding
        return cls(
            chain_id=h.chain_id,
            chain=stored.chain,
            wallet=h.wallet,
            asset=h.symbol,
            contract=h.contract,
            kind=h.kind.value,
            category=h.category.value,
            decimals=h.decimals,
            amount=str(h.amount) if h.amount is not None else None,
            balance=h.balance,
            price=h.price.usd if h.price else None,
            price_source=h.price.source if h.price else None,
            price_updated_at=h.price.updated_at if h.price else None,
            value_usd=h.value_usd,
            block_number=h.block_number,
            updated_at=stored.updated_at,
            stale=h.stale,
            error=h.error,
        )


@strawberry.type
class ChainValue:
    chain_id: int
    chain: str
    value: Decimal | None = strawberry.field(
        description="Null when no holding on the chain has a known value (unknown, not 0)."
    )
    stale: bool


@strawberry.type(
    description="One asset over every chain and wallet: held (gross), borrowed, their "
    "difference, and the USD value of that difference."
)
class AssetValue:
    asset: str
    balance: Decimal = strawberry.field(description="Held, gross: loans not subtracted.")
    value: Decimal | None = strawberry.field(
        description="Net USD value: held minus borrowed; null when unpriced."
    )
    loan: Decimal = strawberry.field(description="Borrowed (0 when none).")
    net_balance: Decimal = strawberry.field(description="balance - loan.")


@strawberry.type
class CategoryValue:
    category: str
    value: Decimal


@strawberry.type(description="The user's portfolio as last refreshed.")
class Portfolio:
    total_value: Decimal
    change_24h: Decimal | None
    change_percent_24h: Decimal | None
    chains: list[ChainValue]
    assets: list[AssetValue]
    categories: list[CategoryValue]
    holdings: list[Holding]
    stale: bool
    updated_at: datetime | None
    unpriced_count: int
    stale_chains: list[int] = strawberry.field(
        description="Chains that could not be read at the last refresh (last known values)."
    )
    incomplete: bool = strawberry.field(
        description="Some holding's amount is unknown (never read): totalValue leaves it out."
    )

    @classmethod
    def of(cls, view: PortfolioView) -> Portfolio:
        """From the resolver's view."""
        return cls(
            total_value=view.total_value,
            change_24h=view.change_24h,
            change_percent_24h=view.change_percent_24h,
            chains=[
                ChainValue(chain_id=c.chain_id, chain=c.chain, value=c.value, stale=c.stale)
                for c in view.chains
            ],
            assets=[
                AssetValue(
                    asset=a.asset,
                    balance=a.balance,
                    value=a.value,
                    loan=a.loan,
                    net_balance=a.net_balance,
                )
                for a in view.assets
            ],
            categories=[CategoryValue(category=c.category, value=c.value) for c in view.categories],
            holdings=[Holding.of(h) for h in view.holdings],
            stale=view.stale,
            updated_at=view.updated_at,
            unpriced_count=view.unpriced_count,
            stale_chains=list(view.stale_chains),
            incomplete=view.incomplete,
        )


@strawberry.type
class HistoryPoint:
    timestamp: datetime
    value: Decimal


@strawberry.type(description="Value over time. `timestamps`/`values` are the compact form.")
class History:
    period: str
    interval: str
    start: datetime
    end: datetime
    timestamps: DateTimeSeries
    values: DecimalSeries
    gaps: list[datetime]

    @strawberry.field(
        description="One object per point (prefer the compact arrays for long series)."
    )
    def points(self) -> list[HistoryPoint]:
        return [
            HistoryPoint(timestamp=t, value=v)
            for t, v in zip(self.timestamps, self.values, strict=True)
        ]

    @classmethod
    def of(cls, view: HistoryView) -> History:
        """From the resolver's view."""
        return cls(
            period=view.period,
            interval=view.interval,
            start=view.start,
            end=view.end,
            timestamps=DateTimeSeries(view.timestamps),
            values=DecimalSeries(view.values),
            gaps=view.gaps,
        )


@strawberry.type
class Wallet:
    id: strawberry.ID
    chain_id: int
    address: str
    label: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: WalletRow) -> Wallet:
        """From a stored wallet."""
        return cls(
            id=strawberry.ID(str(row.id)),
            chain_id=row.chain_id,
            address=row.address,
            label=row.label,
            created_at=row.created_at,
        )


@strawberry.type
class AssetContribution:
    asset: str
    gain: float
    share_of_gain: float | None


@strawberry.type(description="Performance over a period. Rates are percentages.")
class Performance:
    period: str
    interval: str
    start: str
    end: str
    start_value: float
    end_value: float
    deposits: float
    withdrawals: float
    net_flows: float
    absolute_gain: float
    percentage_gain: float | None
    roi: float | None
    twr: float | None
    twr_annualised: float | None
    mwr: float | None
    mwr_annualised: float | None
    volatility: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float | None
    max_drawdown_peak: str | None
    max_drawdown_trough: str | None
    best_interval: float | None
    best_interval_end: str | None
    worst_interval: float | None
    worst_interval_end: str | None
    unvalued_flows: int
    attribution: list[AssetContribution]

    @classmethod
    def of(cls, fields: dict[str, Any]) -> Performance:
        """From the resolver's field mapping (the same one REST returns)."""
        values = {_snake(k): v for k, v in fields.items() if k != "attribution"}
        contributions = [
            AssetContribution(asset=c["asset"], gain=c["gain"], share_of_gain=c["shareOfGain"])
            for c in fields["attribution"]
        ]
        return cls(**values, attribution=contributions)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
