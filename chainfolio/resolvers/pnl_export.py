"""The P&L exports: every movement with its cost basis and gain, and the P&L by asset, as CSV
rows a spreadsheet or a tax tool imports.

The transactions export streams: one pass over a server-side cursor, the cost basis folded as
it goes (`costbasis.Fold`: a gain needs only the movements before it, and a swap's legs, one
block time, are folded together), so memory holds a batch and the open lots, never the
history. The database formats what it can exactly (dates); amounts and money are formatted
here from exact Decimals.
"""

from __future__ import annotations

import csv
import io
import re
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


async def transaction_lines(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    currency: str | None,
    chain_names: Mapping[int, str],
    period: str = "all",
    now: datetime,
    batch: int = 5_000,
) -> AsyncIterator[str]:
    """The user's movements as CSV lines (`\\r\\n`-terminated, as `csv.writer` writes them,
    without the header; in chunks, oldest first), within the period: a disposal carries its
    cost basis and gain under the user's method."""
    code = parse_currency(currency)
    window = parse_period(period, now=now)
    fold = Fold(method_of(None, await movements_store.cost_basis_method(db, user_id=user_id)))
    symbol, rate_window = rate_source(code) if code != USD else (None, timedelta(0))
    chains = _Chains(chain_names)
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
        if cut and (lines := _lines(fold, pending[:cut], code, chains)):
            yield lines
    if held and (lines := _lines(fold, held, code, chains)):
        yield lines


class _Chains(dict[int, str]):
    """Chain id -> its name as a CSV field (an unknown chain: its id)."""

    def __init__(self, names: Mapping[int, str]) -> None:
        super().__init__()
        self._names = names

    def __missing__(self, chain_id: int) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([self._names.get(chain_id, str(chain_id))])
        field = self[chain_id] = buffer.getvalue()
        return field


def _lines(fold: Fold, records: Sequence[Any], code: str, chains: _Chains) -> str:
    """Fold one batch (whole block times) and write its lines within the period."""
    scale, zero, usd = _SCALE, Decimal(0), code == USD
    quantities: list[Decimal] = []
    values: list[Decimal | None] = []
    cells: list[str] = []
    txs: list[str | None] = []
    for r in records:
        chain_id, tx, amount, decimals, value_usd, usd_cell, rate, kind = (
            r[1],
            r[2],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
        )
        if value_usd is None:
            value = None
        elif usd:
            value = Decimal(value_usd)
        else:  # as `Rates.convert`, in the caller's context
            value = None if rate is None else Decimal(value_usd) / Decimal(rate)
        values.append(value)
        cells.append((usd_cell or "") if usd else _cell(value))
        if kind in _BASIS_KINDS:
            quantities.append(Decimal(amount).scaleb(-decimals, scale))
            txs.append(f"{chain_id}:{tx}" if kind == "external" and tx is not None else None)
        else:
            quantities.append(zero)
            txs.append(None)
    sold: dict[int, Sold] = {}
    fold.add([r[5] for r in records], quantities, values, txs, sold=sold)
    lines = []
    for i, r in enumerate(records):
        if not r[13]:  # no upper bound: blocks may run ahead of the clock
            continue
        kind, cost, gain = r[11], "", ""
        disposal = sold.get(i)
        if disposal is not None:
            cost, gain = _cell(disposal[0]), _cell(disposal[1])
            if kind == "external":
                kind = "swap_out" if disposal[2] else "disposal"
        elif kind == "external":
            kind = "acquisition"
        lines.append(
            f"{r[0]},{chains[r[1]]},{_field(r[2])},{_field(r[3])},{r[4]},{cells[i]},{code},"
            f"{kind},{_field(r[12])},{cost},{gain}\r\n"
        )
    return "".join(lines)


_SPECIAL = re.compile('[",\r\n]').search


def _field(text: str | None) -> str:
    """A text field as `csv.writer` writes it (quoted when it holds a comma, a quote or a
    line break)."""
    if not text:
        return ""
    if _SPECIAL(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


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
