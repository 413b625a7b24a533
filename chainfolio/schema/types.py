"""GraphQL object types of the portfolio: holdings, chains, assets, positions, wallets."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, cast

import strawberry

from chainfolio.resolvers import tokens as tokens_resolver
from chainfolio.resolvers.pages import DEFAULT_PAGE
from chainfolio.resolvers.pnl import HoldingPnl
from chainfolio.resolvers.portfolio import PortfolioTotals, PortfolioView, holdings_page
from chainfolio.resolvers.positions import PositionView, group_positions
from chainfolio.schema.connections import AFTER, FIRST, Connection
from chainfolio.schema.context import Info
from chainfolio.schema.pnl import HoldingsPnl
from chainfolio.schema.tokens import WalletSync
from chainfolio.storage.accounts import Wallet as WalletRow
from chainfolio.storage.holdings import HoldingRow, StoredHolding


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
    position: str | None = strawberry.field(
        default=None, description="The DEX position this holding is a leg of (see positions)."
    )
    position_leg: int | None = strawberry.field(
        default=None, description="0 = the pool's token0, 1 = token1."
    )
    pnl_index: strawberry.Private[int] = -1
    pnl_source: strawberry.Private[HoldingsPnl | None] = None

    async def _pnl(self) -> HoldingPnl | None:
        if self.pnl_source is None:
            return None
        return await self.pnl_source.of(self.pnl_index)

    @strawberry.field(
        description="Balance times the asset's average cost of units held (portfolio currency)."
    )
    async def cost_basis(self) -> Decimal | None:
        pnl = await self._pnl()
        return None if pnl is None else pnl.cost_basis

    @strawberry.field(description="Cost per unit of the asset held, across the user's wallets.")
    async def average_cost(self) -> Decimal | None:
        pnl = await self._pnl()
        return None if pnl is None else pnl.average_cost

    @strawberry.field(description="Value minus cost basis (null when either is unknown).")
    async def unrealized_pnl(self) -> Decimal | None:
        pnl = await self._pnl()
        return None if pnl is None else pnl.unrealized

    @strawberry.field(description="Unrealised P&L in percent of the cost basis.")
    async def unrealized_pnl_percent(self) -> Decimal | None:
        pnl = await self._pnl()
        return None if pnl is None else pnl.unrealized_percent

    @strawberry.field(description="Known gains of this wallet's disposals of this token.")
    async def realized_pnl(self) -> Decimal | None:
        pnl = await self._pnl()
        return None if pnl is None else pnl.realized

    @classmethod
    def of(cls, stored: StoredHolding, pnl: HoldingsPnl | None = None, index: int = -1) -> Holding:
        """From a stored holding (with the portfolio's P&L source)."""
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
            balance=stored.balance,
            price=h.price.usd if h.price else None,
            price_source=h.price.source if h.price else None,
            price_updated_at=h.price.updated_at if h.price else None,
            value_usd=stored.value_usd,
            block_number=h.block_number,
            updated_at=stored.updated_at,
            stale=h.stale,
            error=h.error,
            position=h.extra.get("position"),
            position_leg=int(h.extra["leg"]) if "leg" in h.extra else None,
            pnl_index=index,
            pnl_source=pnl,
        )


ROW_HOLDING_FIELDS = frozenset(
    {
        "__typename",
        "chainId",
        "chain",
        "wallet",
        "asset",
        "contract",
        "category",
        "decimals",
        "amount",
        "balance",
        "price",
        "priceSource",
        "valueUsd",
        "updatedAt",
        "stale",
        "error",
    }
)
"""The `Holding` fields a stored row answers (`RowHolding`); a holdings selection of any other
(kind, block number, position, the cost-basis fields) reads `StoredHolding`s."""


class RowHolding:
    """A `Holding` answer straight off a stored row (`HoldingRow`, issue 17: no `Holding`,
    `Price` and `StoredHolding` per row), with `Holding.of`'s conversions; it carries only
    `ROW_HOLDING_FIELDS`, and `Query.portfolio` takes this path only when no other is asked."""

    __slots__ = (
        "amount",
        "asset",
        "balance",
        "category",
        "chain",
        "chain_id",
        "contract",
        "decimals",
        "error",
        "price",
        "price_source",
        "stale",
        "updated_at",
        "value_usd",
        "wallet",
    )

    def __init__(self, row: HoldingRow) -> None:
        self.chain_id = row.chain_id
        self.chain = row.chain
        self.wallet = row.wallet
        self.asset = row.symbol
        self.contract = row.contract
        self.category = row.category
        self.decimals = row.decimals
        self.amount = None if row.amount is None else str(row.amount)
        self.balance = row.balance
        self.price = row.price_usd
        self.price_source = row.price_source
        self.value_usd = row.value_usd
        self.updated_at = row.updated_at
        self.stale = row.stale
        self.error = row.error


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


@strawberry.type(
    description="A DEX liquidity position (Uniswap V3 NFT, V2 LP tokens) as one row with legs."
)
class Position:
    id: str = strawberry.field(description="`<position manager>#<token id>`, or the V2 pair.")
    protocol: str
    chain_id: int
    chain: str
    wallet: str
    pool: str | None
    in_range: bool | None = strawberry.field(description="V3 only: the price is in its range.")
    value_usd: Decimal | None = strawberry.field(description="Legs plus fees; null if unknown.")
    legs: list[Holding] = strawberry.field(
        description="DEPOSIT legs (what withdrawing returns) and REWARD legs (uncollected fees)."
    )

    @classmethod
    def of(cls, view: PositionView) -> Position:
        """From the resolver's view."""
        return cls(
            id=view.id,
            protocol=view.protocol,
            chain_id=view.chain_id,
            chain=view.chain,
            wallet=view.wallet,
            pool=view.pool,
            in_range=view.in_range,
            value_usd=view.value_usd,
            legs=[Holding.of(s) for s in view.legs],
        )


@strawberry.type(description="The user's portfolio as last refreshed.")
class Portfolio:
    total_value: Decimal
    change_24h: Decimal | None
    change_percent_24h: Decimal | None
    chains: list[ChainValue]
    assets: list[AssetValue]
    categories: list[CategoryValue]
    stale: bool
    updated_at: datetime | None
    unpriced_count: int
    stale_chains: list[int] = strawberry.field(
        description="Chains that could not be read at the last refresh (last known values)."
    )
    incomplete: bool = strawberry.field(
        description="Some holding's amount is unknown (never read): totalValue leaves it out."
    )
    stored: strawberry.Private[list[StoredHolding]]
    pnl: strawberry.Private[HoldingsPnl | None] = None
    rows: strawberry.Private[list[HoldingRow] | None] = None
    """Set when the portfolio was read as stored rows (`of_rows`): then `stored` is empty and
    only `ROW_HOLDING_FIELDS` of the holdings may be asked."""

    def _full(self) -> list[StoredHolding]:
        if self.rows is not None:  # `Query.portfolio` chose the rows path for this selection
            raise AssertionError("a portfolio read as rows answers ROW_HOLDING_FIELDS only")
        return self.stored

    @strawberry.field(
        deprecation_reason="Use holdingsConnection: cursor pages (a user may hold hundreds)."
    )
    def holdings(self) -> list[Holding]:
        # built when asked (as the positions): a query of totals, or of holdingsConnection's
        # one page, does not pay for every holding's object
        if self.rows is not None:
            return cast("list[Holding]", [RowHolding(r) for r in self.rows])
        return [Holding.of(h, self.pnl, i) for i, h in enumerate(self.stored)]

    @strawberry.field(
        description="DEX positions, each with its legs (the legs are in holdings too)."
    )
    def positions(self) -> list[Position]:
        return [Position.of(p) for p in group_positions(self._full())]

    @strawberry.field(
        description="Holdings a page at a time: largest absolute value first, unpriced last, "
        "then chain id, asset, wallet, contract."
    )
    def holdings_connection(
        self,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = DEFAULT_PAGE,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Holding]:
        stored = self._full()
        index = {id(h): i for i, h in enumerate(stored)}  # the P&L source's positions
        return Connection.of(
            holdings_page(stored, first=first, after=after),
            lambda h: Holding.of(h, self.pnl, index[id(h)]),
        )

    @classmethod
    def of(cls, view: PortfolioView, pnl: HoldingsPnl | None = None) -> Portfolio:
        """From the resolver's view (`pnl`: where the holdings' cost-basis fields come from)."""
        return cls._of(view, view.holdings, pnl)

    @classmethod
    def of_rows(cls, totals: PortfolioTotals, rows: list[HoldingRow]) -> Portfolio:
        """From the totals and stored rows of `resolve_portfolio_rows`."""
        portfolio = cls._of(totals, [], None)
        portfolio.rows = rows
        return portfolio

    @classmethod
    def _of(
        cls,
        view: PortfolioView | PortfolioTotals,
        stored: list[StoredHolding],
        pnl: HoldingsPnl | None,
    ) -> Portfolio:
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
            stored=stored,
            pnl=pnl,
            stale=view.stale,
            updated_at=view.updated_at,
            unpriced_count=view.unpriced_count,
            stale_chains=list(view.stale_chains),
            incomplete=view.incomplete,
        )


@strawberry.type
class Wallet:
    id: strawberry.ID
    chain_id: int
    address: str
    label: str | None
    created_at: datetime

    @strawberry.field(description="Token discovery over this wallet's Transfer logs: progress.")
    async def sync(self, info: Info) -> WalletSync:
        async with info.context.services.engine.connect() as db:
            row = await tokens_resolver.wallet_sync(db, wallet_id=uuid.UUID(str(self.id)))
        return WalletSync.of(row)

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
