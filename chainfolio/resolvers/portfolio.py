"""The portfolio as it stands: totals, breakdowns by chain / asset / category, holdings."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.domain import Category
from chainfolio.resolvers.pages import Key, Page, paginate
from chainfolio.resolvers.updates import percent_change
from chainfolio.storage.holdings import StoredHolding, current_holdings
from chainfolio.storage.timeseries import snapshot_at_or_before


@dataclass(frozen=True, slots=True)
class ChainValue:
    """Value held on one chain."""

    chain_id: int
    chain: str
    value: Decimal
    stale: bool


@dataclass(frozen=True, slots=True)
class AssetValue:
    """One asset summed over chains and wallets."""

    asset: str
    balance: Decimal
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class CategoryValue:
    """Value per category (loans negative)."""

    category: str
    value: Decimal


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """Everything `portfolio` answers with."""

    total_value: Decimal
    change_24h: Decimal | None
    change_percent_24h: Decimal | None
    chains: list[ChainValue]
    assets: list[AssetValue]
    categories: list[CategoryValue]
    holdings: list[StoredHolding]
    stale: bool
    updated_at: datetime | None
    unpriced_count: int


def summarize_holdings(
    holdings: list[StoredHolding],
) -> tuple[Decimal, dict[tuple[int, str], Decimal], dict[str, Decimal], dict[str, Decimal]]:
    """Total and breakdowns of priced holdings; unpriced and unknown ones are not counted."""
    total = Decimal(0)
    by_chain: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    by_asset: dict[str, Decimal] = defaultdict(Decimal)
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    for stored in holdings:
        value = stored.holding.value_usd
        by_chain[(stored.holding.chain_id, stored.chain)] += value or 0
        if value is None:
            continue
        total += value
        by_asset[stored.holding.symbol] += value
        by_category[stored.holding.category.value] += value
    return total, dict(by_chain), dict(by_asset), dict(by_category)


async def resolve_portfolio(
    db: AsyncConnection, *, user_id: uuid.UUID, now: datetime, with_change: bool = True
) -> PortfolioView:
    """The user's current portfolio from stored holdings, with the change over 24 h (unless
    `with_change` is False: a query that does not ask for it skips the snapshot read)."""
    holdings = await current_holdings(db, user_id=user_id)
    total, by_chain, by_asset, by_category = summarize_holdings(holdings)
    stale_chains = {h.holding.chain_id for h in holdings if h.holding.stale}
    balances: dict[str, Decimal] = defaultdict(Decimal)
    priced: set[str] = set()
    for stored in holdings:
        h = stored.holding
        if h.balance is not None and h.category is not Category.LOAN:
            balances[h.symbol] += h.balance
        if h.value_usd is not None:
            priced.add(h.symbol)
    assets = [
        AssetValue(symbol, balance, by_asset.get(symbol) if symbol in priced else None)
        for symbol, balance in balances.items()
    ]
    assets.sort(key=lambda a: (a.value is None, -(a.value or 0), a.asset))
    day_ago = None
    if with_change:
        day_ago = await snapshot_at_or_before(db, user_id=user_id, moment=now - timedelta(hours=24))
    change = change_pct = None
    if day_ago is not None:
        change = total - day_ago.total_value
        change_pct = percent_change(total, day_ago.total_value)
    return PortfolioView(
        total_value=total,
        change_24h=change,
        change_percent_24h=change_pct,
        chains=sorted(
            (ChainValue(cid, name, v, cid in stale_chains) for (cid, name), v in by_chain.items()),
            key=lambda c: -c.value,
        ),
        assets=assets,
        categories=sorted(
            (CategoryValue(k, v) for k, v in by_category.items()), key=lambda c: -c.value
        ),
        holdings=holdings,
        stale=bool(stale_chains),
        updated_at=max((h.updated_at for h in holdings), default=None),
        unpriced_count=sum(1 for h in holdings if h.holding.value_usd is None),
    )


def holding_key(stored: StoredHolding) -> Key:
    """Largest absolute value first, unpriced last, then chain, asset, wallet, contract."""
    h = stored.holding
    value = h.value_usd
    unpriced = value is None
    return (
        unpriced,
        -abs(value) if value is not None else Decimal(0),
        h.chain_id,
        h.symbol,
        h.wallet,
        h.contract,
        h.kind.value,
    )


def holdings_page(
    holdings: list[StoredHolding], *, first: int | None, after: str | None
) -> Page[StoredHolding]:
    """A page of the portfolio's holdings in `holding_key` order."""
    return paginate("holding", holdings, holding_key, first=first, after=after)
