"""Token metadata read on chain once: `symbol()`, `name()` and `decimals()` of any ERC-20.

Real tokens disagree on types: most return `string`, some (MKR, SAI) `bytes32`; a few have no
`decimals()` or one that reverts. Every answer is decoded defensively: a token whose decimals
cannot be read is *unreadable*, with the reason — its balance is then unknown, never scaled
by a guessed zero. One Multicall3 batch reads all three for many tokens at one block.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

from chainfolio.core.domain import ChecksumAddress
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.config import TokenConfig
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.multicall import DECIMALS, Call, CallResult, selector

SYMBOL = selector("symbol()")
NAME = selector("name()")
MAX_TEXT = 64
"""Longer names are cut: a token's name is not a place for a paragraph (spam puts one there)."""


@dataclass(frozen=True, slots=True)
class TokenMetadata:
    """What a token says about itself; `unreadable` is why its amounts cannot be scaled."""

    chain_id: int
    address: ChecksumAddress
    symbol: str | None
    name: str | None
    decimals: int | None
    unreadable: str | None = None

    @property
    def display_symbol(self) -> str:
        """The symbol, or a short form of the address when the token has none."""
        return self.symbol or f"{self.address[:6]}…{self.address[-4:]}"


def _clean(text: str) -> str | None:
    kept = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    return kept[:MAX_TEXT] or None


def decode_text(result: CallResult) -> str | None:
    """A `string` or `bytes32` answer as text; None when the call failed or returned neither."""
    if not result.success or not result.data:
        return None
    data = result.data
    if len(data) == 32:  # bytes32: the text, right-padded with zero bytes
        return _clean(data.rstrip(b"\0").decode("utf-8", errors="replace"))
    try:
        (value,) = decode(["string"], data)
    except (DecodingError, OverflowError, ValueError):
        return None
    return _clean(str(value))


def decode_decimals(result: CallResult) -> tuple[int | None, str | None]:
    """(decimals, None), or (None, why it cannot be used)."""
    if not result.success:
        return None, f"decimals() reverted: {result.error or 'no reason'}"
    if len(result.data) < 32:
        return None, "decimals() returned nothing (no such function)"
    value = int.from_bytes(result.data[:32], "big")
    if value > 255:
        return None, f"decimals() returned {value}, not a uint8"
    return value, None


async def read_metadata(
    reader: EvmChainReader, addresses: Sequence[str]
) -> dict[ChecksumAddress, TokenMetadata]:
    """Symbol, name and decimals of each token, in one Multicall3 batch at the latest block."""
    tokens = list(dict.fromkeys(parse_address(a) for a in addresses))
    if not tokens:
        return {}
    calls = [Call(t, function) for t in tokens for function in (SYMBOL, NAME, DECIMALS)]
    _, results = await reader.call_at_latest(calls)
    found: dict[ChecksumAddress, TokenMetadata] = {}
    for index, token in enumerate(tokens):
        symbol, name, decimals = results[3 * index : 3 * index + 3]
        value, reason = decode_decimals(decimals)
        if not (symbol.success or name.success or decimals.success):
            reason = "not an ERC-20: symbol(), name() and decimals() all fail"
        found[token] = TokenMetadata(
            chain_id=reader.chain.chain_id,
            address=token,
            symbol=decode_text(symbol),
            name=decode_text(name),
            decimals=value,
            unreadable=reason,
        )
    return found


def as_token(meta: TokenMetadata, *, price_key: str) -> TokenConfig:
    """A discovered token as the reader reads it. Unreadable decimals stay None: the reader
    asks again and reports the holding unknown with the reason, never scaled by zero."""
    return TokenConfig(
        address=meta.address,
        symbol=meta.display_symbol,
        decimals=meta.decimals,
        price_symbol=price_key,
    )
