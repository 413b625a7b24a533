"""EVM address parsing: hex, length and EIP-55 checksum rules in one place."""

from __future__ import annotations

import re

from eth_utils.address import to_checksum_address

from chainfolio.core.domain import ChecksumAddress
from chainfolio.core.errors import InvalidInput

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_address(value: str) -> ChecksumAddress:
    """Return the EIP-55 form of `value`; reject bad hex, bad length or a wrong mixed-case checksum.

    All-lowercase and all-uppercase hex carry no checksum and are accepted and normalised.
    """
    if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value.strip()):
        raise InvalidInput(
            f"not an EVM address (want 0x followed by 40 hex digits): {value!r}",
            code="INVALID_ADDRESS",
        )
    text = value.strip()
    digits = text[2:]
    checksummed = to_checksum_address(text)
    mixed_case = digits != digits.lower() and digits != digits.upper()
    if mixed_case and checksummed != text:
        raise InvalidInput(
            f"address {text} fails its EIP-55 checksum (did you mean {checksummed}?)",
            code="INVALID_ADDRESS",
        )
    return ChecksumAddress(checksummed)


def is_checksummed(value: str) -> bool:
    """True when `value` is already written in its exact EIP-55 form."""
    return bool(_HEX_ADDRESS.fullmatch(value)) and to_checksum_address(value) == value
