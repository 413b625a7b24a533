"""Address parsing: hex, length and EIP-55 rules."""

from __future__ import annotations

import pytest

from chainfolio.core.errors import InvalidInput
from chainfolio.fetchers.addresses import is_checksummed, parse_address

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def test_checksummed_address_is_returned_unchanged() -> None:
    assert parse_address(USDC) == USDC


@pytest.mark.parametrize("variant", [USDC.lower(), "0x" + USDC[2:].upper(), f"  {USDC}  "])
def test_lowercase_uppercase_and_padded_forms_are_normalised(variant: str) -> None:
    assert parse_address(variant) == USDC


@pytest.mark.parametrize(
    "bad",
    [
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB4",  # 39 hex digits
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB488",  # 41 hex digits
        "A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",  # no 0x
        "0xG0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",  # not hex
        "0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48",  # wrong mixed-case checksum
        "",
        "vitalik.eth",
    ],
)
def test_invalid_addresses_raise_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_address(bad)
    assert raised.value.code == "INVALID_ADDRESS"


def test_checksum_error_suggests_the_right_form() -> None:
    with pytest.raises(InvalidInput, match=USDC):
        parse_address("0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48")


def test_is_checksummed_is_strict() -> None:
    assert is_checksummed(USDC)
    assert not is_checksummed(USDC.lower())
