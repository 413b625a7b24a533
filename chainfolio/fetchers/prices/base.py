"""The `PriceSource` protocol and the price keys sources answer to."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Protocol

from eth_utils.address import is_hex_address, to_checksum_address

from chainfolio.core.domain import Price

USD = "USD"


def utcnow() -> datetime:
    """The default clock of the sources (ages of answers)."""
    return datetime.now(UTC)


class PriceSource(Protocol):
    """Anything that prices many symbols in USD in one call."""

    name: str

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for the symbols it can price now; unknown or unusable ones are absent."""
        ...


def address_key(chain_id: int, address: str) -> str:
    """The price key of a token known by its address only (listed or discovered): no source
    answers it by symbol — a look-alike symbol never borrows another token's feed."""
    return f"{chain_id}:{address}"


def parse_address_key(key: str) -> tuple[int, str] | None:
    """(chain id, EIP-55 address) of an `address_key`; None for a symbol."""
    chain, sep, address = key.partition(":")
    if not sep or not chain.isdigit() or not is_hex_address(address):
        return None
    return int(chain), to_checksum_address(address)
