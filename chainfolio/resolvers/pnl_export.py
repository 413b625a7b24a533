"""The P&L exports: every movement with its cost basis and gain, and the P&L by asset, as CSV
rows a spreadsheet or a tax tool imports.

The transactions export streams: one pass over a server-side cursor, the cost basis folded as
it goes (`costbasis.Fold`: a gain needs only the movements before it, and a swap's legs, one
block time, are folded together), so memory holds a batch and the open lots, never the
history. The database formats what it can exactly (dates); amounts and money are formatted
here from exact Decimals.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.analytics.costbasis import Fold, Sold
from chainfolio.core.currencies import USD, parse_currency
from chainfolio.core.domain import plain
from chainfolio.core.periods import parse_period
from chainfolio.resolvers.currency import rate_source
from chainfolio.resolvers.pnl import PnlView, method_of
from chainfolio.storage import movements as movements_store

TRANSACTION_COLUMNS = (
    "date",
    "chain",
    "tx_hash",
    "wallet",
    "asset",
    "symbol",
    "amount",
    "value",
    "currency",
    "kind",
    "counterparty",
    "cost_basis",
    "gain",
)

_WIDE = Context(prec=80)
# Quantities are scaled exactly (uint256 amounts have up to 78 digits).
_SCALE = Context(prec=100)
_BASIS_KINDS = frozenset({"external", "opening"})


def _cell(value: Decimal | None) -> str:
    return "" if value is None else plain(value.normalize(_WIDE))


async def transaction_rows(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    currency: str | None,
    chain_names: Mapping[int, str],
    period: str = "all",
    now: datetime,
    batch: int = 5_000,
) -> AsyncIterator[list[list[str]]]:
    """The user's movements as CSV rows (in batches, oldest first), within the period: a
    disposal carries its cost basis and gain under the user's method."""
    code = parse_currency(currency)
    window = parse_period(period, now=now)
    fold = Fold(method_of(None, await movements_store.cost_basis_method(db, user_id=user_id)))
    symbol, rate_window = rate_source(code) if code != USD else (None, timedelta(0))
    held: list[Any] = []
    async for chunk in movements_store.stream_export(
        db,
        user_id=user_id,
        after=None if window.period == "all" else window.start,
        rate_symbol=symbol,
        rate_window=rate_window,
        batch=batch,
    ):
        pending = held + chunk
        cut = len(pending)
        while cut and pending[cut - 1][0] == pending[-1][0]:  # the time may go on next batch
            cut -= 1
        held = pending[cut:]
        if cut and (rows := _rows(fold, pending[:cut], code, chain_names)):
            yield rows
    if held and (rows := _rows(fold, held, code, chain_names)):
        yield rows


def _rows(
    fold: Fold, records: Sequence[Any], code: str, chain_names: Mapping[int, str]
) -> list[list[str]]:
    """Fold one batch (whole block times) and format its rows within the period."""
    scale, basis_kinds, zero = _SCALE, _BASIS_KINDS, Decimal(0)
    quantities: list[Decimal] = []
    values: list[Decimal | None] = []
    basis: list[Decimal] = []
    txs: list[str | None] = []
    for r in records:
        quantity = Decimal(r[6]).scaleb(-r[7], scale)
        usd, rate = r[8], r[9]
        if usd is None:
            value = None
        elif code == USD:
            value = Decimal(usd)
        else:  # as `Rates.convert`, in the caller's context
            value = None if rate is None else Decimal(usd) / Decimal(rate)
        quantities.append(quantity)
        values.append(value)
        kind = r[10]
        basis.append(quantity if kind in basis_kinds else zero)
        txs.append(f"{r[1]}:{r[2]}" if kind == "external" and r[2] is not None else None)
    sold: dict[int, Sold] = {}
    fold.add([r[4] for r in records], basis, values, txs, sold=sold)
    rows = []
    for i, r in enumerate(records):
        if not r[12]:  # no upper bound: blocks may run ahead of the clock
            continue
        kind = r[10]
        cost = gain = ""
        disposal = sold.get(i)
        if disposal is not None:
            cost, gain = _cell(disposal[0]), _cell(disposal[1])
            if kind == "external":
                kind = "swap_out" if disposal[2] else "disposal"
        elif kind == "external":
            kind = "acquisition"
        chain_id = r[1]
        rows.append(
            [
                r[0],
                chain_names.get(chain_id, str(chain_id)),
                r[2] or "",
                r[3] or "",
                r[4],
                r[5],
                _cell(quantities[i]),
                _cell(values[i]),
                code,
                kind,
                r[11] or "",
                cost,
                gain,
            ]
        )
    return rows


PNL_COLUMNS = (
    "asset",
    "quantity",
    "value",
    "cost_basis",
    "average_cost",
    "unrealized",
    "unrealized_percent",
    "realized",
    "unvalued",
    "currency",
    "method",
    "period",
)


def pnl_rows(view: PnlView) -> list[list[str]]:
    """The P&L by asset as CSV rows."""
    return [
        [
            r.asset,
            plain(r.quantity),
            _cell(r.value),
            _cell(r.cost_basis),
            _cell(r.average_cost),
            _cell(r.unrealized),
            _cell(r.unrealized_percent),
            plain(r.realized),
            str(r.unvalued),
            view.currency,
            view.method,
            view.period,
        ]
        for r in view.by_asset
    ]
