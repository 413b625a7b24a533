"""Cost-basis methods: the units of one asset held, and what a disposal takes of them.

* average cost (`Method.AVERAGE`, `PoolBook`): every unit held costs the pool's cost divided
  by its quantity; a disposal takes that average, and the pool's average is unchanged by it;
* first in, first out (`Method.FIFO`, `FifoBook`): a disposal consumes the oldest lots first.

Units of unknown cost (acquired unvalued, or disposed of beyond what the history acquired)
are tracked beside the known ones, never valued at zero. Pure, exact Decimals in the `EXACT`
context; `chainfolio.analytics.costbasis` runs histories through these books.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, localcontext
from enum import StrEnum

# Wide enough for uint256 amounts times 18-decimal prices: sums stay exact, the divisions of
# average cost and partial lots are correct to 80 significant digits.
EXACT = Context(prec=80)
ZERO = Decimal(0)


class Method(StrEnum):
    """A cost-basis method."""

    AVERAGE = "average"
    FIFO = "fifo"


@dataclass(frozen=True, slots=True)
class Lot:
    """Units acquired together, still held (FIFO), or the average-cost pool as one lot."""

    asset: str
    acquired: datetime
    quantity: Decimal
    cost: Decimal | None
    """None: acquired unvalued."""
    ref: int


@dataclass(frozen=True, slots=True)
class Disposal:
    """What one disposal realised."""

    ref: int
    time: datetime
    asset: str
    quantity: Decimal
    proceeds: Decimal | None
    cost_basis: Decimal | None
    """Cost of the units of known cost it took (None when it took none)."""
    gain: Decimal | None
    """Proceeds of those units minus their cost (None when proceeds are unknown)."""
    unknown_quantity: Decimal
    """Units taken at unknown cost (unvalued lots, or more than the history acquired)."""
    swap: bool = False

    @property
    def complete(self) -> bool:
        """Whether the gain covers the whole disposal."""
        return self.gain is not None and self.unknown_quantity == 0


@dataclass(slots=True)
class AssetLedger:
    """One asset's state after the whole history."""

    asset: str
    lots: list[Lot] = field(default_factory=list)
    disposals: list[Disposal] = field(default_factory=list)
    acquired_cost: dict[int, Decimal | None] = field(default_factory=dict)
    """Per acquisition ref: the cost it entered with."""
    unvalued: int = 0
    """Acquisitions and disposals without a value."""

    @property
    def quantity(self) -> Decimal:
        """Units held, by the history."""
        with localcontext(EXACT):
            return sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def known_quantity(self) -> Decimal:
        """Units held whose cost is known."""
        with localcontext(EXACT):
            return sum((lot.quantity for lot in self.lots if lot.cost is not None), ZERO)

    @property
    def cost_basis(self) -> Decimal:
        """Cost of the units held whose cost is known."""
        with localcontext(EXACT):
            return sum((lot.cost for lot in self.lots if lot.cost is not None), ZERO)

    @property
    def average_cost(self) -> Decimal | None:
        """Cost per unit held (over the units of known cost); None when none is known."""
        known = self.known_quantity
        with localcontext(EXACT):
            return self.cost_basis / known if known > 0 else None

    def realized(self, start: datetime | None = None, end: datetime | None = None) -> Decimal:
        """Known gains of the disposals with start < time <= end."""
        with localcontext(EXACT):
            return sum(
                (
                    d.gain
                    for d in self.disposals
                    if d.gain is not None
                    and (start is None or d.time > start)
                    and (end is None or d.time <= end)
                ),
                ZERO,
            )


def disposal_gain(
    quantity: Decimal, value: Decimal | None, known_qty: Decimal, known_cost: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """A disposal's cost basis and gain from what it took of known cost."""
    if not known_qty > 0:
        return None, None
    if value is None:
        return known_cost, None
    return known_cost, (value * known_qty) / quantity - known_cost


class Book:
    """One asset's open units under a method: `acquire` adds, `take` removes the units a
    disposal takes and says how many of them were of known cost, at what cost, and how many
    of unknown cost (including more than the history acquired). Times may be None (a
    `summarize` has none); only `finish` reads them."""

    def __init__(self, asset: str) -> None:
        self.ledger = AssetLedger(asset)

    def acquire(
        self, ref: int, time: datetime | None, quantity: Decimal, value: Decimal | None
    ) -> None:
        raise NotImplementedError

    def take(self, quantity: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        raise NotImplementedError

    def open_lots(self) -> list[tuple[datetime | None, Decimal, Decimal | None, int]]:
        """(acquired, quantity, cost, ref) of the units held, oldest first."""
        raise NotImplementedError

    def finish(self) -> AssetLedger:
        asset = self.ledger.asset
        self.ledger.lots = [
            Lot(asset, _dated(time), quantity, cost, ref)
            for time, quantity, cost, ref in self.open_lots()
        ]
        return self.ledger


def _dated(time: datetime | None) -> datetime:
    if time is None:
        raise ValueError("lots of a history given without times have no dates")
    return time


@dataclass(slots=True)
class _OpenLot:
    quantity: Decimal
    cost: Decimal | None
    time: datetime | None
    ref: int


class FifoBook(Book):
    def __init__(self, asset: str) -> None:
        super().__init__(asset)
        self.queue: deque[_OpenLot] = deque()

    def acquire(
        self, ref: int, time: datetime | None, quantity: Decimal, value: Decimal | None
    ) -> None:
        self.queue.append(_OpenLot(quantity, value, time, ref))

    def take(self, quantity: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        left = quantity
        known_qty = known_cost = unknown_qty = ZERO
        while left > 0 and self.queue:
            lot = self.queue[0]
            take = min(lot.quantity, left)
            if lot.cost is None:
                unknown_qty = unknown_qty + take
            else:
                part = lot.cost
                if take < lot.quantity:
                    part = (lot.cost * take) / lot.quantity
                known_qty = known_qty + take
                known_cost = known_cost + part
                lot.cost = lot.cost - part
            lot.quantity = lot.quantity - take
            if lot.quantity == 0:
                self.queue.popleft()
            left = left - take
        return known_qty, known_cost, unknown_qty + left

    def open_lots(self) -> list[tuple[datetime | None, Decimal, Decimal | None, int]]:
        return [(o.time, o.quantity, o.cost, o.ref) for o in self.queue]


class PoolBook(Book):
    def __init__(self, asset: str) -> None:
        super().__init__(asset)
        self.known_qty = self.cost = self.unknown_qty = ZERO
        self.held = False
        self.since: datetime | None = None
        self.first_ref = -1

    def acquire(
        self, ref: int, time: datetime | None, quantity: Decimal, value: Decimal | None
    ) -> None:
        if not self.held:
            self.held, self.since, self.first_ref = True, time, ref
        if value is None:
            self.unknown_qty = self.unknown_qty + quantity
        else:
            self.known_qty = self.known_qty + quantity
            self.cost = self.cost + value

    def take(self, quantity: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        held = self.known_qty + self.unknown_qty
        taken = min(quantity, held)
        excess = quantity - taken
        known_qty = known_cost = unknown_qty = ZERO
        if taken > 0:
            # Every unit is alike: the taken units are known and unknown in the pool's shares.
            known_qty = (taken * self.known_qty) / held
            unknown_qty = taken - known_qty
            if taken == held:
                known_qty, unknown_qty, known_cost = self.known_qty, self.unknown_qty, self.cost
            elif self.known_qty == 0:
                known_cost = ZERO
            else:
                known_cost = (self.cost * known_qty) / self.known_qty
            self.known_qty = self.known_qty - known_qty
            self.unknown_qty = self.unknown_qty - unknown_qty
            self.cost = self.cost - known_cost
        if self.known_qty == 0 and self.unknown_qty == 0:
            self.cost, self.held, self.since = ZERO, False, None
        return known_qty, known_cost, unknown_qty + excess

    def open_lots(self) -> list[tuple[datetime | None, Decimal, Decimal | None, int]]:
        lots: list[tuple[datetime | None, Decimal, Decimal | None, int]] = []
        if self.held and self.known_qty > 0:
            lots.append((self.since, self.known_qty, self.cost, self.first_ref))
        if self.held and self.unknown_qty > 0:
            lots.append((self.since, self.unknown_qty, None, self.first_ref))
        return lots


def book_of(method: Method) -> Callable[[str], Book]:
    """The book a method keeps an asset in."""
    return FifoBook if method is Method.FIFO else PoolBook
