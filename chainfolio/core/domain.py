"""Domain types shared by fetchers, storage, resolvers and the worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from enum import StrEnum
from typing import NewType

ChainId = NewType("ChainId", int)
ChecksumAddress = NewType("ChecksumAddress", str)

NATIVE = "native"
"""The `contract` value used for a chain's native coin."""


MONEY = Context(
    prec=400,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""The context of money arithmetic (`with localcontext(MONEY):`). Decimal's default keeps 28
significant digits; a uint256 amount has up to 78 and a price 18 decimals or more, so products
and sums of them are exact here (400 digits: any amount times any price, summed over holdings whose
magnitudes lie up to ~300 orders apart). Only division (percentages) ever rounds."""


def unsigned_zero(value: Decimal) -> Decimal:
    """`value`, with a negative zero (a zero loan times -1) made positive: `-0` is never shown."""
    return value.copy_abs() if value.is_zero() else value


def plain(value: Decimal) -> str:
    """An exact decimal string without an exponent: `10000`, not `1E+4`; never `-0`.

    PostgreSQL's binary `numeric` comes back from asyncpg with trailing zeros of whole numbers
    folded into an exponent (`10000` → `Decimal('1E+4')`); `str` would print that form.
    """
    text = format(value, "f")
    # a negative zero (the only "-" a zero prints) loses its sign; checked after formatting,
    # as the rare case: `plain` serialises every Decimal of every answer
    return text[1:] if text[0] == "-" and not value else text


class AssetKind(StrEnum):
    """What kind of on-chain thing an asset is."""

    NATIVE = "native"
    ERC20 = "erc20"
    ERC721 = "erc721"
    POSITION = "position"


class Category(StrEnum):
    """How a holding is used; LOAN holdings count negative in totals."""

    WALLET = "WALLET"
    STAKED = "STAKED"
    DEPOSIT = "DEPOSIT"
    LOAN = "LOAN"
    REWARD = "REWARD"
    NFT = "NFT"


@dataclass(frozen=True, slots=True)
class Price:
    """A USD price with where and when it was observed."""

    symbol: str
    usd: Decimal
    source: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Holding:
    """One asset held by one wallet on one chain, in exact base units.

    `amount is None` means unknown (call failed: `error` says why) — never zero.
    """

    chain_id: int
    wallet: str
    symbol: str
    contract: str
    kind: AssetKind
    category: Category
    decimals: int
    amount: int | None
    price: Price | None = None
    block_number: int | None = None
    error: str | None = None
    stale: bool = False
    observed_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def balance(self) -> Decimal | None:
        """Amount in whole units (exact)."""
        if self.amount is None:
            return None
        return balance_of(self.amount, self.decimals)

    @property
    def value_usd(self) -> Decimal | None:
        """Signed USD value (loans negative), exact; None when amount or price is unknown."""
        balance = self.balance
        if balance is None or self.price is None:
            return None
        return value_of(balance, self.price.usd, self.category)


def balance_of(amount: int, decimals: int) -> Decimal:
    """An amount in base units as whole units (exact): `Holding.balance`, for readers that
    keep stored rows as they are."""
    return MONEY.scaleb(Decimal(amount), -decimals)


def value_of(balance: Decimal, usd: Decimal, category: str) -> Decimal:
    """The signed USD value of a balance at a price (loans negative), exact:
    `Holding.value_usd`. `category` is a `Category` or its stored value."""
    value = MONEY.multiply(balance, usd)
    return unsigned_zero(MONEY.minus(value) if category == Category.LOAN else value)
