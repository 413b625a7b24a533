"""Profit and loss: cost basis per asset from the stored movements, in the display currency.

Money in another currency than USD is converted at each figure's own time with the stored
Chainlink rate nearest it (a movement at its block's time, the holdings at their refresh):
cost basis, proceeds and gains are computed in that currency, never converted at today's rate.

`resolve_pnl` folds the movements as columns (`costbasis.summarize`); the holdings' per-wallet
realised P&L and the lots still run them one by one (`load_books`). The CSV exports are
`chainfolio.resolvers.pnl_export`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.analytics import costbasis
from chainfolio.analytics.costbasis import (
    AssetLedger,
    AssetPnl,
    AssetTotals,
    Disposal,
    Kind,
    Method,
)
from chainfolio.core.currencies import USD, parse_currency
from chainfolio.core.domain import Category
from chainfolio.core.errors import InvalidInput
from chainfolio.core.periods import parse_period
from chainfolio.resolvers.currency import Rates, load_rates, rate_source
from chainfolio.storage import movements as movements_store
from chainfolio.storage.holdings import StoredHolding, current_holdings
from chainfolio.storage.movements import AssetMovement

# --- cost basis -----------------------------------------------------------------------------


def method_of(value: str | None, default: str) -> Method:
    """A cost-basis method from its name ("average" or "fifo"); INVALID_METHOD otherwise."""
    name = (value or default).lower()
    try:
        return Method(name)
    except ValueError:
        raise InvalidInput(
            f"unknown cost-basis method {value!r}: use average or fifo", code="INVALID_METHOD"
        ) from None


_WIDE = Context(prec=80)


def _tidy(value: Decimal | None) -> Decimal | None:
    """Without trailing zeros (2000.000000 -> 2000), exactly."""
    return None if value is None else value.normalize(_WIDE)


_KINDS = {k.value: k for k in Kind}


def _inputs(
    moves: Sequence[AssetMovement], rates: Rates, first_ref: int = 0
) -> list[costbasis.Movement]:
    convert = rates.convert
    return [
        costbasis.Movement(
            first_ref + i,
            m.time,
            m.asset,
            Decimal(m.amount).scaleb(-m.decimals),
            convert(m.value_usd, m.time),
            _KINDS[m.kind],
            None if m.tx_hash is None else f"{m.chain_id}:{m.tx_hash}",
        )
        for i, m in enumerate(moves)
    ]


def _basis_inputs(records: Sequence[Any], rates: Rates) -> list[costbasis.Movement]:
    """As `_inputs`, from `basis_rows` records (by position: asyncpg records have no
    attributes)."""
    convert = rates.convert
    return [
        costbasis.Movement(
            i,
            r[0],
            r[1],
            r[2].scaleb(-r[3]),
            convert(r[4], r[0]),
            _KINDS[r[5]],
            None if r[7] is None else f"{r[6]}:{r[7]}",
        )
        for i, r in enumerate(records)
    ]


AssetKeys = tuple[dict[tuple[int, str, str], str], dict[tuple[int, str], str]]


@dataclass(frozen=True, slots=True)
class Books:
    """A user's movements run through their cost-basis method, in one currency."""

    method: Method
    currency: str
    movements: list[AssetMovement]
    """Empty unless loaded `detailed`."""
    ledgers: dict[str, AssetLedger]
    rates: Rates
    keys: AssetKeys
    disposals: dict[int, Disposal] = field(default_factory=dict)
    """By movement index."""


async def load_books(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    currency: str = USD,
    method: str | None = None,
    extra_moments: Collection[datetime] = (),
    detailed: bool = False,
) -> Books:
    """Every movement of the user through the chosen (or their saved) method, in `currency`;
    `extra_moments` are converted too (the holdings' valuation times). `detailed` keeps the
    movements themselves (wallet, contract of each disposal), otherwise only what cost basis
    reads is fetched."""
    chosen = method_of(method, await movements_store.cost_basis_method(db, user_id=user_id))
    moves: list[AssetMovement] = []
    if detailed:
        moves = await movements_store.user_movements(db, user_id=user_id)
        rates = await load_rates(db, currency, {m.time for m in moves} | set(extra_moments))
        inputs = _inputs(moves, rates)
        keys = _asset_keys((m.chain_id, m.contract, m.symbol, m.asset) for m in moves)
    else:
        records = await movements_store.basis_rows(db, user_id=user_id)
        rates = await load_rates(db, currency, {r[0] for r in records} | set(extra_moments))
        inputs = _basis_inputs(records, rates)
        keys = _asset_keys(await movements_store.asset_keys(db, user_id=user_id))
    ledgers = costbasis.run(inputs, chosen)
    disposals = costbasis.disposals_by_ref(ledgers)
    return Books(chosen, currency, moves, ledgers, rates, keys, disposals)


def _asset_keys(found: Iterable[tuple[int, str, str, str]]) -> AssetKeys:
    by_token: dict[tuple[int, str, str], str] = {}
    by_symbol: dict[tuple[int, str], str] = {}
    for chain_id, contract, symbol, asset in found:
        by_token[(chain_id, contract.lower(), symbol)] = asset
        by_symbol[(chain_id, symbol)] = asset
    return by_token, by_symbol


def asset_of(
    holding: StoredHolding,
    by_token: Mapping[tuple[int, str, str], str],
    by_symbol: Mapping[tuple[int, str], str],
) -> str:
    """The cost-basis asset of a holding: the price symbol its movements were recorded with."""
    h = holding.holding
    found = by_token.get((h.chain_id, h.contract.lower(), h.symbol))
    return found or by_symbol.get((h.chain_id, h.symbol), h.symbol)


# --- views ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldingPnl:
    """P&L of one holding: the asset's average cost of units held times its balance."""

    cost_basis: Decimal | None
    average_cost: Decimal | None
    unrealized: Decimal | None
    unrealized_percent: Decimal | None
    realized: Decimal
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class PnlView:
    """What `pnl` answers with."""

    period: str
    start: datetime
    end: datetime
    currency: str
    method: str
    realized: Decimal
    unrealized: Decimal | None
    by_asset: list[AssetPnl]
    unvalued: int
    """Movements without a value (or rate) in the whole history."""
    complete: bool
    """False when an unvalued movement or holding leaves a figure partial."""


def _holding_value(stored: StoredHolding, rates: Rates) -> Decimal | None:
    return _tidy(rates.convert(stored.holding.value_usd, stored.updated_at))


def holding_pnl(books: Books, holdings: Sequence[StoredHolding]) -> list[HoldingPnl | None]:
    """Per holding (None for loans): cost basis at its asset's average cost and P&L."""
    by_token, by_symbol = books.keys
    realized: dict[tuple[uuid.UUID | None, str], Decimal] = defaultdict(Decimal)
    for i, disposal in books.disposals.items():
        move = books.movements[i]
        if disposal.gain is not None:
            realized[(move.wallet_id, move.contract.lower())] += disposal.gain
    out: list[HoldingPnl | None] = []
    for stored in holdings:
        h = stored.holding
        if h.category is Category.LOAN or h.balance is None:
            out.append(None)
            continue
        ledger = books.ledgers.get(asset_of(stored, by_token, by_symbol))
        average = None if ledger is None else ledger.average_cost
        value = _holding_value(stored, books.rates)
        basis = None if average is None else _tidy(h.balance * average)
        unrealized = None if basis is None or value is None else value - basis
        percent = unrealized * 100 / basis if unrealized is not None and basis else None
        out.append(
            HoldingPnl(
                basis,
                _tidy(average),
                _tidy(unrealized),
                _tidy(percent),
                realized.get((stored.wallet_id, h.contract.lower()), Decimal(0)).normalize(_WIDE),
                value,
            )
        )
    return out


async def resolve_pnl(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    period: str,
    currency: str | None,
    now: datetime,
    method: str | None = None,
) -> PnlView:
    """Realised P&L of the period's disposals and unrealised P&L of what is held now.

    Reads the movements as columns (`movements.basis_columns`, display-currency rates joined
    in) and folds them with `costbasis.summarize`: no object per movement, the same figures
    as the per-movement run (`load_books`), which the holdings' per-wallet P&L still takes."""
    code = parse_currency(currency)
    window = parse_period(period, now=now)
    holdings = await current_holdings(db, user_id=user_id)
    chosen = method_of(method, await movements_store.cost_basis_method(db, user_id=user_id))
    start = None if window.period == "all" else window.start
    symbol, rate_window = rate_source(code) if code != USD else (None, timedelta(0))
    columns = await movements_store.basis_columns(
        db, user_id=user_id, after=start, rate_symbol=symbol, rate_window=rate_window
    )
    values = columns.values_usd
    if symbol is not None:  # as `Rates.convert`, in the caller's context
        values = [
            None if v is None or r is None else v / r
            for v, r in zip(values, columns.rates, strict=True)
        ]
    totals = costbasis.summarize(
        columns.assets,
        columns.quantities,
        values,
        columns.txs,
        chosen,
        realized_from=columns.before,
    )
    rates = await load_rates(db, code, {s.updated_at for s in holdings})
    symbols = {s.holding.symbol for s in holdings}
    found = await movements_store.asset_keys(db, user_id=user_id, symbols=symbols)
    by_token, by_symbol = _asset_keys(found)
    held: dict[str, Decimal] = defaultdict(Decimal)
    worth: dict[str, Decimal | None] = {}
    for stored in holdings:
        h = stored.holding
        if h.category is Category.LOAN or h.balance is None:
            continue
        asset = asset_of(stored, by_token, by_symbol)
        held[asset] += h.balance.normalize(_WIDE)
        value = _holding_value(stored, rates)
        before = worth.get(asset, Decimal(0))
        worth[asset] = None if value is None or before is None else before + value
    rows = []
    for asset in sorted(set(totals) | set(held)):
        pnl = costbasis.asset_pnl(
            totals.get(asset) or AssetTotals(asset),
            held=held.get(asset, Decimal(0)),
            value=worth.get(asset),
        )
        rows.append(
            replace(
                pnl,
                quantity=pnl.quantity.normalize(_WIDE),
                value=_tidy(pnl.value),
                cost_basis=_tidy(pnl.cost_basis),
                average_cost=_tidy(pnl.average_cost),
                unrealized=_tidy(pnl.unrealized),
                unrealized_percent=_tidy(pnl.unrealized_percent),
                realized=pnl.realized.normalize(_WIDE),
                unvalued=pnl.unvalued,
            )
        )
    realized = sum((r.realized for r in rows), Decimal(0))
    unrealized: Decimal | None = Decimal(0)
    for r in rows:
        if r.quantity == 0:
            continue
        unrealized = (
            None if r.unrealized is None or unrealized is None else unrealized + r.unrealized
        )
    unvalued = sum(r.unvalued for r in rows)
    partial = any(t.incomplete for t in totals.values())
    return PnlView(
        period=window.period,
        start=window.start,
        end=window.end,
        currency=code,
        method=chosen.value,
        realized=realized.normalize(_WIDE),
        unrealized=_tidy(unrealized),
        by_asset=rows,
        unvalued=unvalued,
        complete=not partial and unvalued == 0 and unrealized is not None,
    )


@dataclass(frozen=True, slots=True)
class LotView:
    """Units of an asset still held, acquired together (FIFO) or pooled (average cost)."""

    asset: str
    acquired: datetime
    quantity: Decimal
    cost: Decimal | None
    unit_cost: Decimal | None


async def resolve_lots(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    asset: str,
    currency: str | None,
    method: str | None = None,
) -> list[LotView]:
    """The open lots of `asset` (oldest first)."""
    books = await load_books(db, user_id=user_id, currency=parse_currency(currency), method=method)
    ledger = books.ledgers.get(asset)
    if ledger is None:
        return []
    return [
        LotView(
            lot.asset,
            lot.acquired,
            lot.quantity.normalize(_WIDE),
            _tidy(lot.cost),
            None if lot.cost is None or not lot.quantity else _tidy(lot.cost / lot.quantity),
        )
        for lot in ledger.lots
    ]
