"""Cost basis: hand-computed examples, then random histories against a lot-loop reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainfolio.analytics.costbasis import (
    Kind,
    Method,
    Movement,
    asset_pnl,
    classify,
    disposals_by_ref,
    run,
    summarize,
)
from tests.analytics.costbasis_reference import Trade, cost_basis, reference

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def _moves(
    *rows: tuple[str, str, str | None, Kind] | tuple[str, str, str | None, Kind, str],
) -> list[Movement]:
    """(asset, signed quantity, value, kind[, tx]) one hour apart."""
    return [
        Movement(
            i,
            T0 + timedelta(hours=i),
            row[0],
            D(row[1]),
            None if row[2] is None else D(row[2]),
            row[3],
            row[4] if len(row) > 4 else f"tx{i}",  # type: ignore[misc]
        )
        for i, row in enumerate(rows)
    ]


E = Kind.EXTERNAL
BUY_BUY_SELL = _moves(("ETH", "1", "2000", E), ("ETH", "1", "3000", E), ("ETH", "-1", "4000", E))


def test_average_cost_realises_against_the_average() -> None:
    book = run(BUY_BUY_SELL, Method.AVERAGE)["ETH"]
    assert book.realized() == 1_500  # 4,000 - (2,000 + 3,000) / 2
    assert (book.quantity, book.cost_basis, book.average_cost) == (1, 2_500, 2_500)
    pnl = asset_pnl(book, held=D(1), value=D(4_000))
    assert (pnl.unrealized, pnl.unrealized_percent) == (1_500, 60)


def test_fifo_realises_against_the_oldest_lot() -> None:
    book = run(BUY_BUY_SELL, Method.FIFO)["ETH"]
    assert book.realized() == 2_000  # 4,000 - 2,000
    assert [(lot.quantity, lot.cost) for lot in book.lots] == [(1, 3_000)]
    assert asset_pnl(book, held=D(1), value=D(4_000)).unrealized == 1_000


def test_partial_sells() -> None:
    moves = _moves(
        ("ETH", "2", "4000", E),  # 2,000 each
        ("ETH", "1", "3000", E),
        ("ETH", "-0.5", "2000", E),  # at 4,000
        ("ETH", "-2", "10000", E),  # at 5,000
    )
    fifo = run(moves, Method.FIFO)["ETH"]
    # 0.5 x (4,000 - 2,000) = 1,000; then 1.5 x (5,000 - 2,000) + 0.5 x (5,000 - 3,000) = 5,500
    assert [d.gain for d in fifo.disposals] == [1_000, 5_500]
    assert [(lot.quantity, lot.cost) for lot in fifo.lots] == [(D("0.5"), 1_500)]
    avg = run(moves, Method.AVERAGE)["ETH"]
    # average 7,000 / 3; 0.5 x (4,000 - 7,000/3) = 833.33…; 2 x (5,000 - 7,000/3) = 5,333.33…
    expected = [Fraction(1, 2) * (4000 - Fraction(7000, 3)), 2 * (5000 - Fraction(7000, 3))]
    for disposal, want in zip(avg.disposals, expected, strict=True):
        assert disposal.gain is not None
        assert abs(Fraction(disposal.gain) - want) < Fraction(1, 10**60)
    assert avg.quantity == D("0.5")


def test_own_wallet_moves_wraps_and_deposits_keep_the_basis() -> None:
    plain = _moves(("ETH", "2", "4000", E), ("ETH", "-1", "3000", E))
    busy = _moves(
        ("ETH", "2", "4000", E),
        ("ETH", "-1", "3100", Kind.OWN),  # to another wallet of the user…
        ("ETH", "1", "3100", Kind.OWN),  # …which received it
        ("ETH", "-1", "3200", Kind.WRAP),  # ETH -> WETH (one asset: priced by ETH)
        ("ETH", "-1", "3300", Kind.POSITION),  # into the vault
        ("ETH", "1", "3300", Kind.POSITION),  # and back
        ("ETH", "-1", "3000", E),
    )
    for method in Method:
        a, b = run(plain, method)["ETH"], run(busy, method)["ETH"]
        assert (a.realized(), a.cost_basis, a.quantity) == (b.realized(), b.cost_basis, b.quantity)
        assert b.realized() == 1_000


def test_a_swap_disposes_and_acquires_at_the_same_value() -> None:
    moves = _moves(
        ("ETH", "1", "2000", E),
        ("ETH", "-1", "3000", E, "0xswap"),  # 1 ETH (worth 3,000) out…
        ("USDC", "2990", "2990", E, "0xswap"),  # …2,990 USDC in, worth 2,990 by its own price
    )
    events = classify(moves)
    assert [(e.asset, e.side.value, e.value, e.swap) for e in events] == [
        ("ETH", "acquire", 2_000, False),
        ("ETH", "dispose", 3_000, True),
        ("USDC", "acquire", 3_000, True),  # the value given up
    ]
    books = run(moves, Method.FIFO)
    assert books["ETH"].realized() == 1_000
    assert books["USDC"].cost_basis == 3_000


def test_a_swap_of_an_unvalued_asset_takes_the_value_received() -> None:
    moves = _moves(("XYZ", "-5", None, E, "0xs"), ("USDC", "100", "100", E, "0xs"))
    assert [e.value for e in classify(moves)] == [100, 100]


def test_an_unvalued_flow_is_counted_never_zero() -> None:
    moves = _moves(
        ("ETH", "1", "2000", E),
        ("ETH", "1", None, E),  # an airdrop nobody priced
        ("ETH", "-1", "4000", E),
        ("ETH", "-0.5", None, E),  # sold at an unknown price
    )
    fifo = run(moves, Method.FIFO)["ETH"]
    first, second = fifo.disposals
    assert (first.gain, first.complete) == (2_000, True)
    assert (second.gain, second.unknown_quantity, second.complete) == (None, D("0.5"), False)
    assert fifo.unvalued == 2
    assert fifo.realized() == 2_000
    avg = run(moves, Method.AVERAGE)["ETH"]
    one = avg.disposals[0]
    # half of what is held has a known cost: 0.5 ETH of cost 1,000 sold for 2,000
    assert (one.gain, one.cost_basis, one.unknown_quantity) == (1_000, 1_000, D("0.5"))
    assert avg.average_cost == 2_000


def test_selling_more_than_the_history_acquired() -> None:
    moves = _moves(("ETH", "1", "2000", E), ("ETH", "-1.5", "6000", E))
    for method in Method:
        (disposal,) = run(moves, method)["ETH"].disposals
        assert (disposal.gain, disposal.unknown_quantity) == (2_000, D("0.5"))


def test_results_name_their_movements() -> None:
    books = run(BUY_BUY_SELL, Method.FIFO)
    assert set(disposals_by_ref(books)) == {2}
    assert books["ETH"].acquired_cost == {0: 2_000, 1: 3_000}


def test_realised_in_a_period() -> None:
    book = run(BUY_BUY_SELL, Method.AVERAGE)["ETH"]
    assert book.realized(T0 + timedelta(hours=2), None) == 0
    assert book.realized(T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == 1_500


# --- random histories against the reference -------------------------------------------------

quantities = st.integers(1, 10**8).map(lambda n: Decimal(n).scaleb(-6))
values = st.one_of(st.none(), st.integers(0, 10**10).map(lambda n: Decimal(n).scaleb(-4)))


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Decimal, Decimal | None]]:
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        asset = draw(st.sampled_from(["ETH", "BTC", "USDC"]))
        sign = draw(st.sampled_from([1, 1, -1]))
        rows.append((asset, sign * draw(quantities), draw(values)))
    return rows


@settings(max_examples=200, deadline=None)
@given(histories(), st.sampled_from(list(Method)))
def test_random_histories_match_the_lot_loop(
    rows: list[tuple[str, Decimal, Decimal | None]], method: Method
) -> None:
    books = run(
        [
            Movement(i, T0 + timedelta(minutes=i), a, q, v, Kind.EXTERNAL, f"t{i}")
            for i, (a, q, v) in enumerate(rows)
        ],
        method,
    )
    expected = reference(
        [Trade(a, Fraction(q), None if v is None else Fraction(v)) for a, q, v in rows],
        method.value,
    )
    tolerance = Fraction(1, 10**50)
    for asset, book in expected.items():
        got = books[asset]
        assert abs(Fraction(got.realized()) - book.realized) <= tolerance
        assert abs(Fraction(got.cost_basis) - cost_basis(book)) <= tolerance
        assert (
            abs(Fraction(got.quantity) - sum((lot[0] for lot in book.lots), Fraction(0)))
            <= tolerance
        )  # type: ignore[misc]


@pytest.mark.parametrize("method", list(Method))
def test_exact_when_nothing_divides(method: Method) -> None:
    moves = _moves(
        ("ETH", "0.1", "200.1", E), ("ETH", "0.2", "600.2", E), ("ETH", "-0.3", "1200", E)
    )
    assert run(moves, method)["ETH"].realized() == D("399.7")


# --- the columnar fold against the per-movement run -----------------------------------------

kinds = st.sampled_from([Kind.EXTERNAL, Kind.EXTERNAL, Kind.EXTERNAL, Kind.OPENING, Kind.OWN])


@st.composite
def busy_histories(draw: st.DrawFn) -> list[Movement]:
    """Movements of every kind, some of zero quantity, some sharing a transaction (swaps,
    transactions that are not swaps, several legs of one asset), in time order."""
    moves = []
    for i in range(draw(st.integers(1, 40))):
        kind = draw(kinds)
        quantity = draw(st.sampled_from([1, 1, -1, 0])) * draw(quantities)
        tx = draw(st.sampled_from(["a", "b", "c", f"t{i}", f"t{i}", f"t{i}"]))
        asset = draw(st.sampled_from(["ETH", "BTC", "USDC"]))
        moves.append(
            Movement(i, T0 + timedelta(minutes=i), asset, quantity, draw(values), kind, tx)
        )
    return moves


@settings(max_examples=300, deadline=None)
@given(busy_histories(), st.sampled_from(list(Method)), st.integers(0, 40))
def test_summarize_answers_exactly_as_run(
    moves: list[Movement], method: Method, realized_from: int
) -> None:
    kept = [m for m in moves if m.kind in {Kind.EXTERNAL, Kind.OPENING}]
    totals = summarize(
        [m.asset for m in kept],
        [m.quantity for m in kept],
        [m.value for m in kept],
        [m.tx if m.kind is Kind.EXTERNAL else None for m in kept],
        method,
        realized_from=realized_from,
    )
    books = run(moves, method)
    assert set(totals) == set(books)
    # the disposals from index `realized_from` on are those after the one before it
    start = kept[min(realized_from, len(kept)) - 1].time if realized_from and kept else None
    for asset, book in books.items():
        got = totals[asset]
        assert (got.quantity, got.known_quantity, got.cost_basis) == (
            book.quantity,
            book.known_quantity,
            book.cost_basis,
        )
        assert got.average_cost == book.average_cost
        assert got.unvalued == book.unvalued
        assert got.incomplete == sum(not d.complete for d in book.disposals)
        assert got.realized == book.realized(start, None)
        now = asset_pnl(book, held=D(2), value=D(100), start=start)
        assert asset_pnl(got, held=D(2), value=D(100)) == now
