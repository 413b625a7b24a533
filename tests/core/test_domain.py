"""Money is exact: uint256 amounts times 18-decimal prices, and their sums, against integer
math (the reference: amount * price_units over 10**(decimals + 18), as a Fraction)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from chainfolio.core.domain import AssetKind, Category, Holding, Price, plain
from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.storage.holdings import StoredHolding

NOW = datetime(2026, 12, 3, tzinfo=UTC)
UINT256 = st.integers(min_value=0, max_value=2**256 - 1)
PRICE_UNITS = st.integers(min_value=0, max_value=10**30)  # up to 10**12 USD, 18 decimals
DECIMALS = st.integers(min_value=0, max_value=36)


def holding(amount: int, decimals: int, price_units: int, category: Category) -> Holding:
    return Holding(
        chain_id=1,
        wallet="0x" + "11" * 20,
        symbol="TKN",
        contract="0x" + "22" * 20,
        kind=AssetKind.ERC20,
        category=category,
        decimals=decimals,
        amount=amount,
        price=Price("TKN", Decimal(f"{price_units}E-18"), "test", NOW),  # exact
    )


def reference(amount: int, decimals: int, price_units: int, category: Category) -> Fraction:
    sign = -1 if category is Category.LOAN else 1
    return sign * Fraction(amount * price_units, 10 ** (decimals + 18))


@given(UINT256, DECIMALS, PRICE_UNITS, st.sampled_from([Category.WALLET, Category.LOAN]))
def test_value_is_exact_for_any_uint256_amount_and_18_decimal_price(
    amount: int, decimals: int, price_units: int, category: Category
) -> None:
    value = holding(amount, decimals, price_units, category).value_usd
    assert value is not None
    assert Fraction(value) == reference(amount, decimals, price_units, category)
    if value.is_zero():
        assert not plain(value).startswith("-")  # never a negative zero
    assert Fraction(Decimal(plain(value))) == Fraction(value)  # the wire form is exact too


@given(
    st.lists(
        st.tuples(UINT256, DECIMALS, PRICE_UNITS, st.sampled_from(list(Category))),
        min_size=1,
        max_size=12,
    )
)
def test_totals_are_exact_sums(rows: list[tuple[int, int, int, Category]]) -> None:
    stored = [StoredHolding(holding(*row), "ethereum", uuid.UUID(int=1), NOW) for row in rows]
    total, by_chain, by_asset, by_category = summarize_holdings(stored)
    expected = sum((reference(*row) for row in rows), Fraction(0))
    assert Fraction(total) == expected
    assert Fraction(by_chain[(1, "ethereum")]) == expected
    assert Fraction(by_asset["TKN"]) == expected
    for category in {row[3] for row in rows}:
        part = sum((reference(*r) for r in rows if r[3] is category), Fraction(0))
        assert Fraction(by_category[category.value]) == part


def test_the_issues_example_and_a_zero_loan() -> None:
    # 1.000000000000000001 x 1500.12345678: Decimal's default 28 digits were off by 2.2e-25
    value = holding(10**18 + 1, 18, 150012345678 * 10**10, Category.WALLET).value_usd
    assert value == Decimal("1500.12345678000000150012345678")
    zero_loan = holding(0, 18, 3000 * 10**18, Category.LOAN).value_usd
    assert zero_loan is not None
    assert zero_loan.is_zero()
    assert not zero_loan.is_signed()
    assert not plain(zero_loan).startswith("-")
