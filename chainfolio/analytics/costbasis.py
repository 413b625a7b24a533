"""Cost basis and realised / unrealised profit and loss from a history of asset movements.

Pure: movements in (exact Decimals), lots and gains out. Two methods, both computed per asset
across all of a user's wallets:

* average cost (`AVERAGE`): every unit held costs the pool's cost divided by its quantity; a
  disposal takes that average, and the pool's average is unchanged by it;
* first in, first out (`FIFO`): a disposal consumes the oldest lots first.

Which movements are acquisitions and disposals (own-wallet moves, wraps and deposits keep the
basis; swaps) is `chainfolio.analytics.acquisitions`; the methods' books are
`chainfolio.analytics.lots`.

Unvalued movements are never valued at zero. An acquisition without a value is a lot of
unknown cost; a disposal's gain is known for the part taken from lots of known cost (average
cost: the pool's unknown-cost share is taken pro rata) and only when its proceeds are known;
whatever is not known is counted and flagged. Disposing of more than the history acquired
(e.g. gas paid from units received before the wallet was tracked) takes the excess at unknown
cost.

Two ways in: `CostBasis` / `run` over `Movement`s keep every disposal (per-movement answers:
holdings, exports); `summarize` folds columns (one list per field, as a database aggregate
returns them) into what a P&L summary reads, without an object per movement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from chainfolio.analytics.acquisitions import (
    KEEPS_BASIS,
    Event,
    Kind,
    Leg,
    Movement,
    Side,
    classify_movements,
    swap_values,
)
from chainfolio.analytics.lots import (
    EXACT,
    ZERO,
    AssetLedger,
    Book,
    Disposal,
    Lot,
    Method,
    book_of,
    disposal_gain,
)

__all__ = [
    "KEEPS_BASIS",
    "AssetLedger",
    "AssetPnl",
    "AssetTotals",
    "CostBasis",
    "Disposal",
    "Event",
    "Fold",
    "Kind",
    "Lot",
    "Method",
    "Movement",
    "Side",
    "Sold",
    "asset_pnl",
    "classify",
    "disposals_by_ref",
    "run",
    "summarize",
]


def classify(movements: Iterable[Movement]) -> list[Event]:
    """The acquisitions and disposals among `movements` (time order kept; swaps recognised)."""
    with localcontext(EXACT):
        return classify_movements(movements)


class CostBasis:
    """An incremental run of one method: feed movements oldest first, every leg of a
    transaction in the same call (a swap is recognised within one call). With `keep=False`
    the ledgers keep no per-disposal history (a streamed export: memory stays flat)."""

    def __init__(self, method: Method, *, keep: bool = True) -> None:
        self.method = method
        self._keep = keep
        self._books: dict[str, Book] = {}
        self._new_book = book_of(method)

    def add(self, movements: Iterable[Movement]) -> dict[int, Disposal]:
        """Run `movements`; the disposals they made, by movement ref."""
        made: dict[int, Disposal] = {}
        books, acquire, keep = self._books, Side.ACQUIRE, self._keep
        with localcontext(EXACT):
            for event in classify_movements(movements):
                book = books.get(event.asset)
                if book is None:
                    book = books[event.asset] = self._new_book(event.asset)
                ledger = book.ledger
                if event.value is None:
                    ledger.unvalued += 1
                if event.side is acquire:
                    book.acquire(event.ref, event.time, event.quantity, event.value)
                    if keep:
                        ledger.acquired_cost[event.ref] = event.value
                    continue
                known_qty, known_cost, unknown_qty = book.take(event.quantity)
                cost, gain = disposal_gain(event.quantity, event.value, known_qty, known_cost)
                disposal = Disposal(
                    event.ref,
                    event.time,
                    event.asset,
                    event.quantity,
                    event.value,
                    cost,
                    gain,
                    unknown_qty,
                    event.swap,
                )
                if keep:
                    ledger.disposals.append(disposal)
                made[disposal.ref] = disposal
        return made

    def ledgers(self) -> dict[str, AssetLedger]:
        """Every asset's ledger as of the movements fed so far."""
        return {asset: book.finish() for asset, book in self._books.items()}


@dataclass(slots=True)
class AssetTotals:
    """One asset after a `summarize`: what is held by the history, of known cost and at what
    cost, the known gains realised from `realized_from` on, the acquisitions and disposals
    without a value, and how many disposals of the whole history are partial (a gain
    unknown, or units of unknown cost taken)."""

    asset: str
    quantity: Decimal = ZERO
    known_quantity: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realized: Decimal = ZERO
    unvalued: int = 0
    incomplete: int = 0

    @property
    def average_cost(self) -> Decimal | None:
        """Cost per unit held (over the units of known cost); None when none is known."""
        with localcontext(EXACT):
            return self.cost_basis / self.known_quantity if self.known_quantity > 0 else None


Sold = tuple[Decimal | None, Decimal | None, bool]
"""A disposal's cost basis (None when it took no units of known cost), gain (None when
unknown) and whether it was a swap."""


class Fold:
    """`summarize`, incrementally: feed columns oldest first, every leg of a transaction in the
    same call (a swap is recognised within one call). Memory holds the open lots, not the
    history (a streamed export)."""

    def __init__(self, method: Method) -> None:
        self._new_book = book_of(method)
        self._books: dict[str, Book] = {}
        self._totals: dict[str, AssetTotals] = {}

    def add(
        self,
        assets: Sequence[str],
        quantities: Sequence[Decimal],
        values: Sequence[Decimal | None],
        txs: Sequence[str | None],
        *,
        realized_from: int = 0,
        sold: dict[int, Sold] | None = None,
    ) -> None:
        """Run the columns (see `summarize`); a zero quantity changes nothing (give it to a
        movement that keeps the basis, with no transaction). With `sold`, each disposal's
        figures are put there by its index in these columns."""
        with localcontext(EXACT):
            self._add(assets, quantities, values, txs, realized_from, sold)

    def _add(  # noqa: PLR0917 - the public `add`'s arguments, passed through
        self,
        assets: Sequence[str],
        quantities: Sequence[Decimal],
        values: Sequence[Decimal | None],
        txs: Sequence[str | None],
        realized_from: int,
        sold: dict[int, Sold] | None,
    ) -> None:
        swapped = swap_values(
            [Leg(i, assets[i], quantities[i], values[i]) for i in legs]
            for legs in _shared(txs).values()
        )
        totals, books, new_book = self._totals, self._books, self._new_book
        for i, signed in enumerate(quantities):
            if not signed:
                continue
            asset = assets[i]
            value = swapped[i] if i in swapped else values[i]
            book = books.get(asset)
            if book is None:
                book = books[asset] = new_book(asset)
                totals[asset] = AssetTotals(asset)
            total = totals[asset]
            if value is None:
                total.unvalued += 1
            if signed > 0:
                book.acquire(i, None, signed, value)
                continue
            quantity = -signed
            known_qty, known_cost, unknown_qty = book.take(quantity)
            cost, gain = disposal_gain(quantity, value, known_qty, known_cost)
            if gain is None or unknown_qty:
                total.incomplete += 1
            if gain is not None and i >= realized_from:
                total.realized = total.realized + gain
            if sold is not None:
                sold[i] = (cost, gain, i in swapped)

    def totals(self) -> dict[str, AssetTotals]:
        """Every asset's totals as of the columns fed so far."""
        with localcontext(EXACT):
            for asset, book in self._books.items():
                total = self._totals[asset]
                total.quantity = total.known_quantity = total.cost_basis = ZERO
                for _, quantity, cost, _ in book.open_lots():
                    total.quantity = total.quantity + quantity
                    if cost is not None:
                        total.known_quantity = total.known_quantity + quantity
                        total.cost_basis = total.cost_basis + cost
        return self._totals


def _shared(txs: Sequence[str | None]) -> dict[str, list[int]]:
    """The indices of each transaction key given more than once."""
    counts = Counter(txs)
    if all(n == 1 or tx is None for tx, n in counts.items()):  # most histories: no swaps
        return {}
    shared: dict[str, list[int]] = {}
    for i, tx in enumerate(txs):
        if tx is not None and counts[tx] > 1:
            shared.setdefault(tx, []).append(i)
    return shared


def summarize(
    assets: Sequence[str],
    quantities: Sequence[Decimal],
    values: Sequence[Decimal | None],
    txs: Sequence[str | None],
    method: Method,
    *,
    realized_from: int = 0,
) -> dict[str, AssetTotals]:
    """Every asset's totals from a history given as columns, oldest first (index i is a
    movement's ref): the asset, signed quantity and value of each movement of kind `external`
    or `opening` (the others keep the basis and change nothing), and the transaction key of
    the external ones (None for openings; may be None for a transaction of one movement).
    Gains of the disposals with index >= `realized_from` are summed. The arithmetic of `run`,
    in its order: the same answers, without an object per movement."""
    fold = Fold(method)
    fold.add(assets, quantities, values, txs, realized_from=realized_from)
    return fold.totals()


@dataclass(frozen=True, slots=True)
class AssetPnl:
    """One asset's P&L against what is held now."""

    asset: str
    quantity: Decimal
    """Units held now (the holdings), or by the history when no holding is given."""
    value: Decimal | None
    cost_basis: Decimal | None
    average_cost: Decimal | None
    unrealized: Decimal | None
    unrealized_percent: Decimal | None
    realized: Decimal
    unvalued: int


def asset_pnl(
    ledger: AssetLedger | AssetTotals,
    *,
    held: Decimal | None = None,
    value: Decimal | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> AssetPnl:
    """Cost basis and unrealised P&L of `held` units worth `value` now, at the ledger's average
    cost of the units held (the history's own quantity when `held` is None); realised P&L of
    the disposals in (start, end] (of a ledger; totals were summed by `summarize`)."""
    with localcontext(EXACT):
        return _asset_pnl(ledger, held, value, start, end)


def _asset_pnl(
    ledger: AssetLedger | AssetTotals,
    held: Decimal | None,
    value: Decimal | None,
    start: datetime | None,
    end: datetime | None,
) -> AssetPnl:
    quantity = ledger.quantity if held is None else held
    average = ledger.average_cost
    basis = None if average is None else (average * quantity)
    if quantity == 0:
        basis = ZERO
    unrealized = percent = None
    if basis is not None and value is not None:
        unrealized = value - basis
        percent = ((unrealized * 100) / basis) if basis else None
    return AssetPnl(
        ledger.asset,
        quantity,
        value,
        basis,
        average,
        unrealized,
        percent,
        ledger.realized if isinstance(ledger, AssetTotals) else ledger.realized(start, end),
        ledger.unvalued,
    )


def run(movements: Iterable[Movement], method: Method) -> dict[str, AssetLedger]:
    """The ledgers of a whole history."""
    basis = CostBasis(method)
    basis.add(movements)
    return basis.ledgers()


def disposals_by_ref(books: Mapping[str, AssetLedger]) -> dict[int, Disposal]:
    """Every disposal by the ref of its movement."""
    return {d.ref: d for book in books.values() for d in book.disposals}
