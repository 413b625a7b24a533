"""Display currencies: every money figure of the API can be asked in one of these."""

from __future__ import annotations

from dataclasses import dataclass

from chainfolio.core.errors import InvalidInput

USD = "USD"


@dataclass(frozen=True, slots=True)
class Currency:
    """A display currency and the stored price (USD per unit) that converts to it."""

    code: str
    price_symbol: str
    """The price key its Chainlink feed is configured and stored under (EUR/USD feed: "EUR")."""
    crypto: bool = False


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("USD", "USD"),
        Currency("EUR", "EUR"),
        Currency("GBP", "GBP"),
        Currency("CHF", "CHF"),
        Currency("JPY", "JPY"),
        Currency("ETH", "ETH", crypto=True),
        Currency("BTC", "BTC", crypto=True),
    )
}

RATE_SYMBOLS = frozenset(c.price_symbol for c in CURRENCIES.values() if c.code != USD)
"""Price keys a chain reads whenever it configures a feed for them (conversions need them)."""


def parse_currency(value: str | None) -> str:
    """A supported currency code (USD when none is given); INVALID_CURRENCY otherwise."""
    if value is None or value == "":
        return USD
    code = value.upper()
    if code not in CURRENCIES:
        raise InvalidInput(
            f"unknown currency {value!r}: use one of {', '.join(CURRENCIES)}",
            code="INVALID_CURRENCY",
        )
    return code
