"""Deterministic devnet wallets: the same seed always yields the same keys and addresses."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from eth_account import Account
from eth_utils.crypto import keccak

DEFAULT_SEED = "chainfolio-devnet"


@dataclass(frozen=True)
class Wallet:
    """A devnet wallet: EIP-55 address and its 0x-prefixed private key."""

    address: str
    private_key: str


@functools.cache
def _wallet(seed: str, index: int) -> Wallet:
    key = keccak(text=f"{seed}:{index}")
    return Wallet(address=Account.from_key(key).address, private_key="0x" + key.hex())


def devnet_wallets(count: int, *, seed: str = DEFAULT_SEED) -> list[Wallet]:
    """The first `count` wallets derived from `seed` (private key = keccak256("seed:index"))."""
    return [_wallet(seed, index) for index in range(count)]
