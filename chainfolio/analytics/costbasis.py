"""Cost basis and realised / unrealised profit and loss from a history of asset movements.

Pure: movements in (exact Decimals), lots and gains out. Two methods, both computed per asset
across all of a user's wallets:

* average cost (`AVERAGE`): every unit held costs the pool's cost divided by its quantity; a
  disposal takes that average, and the pool's average is unchanged by it;
* first in, first out (`FIFO`): a disposal consumes the oldest lots first.

What a movement is for cost basis (`classify`):

* `external` in / out: an acquisition / a disposal at its value;
* `opening`: what a wallet held when it was first seen, acquired at that time's price;
* `own` (between the user's wallets), `wrap` (ETH <-> WETH) and `position` (a vault or lending
  deposit or withdrawal): not a disposal, the cost basis is kept (assets are keyed by the
  symbol that prices them, so WETH and ETH, or ETH on two chains, are one asset);
* a swap — one transaction whose external movements are out of exactly one asset and into
  exactly one other — disposes of the first and acquires the second at the same value (the
  value of the side given up; the side received when that one is unvalued).

Unvalued movements are never valued at zero. An acquisition without a value is a lot of
unknown cost; a disposal's gain is known for the part taken from lots of known cost (average
cost: the pool's unknown-cost share is taken pro rata) and only when its proceeds are known;
whatever is not known is counted and flagged. Disposing of more than the history acquired
(e.g. gas paid from units received before the wallet was tracked) takes the excess at unknown
cost.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, localcontext
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

# Wide enough for uint256 amounts times 18-decimal prices: sums stay exact, the divisions of
# average cost and partial lots are correct to 80 significant digits.
_EXACT = Context(prec=80)
ZERO = Decimal(0)


class Method(StrEnum):
    """A cost-basis method."""

    AVERAGE = "average"
    FIFO = "fifo"


class Kind(StrEnum):
    """Why a wallet's balance of an asset moved."""

    EXTERNAL = "external"
    OPENING = "opening"
    OWN = "own"
    WRAP = "wrap"
    POSITION = "position"


KEEPS_BASIS = frozenset({Kind.OWN, Kind.WRAP, Kind.POSITION})


class Movement(NamedTuple):
    """One wallet's balance of one asset changing, as the caller stored it (a NamedTuple:
    built ten thousand at a time per request, twice as fast as a frozen dataclass)."""

    ref: int
    """The caller's handle for this movement (results name it)."""
    time: datetime
    asset: str
    """The symbol that prices it: WETH and ETH are one asset."""
    quantity: Decimal
    """Signed whole units: + in, - out."""
    value: Decimal | None
    """Unsigned value at its time (None: unvalued)."""
    kind: Kind
    tx: str | None = None


class Side(StrEnum):
    """Acquisition or disposal."""

    ACQUIRE = "acquire"
    DISPOSE = "dispose"


class Event(NamedTuple):
    """An acquisition or disposal that changes cost basis."""

    ref: int
    time: datetime
    asset: str
    side: Side
    quantity: Decimal
    """Positive."""
    value: Decimal | None
    swap: bool = False


def classify(movements: Iterable[Movement]) -> list[Event]:
    """The acquisitions and disposals among `movements` (time order kept; swaps recognised)."""
    with localcontext(_EXACT):
        return _classify(movements)


_ORDER = attrgetter("time", "ref")


def _classify(movements: Iterable[Movement]) -> list[Event]:
    ordered = sorted(movements, key=_ORDER)
    by_tx: dict[str, list[Movement]] = defaultdict(list)
    external = Kind.EXTERNAL
    for m in ordered:
        if m.kind is external and m.tx is not None:
            by_tx[m.tx].append(m)
    swap_values: dict[int, Decimal | None] = {}
    for legs in by_tx.values():
        if len(legs) < 2:  # most transactions: one leg, no swap
            continue
        net: dict[str, Decimal] = defaultdict(Decimal)
        for leg in legs:
            net[leg.asset] += leg.quantity
        outs = [a for a, q in net.items() if q < 0]
        ins = [a for a, q in net.items() if q > 0]
        if len(outs) != 1 or len(ins) != 1:
            continue
        given = [m for m in legs if m.asset == outs[0]]
        received = [m for m in legs if m.asset == ins[0]]
        value = _total(given)
        if value is None:
            value = _total(received)
        for m in given + received:
            swap_values[m.ref] = value
    events: list[Event] = []
    acquire, dispose, opening = Side.ACQUIRE, Side.DISPOSE, Kind.OPENING
    for m in ordered:
        # identity, not `in KEEPS_BASIS`: an enum member hashes in Python (10 K per request)
        if (m.kind is not external and m.kind is not opening) or not m.quantity:
            continue
        side = acquire if m.quantity > 0 else dispose
        swapped = m.ref in swap_values
        value = _share(swap_values[m.ref], m, by_tx[m.tx or ""]) if swapped else m.value
        events.append(Event(m.ref, m.time, m.asset, side, abs(m.quantity), value, swapped))
    return events


def _total(legs: Sequence[Movement]) -> Decimal | None:
    if any(m.value is None for m in legs):
        return None
    return sum((m.value for m in legs if m.value is not None), ZERO)


def _share(value: Decimal | None, leg: Movement, legs: Sequence[Movement]) -> Decimal | None:
    """A swap leg's part of the swap's value (legs of one asset share it by quantity)."""
    if value is None:
        return None
    same = [m for m in legs if m.asset == leg.asset]
    if len(same) == 1:
        return value
    total = sum((abs(m.quantity) for m in same), ZERO)
    return value * abs(leg.quantity) / total


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
        with localcontext(_EXACT):
            return sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def known_quantity(self) -> Decimal:
        """Units held whose cost is known."""
        with localcontext(_EXACT):
            return sum((lot.quantity for lot in self.lots if lot.cost is not None), ZERO)

    @property
    def cost_basis(self) -> Decimal:
        """Cost of the units held whose cost is known."""
        with localcontext(_EXACT):
            return sum((lot.cost for lot in self.lots if lot.cost is not None), ZERO)

    @property
    def average_cost(self) -> Decimal | None:
        """Cost per unit held (over the units of known cost); None when none is known."""
        known = self.known_quantity
        with localcontext(_EXACT):
            return self.cost_basis / known if known > 0 else None

    def realized(self, start: datetime | None = None, end: datetime | None = None) -> Decimal:
        """Known gains of the disposals with start < time <= end."""
        with localcontext(_EXACT):
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


class CostBasis:
    """An incremental run of one method: feed movements oldest first, every leg of a
    transaction in the same call (a swap is recognised within one call). With `keep=False`
    the ledgers keep no per-disposal history (a streamed export: memory stays flat)."""

    def __init__(self, method: Method, *, keep: bool = True) -> None:
        self.method = method
        self._keep = keep
        self._books: dict[str, _Book] = {}

    def add(self, movements: Iterable[Movement]) -> dict[int, Disposal]:
        """Run `movements`; the disposals they made, by movement ref."""
        made: dict[int, Disposal] = {}
        books, acquire = self._books, Side.ACQUIRE
        with localcontext(_EXACT):
            for event in _classify(movements):
                book = books.get(event.asset)
                if book is None:
                    kind = _Fifo if self.method is Method.FIFO else _Pool
                    book = books[event.asset] = kind(event.asset, keep=self._keep)
                if event.value is None:
                    book.ledger.unvalued += 1
                if event.side is acquire:
                    book.acquire(event)
                else:
                    disposal = book.dispose(event)
                    made[disposal.ref] = disposal
        return made

    def ledgers(self) -> dict[str, AssetLedger]:
        """Every asset's ledger as of the movements fed so far."""
        return {asset: book.finish() for asset, book in self._books.items()}


class _Book:
    def __init__(self, asset: str, *, keep: bool) -> None:
        self.ledger = AssetLedger(asset)
        self.keep = keep

    def acquire(self, event: Event) -> None:
        raise NotImplementedError

    def dispose(self, event: Event) -> Disposal:
        raise NotImplementedError

    def finish(self) -> AssetLedger:
        return self.ledger

    def _record(
        self, event: Event, known_qty: Decimal, known_cost: Decimal, unknown_qty: Decimal
    ) -> Disposal:
        gain = cost = None
        if known_qty > 0:
            cost = known_cost
            if event.value is not None:
                proceeds = (event.value * known_qty) / event.quantity
                gain = proceeds - known_cost
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
        if self.keep:
            self.ledger.disposals.append(disposal)
        return disposal


@dataclass(slots=True)
class _OpenLot:
    quantity: Decimal
    cost: Decimal | None
    time: datetime
    ref: int


class _Fifo(_Book):
    def __init__(self, asset: str, *, keep: bool) -> None:
        super().__init__(asset, keep=keep)
        self.queue: deque[_OpenLot] = deque()

    def acquire(self, event: Event) -> None:
        self.queue.append(_OpenLot(event.quantity, event.value, event.time, event.ref))
        if self.keep:
            self.ledger.acquired_cost[event.ref] = event.value

    def dispose(self, event: Event) -> Disposal:
        left = event.quantity
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
        return self._record(event, known_qty, known_cost, (unknown_qty + left))

    def finish(self) -> AssetLedger:
        asset = self.ledger.asset
        self.ledger.lots = [Lot(asset, o.time, o.quantity, o.cost, o.ref) for o in self.queue]
        return self.ledger


class _Pool(_Book):
    def __init__(self, asset: str, *, keep: bool) -> None:
        super().__init__(asset, keep=keep)
        self.known_qty = self.cost = self.unknown_qty = ZERO
        self.since: datetime | None = None
        self.first_ref = -1

    def acquire(self, event: Event) -> None:
        if self.since is None:
            self.since, self.first_ref = event.time, event.ref
        if event.value is None:
            self.unknown_qty = self.unknown_qty + event.quantity
        else:
            self.known_qty = self.known_qty + event.quantity
            self.cost = self.cost + event.value
        if self.keep:
            self.ledger.acquired_cost[event.ref] = event.value

    def dispose(self, event: Event) -> Disposal:
        held = self.known_qty + self.unknown_qty
        taken = min(event.quantity, held)
        excess = event.quantity - taken
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
            self.cost, self.since = ZERO, None
        return self._record(event, known_qty, known_cost, (unknown_qty + excess))

    def finish(self) -> AssetLedger:
        lots = []
        if self.since is not None and self.known_qty > 0:
            lots.append(
                Lot(self.ledger.asset, self.since, self.known_qty, self.cost, self.first_ref)
            )
        if self.since is not None and self.unknown_qty > 0:
            lots.append(Lot(self.ledger.asset, self.since, self.unknown_qty, None, self.first_ref))
        self.ledger.lots = lots
        return self.ledger


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
    ledger: AssetLedger,
    *,
    held: Decimal | None = None,
    value: Decimal | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> AssetPnl:
    """Cost basis and unrealised P&L of `held` units worth `value` now, at the ledger's average
    cost of the units held (the history's own quantity when `held` is None); realised P&L of
    the disposals in (start, end]."""
    with localcontext(_EXACT):
        return _asset_pnl(ledger, held, value, start, end)


def _asset_pnl(
    ledger: AssetLedger,
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
        ledger.realized(start, end),
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
