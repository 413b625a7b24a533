"""An independent cost-basis reference: a plain loop over lots in exact fractions.

Written from the textbook definitions, not from `chainfolio.analytics.costbasis`: FIFO keeps a
list of lots with their unit cost and consumes the oldest first; average cost keeps one pool
whose unit cost is its cost over its quantity. Units of unknown cost (unvalued acquisitions)
are tracked beside the known ones; average cost takes them pro rata (all units are alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass
class Trade:
    """A buy (quantity > 0) or sell (quantity < 0) at a total value (None: unvalued)."""

    asset: str
    quantity: Fraction
    value: Fraction | None


@dataclass
class Book:
    realized: Fraction = Fraction(0)
    lots: list[list[Fraction | None]] = field(default_factory=list)  # [qty, unit cost | None]


def reference(trades: list[Trade], method: str) -> dict[str, Book]:
    """Realised gain and remaining lots per asset."""
    books: dict[str, Book] = {}
    for trade in trades:
        book = books.setdefault(trade.asset, Book())
        if trade.quantity > 0:
            unit = None if trade.value is None else trade.value / trade.quantity
            book.lots.append([trade.quantity, unit])
            if method == "average":
                book.lots = _pooled(book.lots)
            continue
        sold = -trade.quantity
        unit_price = None if trade.value is None else trade.value / sold
        if method == "fifo":
            left = sold
            while left > 0 and book.lots:
                qty, unit = book.lots[0]
                assert qty is not None
                take = min(qty, left)
                if unit is not None and unit_price is not None:
                    book.realized += (unit_price - unit) * take
                if take == qty:
                    book.lots.pop(0)
                else:
                    book.lots[0][0] = qty - take
                left -= take
        else:
            held = sum((lot[0] for lot in book.lots), Fraction(0))  # type: ignore[misc]
            take = min(sold, held)
            for lot in book.lots:
                qty, unit = lot
                assert qty is not None
                share = take * qty / held if held else Fraction(0)
                if unit is not None and unit_price is not None:
                    book.realized += (unit_price - unit) * share
                lot[0] = qty - share
            book.lots = [lot for lot in book.lots if lot[0]]
    return books


def _pooled(lots: list[list[Fraction | None]]) -> list[list[Fraction | None]]:
    """One known-cost lot at the average unit cost, one unknown-cost lot."""
    known = [(q, u) for q, u in lots if u is not None]
    unknown = sum((q for q, u in lots if u is None), Fraction(0))  # type: ignore[misc]
    pooled: list[list[Fraction | None]] = []
    quantity = sum((q for q, _ in known), Fraction(0))  # type: ignore[misc]
    if quantity:
        cost = sum((q * u for q, u in known), Fraction(0))  # type: ignore[operator]
        pooled.append([quantity, cost / quantity])
    if unknown:
        pooled.append([unknown, None])
    return pooled


def cost_basis(book: Book) -> Fraction:
    """Cost of the known-cost units held."""
    return sum((q * u for q, u in book.lots if u is not None), Fraction(0))  # type: ignore[operator]
