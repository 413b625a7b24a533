"""The portfolio as it stands: totals, breakdowns by chain / asset / category, holdings."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.domain import MONEY, Category
from chainfolio.resolvers.pages import Key, Page, paginate
from chainfolio.resolvers.updates import percent_change
from chainfolio.storage.holdings import StoredHolding, current_holdings
from chainfolio.storage.hotpath import total_at_or_before


@dataclass(frozen=True, slots=True)
class ChainValue:
    """Value held on one chain: None when no holding on it has a known value (a wallet whose
    chain was down before its first read) — unknown, not zero."""

    chain_id: int
    chain: str
    value: Decimal | None
    stale: bool


@dataclass(frozen=True, slots=True)
class AssetValue:
    """One asset summed over chains and wallets: what is held (`balance`, gross), what is
    borrowed (`loan`), their difference (`net_balance`) and its USD value (`value`, net: held
    minus borrowed; None when no holding of the asset is priced)."""

    asset: str
    balance: Decimal
    value: Decimal | None
    loan: Decimal = Decimal(0)

    @property
    def net_balance(self) -> Decimal:
        """Held minus borrowed, in whole units."""
        return MONEY.subtract(self.balance, self.loan)


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
    stale_chains: tuple[int, ...] = ()
    incomplete: bool = False
    """Some holding's amount is unknown (never read successfully): the total leaves it out."""


def stale_chains_of(holdings: list[StoredHolding]) -> tuple[int, ...]:
    """Chains that could not be read at the last attempt (token-level failures do not count):
    the one definition of `staleChains` for queries and pushes alike."""
    return tuple(sorted({h.holding.chain_id for h in holdings if h.chain_stale}))


def is_incomplete(holdings: list[StoredHolding]) -> bool:
    """True when some holding's amount is unknown, so the total cannot include it."""
    return any(h.holding.amount is None for h in holdings)


def summarize_holdings(
    holdings: list[StoredHolding],
) -> tuple[Decimal, dict[tuple[int, str], Decimal], dict[str, Decimal], dict[str, Decimal]]:
    """Total and breakdowns of priced holdings, exact; unpriced and unknown ones are not
    counted."""
    total = Decimal(0)
    by_chain: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    by_asset: dict[str, Decimal] = defaultdict(Decimal)
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    with localcontext(MONEY):
        for stored in holdings:
            value = stored.value_usd
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
    stale_chains = stale_chains_of(holdings)
    valued = {h.holding.chain_id for h in holdings if h.value_usd is not None}
    held: dict[str, Decimal] = defaultdict(Decimal)
    borrowed: dict[str, Decimal] = defaultdict(Decimal)
    priced: set[str] = set()
    with localcontext(MONEY):
        for stored in holdings:
            h = stored.holding
            if stored.balance is not None:
                side = borrowed if h.category is Category.LOAN else held
                side[h.symbol] += stored.balance
            if stored.value_usd is not None:
                priced.add(h.symbol)
    assets = [
        AssetValue(
            symbol,
            held.get(symbol, Decimal(0)),
            by_asset.get(symbol) if symbol in priced else None,
            borrowed.get(symbol, Decimal(0)),
        )
        for symbol in dict.fromkeys([*held, *borrowed])
    ]
    assets.sort(key=lambda a: (a.value is None, -(a.value or 0), a.asset))
    day_ago = None
    if with_change:
        day_ago = await total_at_or_before(db, user_id=user_id, moment=now - timedelta(hours=24))
    change = change_pct = None
    if day_ago is not None:
        change = MONEY.subtract(total, day_ago)
        change_pct = percent_change(total, day_ago)
    return PortfolioView(
        total_value=total,
        change_24h=change,
        change_percent_24h=change_pct,
        chains=sorted(
            (
                ChainValue(cid, name, v if cid in valued else None, cid in stale_chains)
                for (cid, name), v in by_chain.items()
            ),
            key=lambda c: (c.value is None, -(c.value or 0)),
        ),
        assets=assets,
        categories=sorted(
            (CategoryValue(k, v) for k, v in by_category.items()), key=lambda c: -c.value
        ),
        holdings=holdings,
        stale=bool(stale_chains),
        updated_at=max((h.updated_at for h in holdings), default=None),
        unpriced_count=sum(1 for h in holdings if h.value_usd is None),
        stale_chains=stale_chains,
        incomplete=is_incomplete(holdings),
    )


def holding_key(stored: StoredHolding) -> Key:
    """Largest absolute value first, unpriced last, then chain, asset, wallet, contract."""
    h = stored.holding
    value = stored.value_usd
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
