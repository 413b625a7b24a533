"""Acquisitions and disposals among a history of asset movements (what cost basis runs on).

What a movement is for cost basis (`classify`):

* `external` in / out: an acquisition / a disposal at its value;
* `opening`: what a wallet held when it was first seen, acquired at that time's price;
* `own` (between the user's wallets), `wrap` (ETH <-> WETH) and `position` (a vault or lending
  deposit or withdrawal): not a disposal, the cost basis is kept (assets are keyed by the
  symbol that prices them, so WETH and ETH, or ETH on two chains, are one asset);
* a swap — one transaction whose external movements are out of exactly one asset and into
  exactly one other — disposes of the first and acquires the second at the same value (the
  value of the side given up; the side received when that one is unvalued).

Pure: exact Decimals in, events out. Callers run it in a wide decimal context
(`chainfolio.analytics.costbasis`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

ZERO = Decimal(0)


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


class Leg(NamedTuple):
    """One external movement of a transaction with several (a swap candidate)."""

    ref: int
    asset: str
    quantity: Decimal
    value: Decimal | None


_ORDER = attrgetter("time", "ref")


def classify_movements(movements: Iterable[Movement]) -> list[Event]:
    """The acquisitions and disposals among `movements` (time order kept; swaps recognised)."""
    ordered = sorted(movements, key=_ORDER)
    external = Kind.EXTERNAL
    by_tx: dict[str, list[Leg]] = defaultdict(list)
    for m in ordered:
        if m.kind is external and m.tx is not None:
            by_tx[m.tx].append(Leg(m.ref, m.asset, m.quantity, m.value))
    swapped = swap_values(legs for legs in by_tx.values() if len(legs) > 1)
    events: list[Event] = []
    acquire, dispose, opening = Side.ACQUIRE, Side.DISPOSE, Kind.OPENING
    for m in ordered:
        # identity, not `in KEEPS_BASIS`: an enum member hashes in Python (10 K per request)
        if (m.kind is not external and m.kind is not opening) or not m.quantity:
            continue
        side = acquire if m.quantity > 0 else dispose
        if m.ref in swapped:
            events.append(
                Event(m.ref, m.time, m.asset, side, abs(m.quantity), swapped[m.ref], True)
            )
        else:
            events.append(Event(m.ref, m.time, m.asset, side, abs(m.quantity), m.value))
    return events


def swap_values(transactions: Iterable[Sequence[Leg]]) -> dict[int, Decimal | None]:
    """Per leg ref of the transactions that are swaps: the value it is acquired or disposed at
    (the swap's value; legs of one asset share it by quantity)."""
    values: dict[int, Decimal | None] = {}
    for legs in transactions:
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
        for same in (given, received):
            for m in same:
                values[m.ref] = _share(value, m, same)
    return values


def _total(legs: Sequence[Leg]) -> Decimal | None:
    if any(m.value is None for m in legs):
        return None
    return sum((m.value for m in legs if m.value is not None), ZERO)


def _share(value: Decimal | None, leg: Leg, same: Sequence[Leg]) -> Decimal | None:
    """A swap leg's part of the swap's value (legs of one asset share it by quantity)."""
    if value is None:
        return None
    if len(same) == 1:
        return value
    total = sum((abs(m.quantity) for m in same), ZERO)
    return value * abs(leg.quantity) / total
