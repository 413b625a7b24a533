"""The portfolio as it stands: totals, breakdowns by chain / asset / category, holdings."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chainfolio.core.domain import MONEY, Category
from chainfolio.resolvers.pages import Key, Page, paginate
from chainfolio.resolvers.updates import percent_change
from chainfolio.storage.database import pooled_driver
from chainfolio.storage.holdings import HoldingRow, StoredHolding, current_holdings
from chainfolio.storage.hotpath import older_total, portfolio_rows, total_at_or_before


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
    `staleChains` of pushes, defined with the query's in `_sum`."""
    return tuple(sorted(_sum(_entries(holdings)).stale))


def is_incomplete(holdings: list[StoredHolding]) -> bool:
    """True when some holding's amount is unknown, so the total cannot include it."""
    return _sum(_entries(holdings)).incomplete


_Entry = tuple[int, str, str, str, Decimal | None, Decimal | None, bool, datetime, bool]
"""What the sums read of a holding: chain id and name, symbol, category value, balance,
value, chain stale, updated at, amount known."""


def _entries(holdings: Iterable[StoredHolding]) -> Iterator[_Entry]:
    for s in holdings:
        h = s.holding
        yield (
            h.chain_id,
            s.chain,
            h.symbol,
            h.category.value,
            s.balance,
            s.value_usd,
            s.chain_stale,
            s.updated_at,
            h.amount is not None,
        )


@dataclass(slots=True)
class _Sums:
    """Totals and breakdowns of holdings, exact; unpriced and unknown ones add nothing to
    the values (a chain with none priced still has its entry: zero)."""

    total: Decimal = Decimal(0)
    by_chain: dict[tuple[int, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_asset: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_category: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    held: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    borrowed: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    valued: set[int] = field(default_factory=set)
    """Chains with some holding whose value is known."""
    stale: set[int] = field(default_factory=set)
    """Chains that could not be read at the last attempt (token-level failures do not
    count): the one definition of `staleChains` for queries and pushes alike."""
    updated_at: datetime | None = None
    unpriced: int = 0
    incomplete: bool = False
    """Some holding's amount is unknown, so the total cannot include it."""


def _sum(entries: Iterable[_Entry]) -> _Sums:
    """All the sums of the holdings in one pass: the one definition for the worker's
    snapshots, `resolve_portfolio` (over `StoredHolding`s) and `resolve_portfolio_rows`."""
    sums = _Sums()
    by_chain, by_asset, by_category = sums.by_chain, sums.by_asset, sums.by_category
    held, borrowed, valued, stale = sums.held, sums.borrowed, sums.valued, sums.stale
    total, updated_at, unpriced, incomplete = sums.total, sums.updated_at, 0, False
    with localcontext(MONEY):
        for chain_id, chain, symbol, category, balance, value, chain_stale, at, known in entries:
            by_chain[(chain_id, chain)] += value or 0
            if chain_stale:
                stale.add(chain_id)
            if updated_at is None or at > updated_at:
                updated_at = at
            if not known:
                incomplete = True
            if balance is not None:
                side = borrowed if category == Category.LOAN else held
                side[symbol] += balance
            if value is None:
                unpriced += 1
                continue
            valued.add(chain_id)
            total += value
            by_asset[symbol] += value
            by_category[category] += value
    sums.total, sums.updated_at, sums.unpriced, sums.incomplete = (
        total,
        updated_at,
        unpriced,
        incomplete,
    )
    return sums


def summarize_holdings(
    holdings: list[StoredHolding],
) -> tuple[Decimal, dict[tuple[int, str], Decimal], dict[str, Decimal], dict[str, Decimal]]:
    """Total and breakdowns of priced holdings, exact; unpriced and unknown ones are not
    counted."""
    sums = _sum(_entries(holdings))
    return sums.total, dict(sums.by_chain), dict(sums.by_asset), dict(sums.by_category)


@dataclass(frozen=True, slots=True)
class PortfolioTotals:
    """Everything `portfolio` answers with but the holdings themselves."""

    total_value: Decimal
    change_24h: Decimal | None
    change_percent_24h: Decimal | None
    chains: list[ChainValue]
    assets: list[AssetValue]
    categories: list[CategoryValue]
    stale: bool
    updated_at: datetime | None
    unpriced_count: int
    stale_chains: tuple[int, ...]
    incomplete: bool


def _totals(entries: Iterable[_Entry], day_ago: Decimal | None) -> PortfolioTotals:
    """The totals and breakdowns of the holdings, sorted as answered, and the change since
    `day_ago`."""
    sums = _sum(entries)
    total, held, borrowed, by_asset = sums.total, sums.held, sums.borrowed, sums.by_asset
    assets = [
        AssetValue(
            symbol,
            held.get(symbol, Decimal(0)),
            by_asset.get(symbol),
            borrowed.get(symbol, Decimal(0)),
        )
        for symbol in dict.fromkeys([*held, *borrowed])
    ]
    assets.sort(key=lambda a: (a.value is None, -(a.value or 0), a.asset))
    change = change_pct = None
    if day_ago is not None:
        change = MONEY.subtract(total, day_ago)
        change_pct = percent_change(total, day_ago)
    valued, stale = sums.valued, sums.stale
    return PortfolioTotals(
        total_value=total,
        change_24h=change,
        change_percent_24h=change_pct,
        chains=sorted(
            (
                ChainValue(cid, name, v if cid in valued else None, cid in stale)
                for (cid, name), v in sums.by_chain.items()
            ),
            key=lambda c: (c.value is None, -(c.value or 0)),
        ),
        assets=assets,
        categories=sorted(
            (CategoryValue(k, v) for k, v in sums.by_category.items()), key=lambda c: -c.value
        ),
        stale=bool(stale),
        updated_at=sums.updated_at,
        unpriced_count=sums.unpriced,
        stale_chains=tuple(sorted(stale)),
        incomplete=sums.incomplete,
    )


async def resolve_portfolio(
    db: AsyncConnection, *, user_id: uuid.UUID, now: datetime, with_change: bool = True
) -> PortfolioView:
    """The user's current portfolio from stored holdings, with the change over 24 h (unless
    `with_change` is False: a query that does not ask for it skips the snapshot read)."""
    holdings = await current_holdings(db, user_id=user_id)
    day_ago = None
    if with_change:
        day_ago = await total_at_or_before(db, user_id=user_id, moment=now - timedelta(hours=24))
    t = _totals(_entries(holdings), day_ago)
    return PortfolioView(
        total_value=t.total_value,
        change_24h=t.change_24h,
        change_percent_24h=t.change_percent_24h,
        chains=t.chains,
        assets=t.assets,
        categories=t.categories,
        holdings=holdings,
        stale=t.stale,
        updated_at=t.updated_at,
        unpriced_count=t.unpriced_count,
        stale_chains=t.stale_chains,
        incomplete=t.incomplete,
    )


async def resolve_portfolio_rows(
    engine: AsyncEngine, *, user_id: uuid.UUID, now: datetime
) -> tuple[PortfolioTotals, list[HoldingRow]]:
    """`resolve_portfolio` with the holdings as stored rows, read on a pooled asyncpg
    connection: for answers that show holdings as they are (REST `/v1/portfolio`)."""
    moment = now - timedelta(hours=24)
    async with pooled_driver(engine) as driver:
        rows, day_ago = await portfolio_rows(driver, user_id=user_id, moment=moment)
    if day_ago is None:
        async with engine.connect() as db:
            day_ago = await older_total(db, user_id=user_id, moment=moment)
    entries = [
        (
            r.chain_id,
            r.chain,
            r.symbol,
            r.category,
            r.balance,
            r.value_usd,
            r.chain_stale,
            r.updated_at,
            r.amount is not None,
        )
        for r in rows
    ]
    return _totals(entries, day_ago), rows


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
