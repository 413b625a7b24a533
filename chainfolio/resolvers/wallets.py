"""Adding, listing and removing tracked wallets."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.errors import InvalidInput
from chainfolio.fetchers.addresses import parse_address
from chainfolio.resolvers.context import ChainInfo
from chainfolio.resolvers.pages import Key, Page, paginate
from chainfolio.storage import accounts
from chainfolio.storage.accounts import Wallet

MAX_LABEL = 100


def parse_wallet_id(value: str) -> uuid.UUID:
    """A wallet id from the API, or a 400."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(f"not a wallet id: {value!r}", code="INVALID_ID") from exc


async def add_wallet(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    chain_id: int,
    address: str,
    label: str | None,
    chains: Mapping[int, ChainInfo],
    max_wallets: int,
) -> Wallet:
    """Validate and track a wallet: known chain, valid EIP-55 address, sane label."""
    if chain_id not in chains:
        known = ", ".join(f"{c.chain_id} ({c.name})" for c in chains.values()) or "none"
        raise InvalidInput(
            f"unknown chain id {chain_id}: configured chains are {known}", code="UNKNOWN_CHAIN"
        )
    checksummed = parse_address(address)
    if label is not None and len(label) > MAX_LABEL:
        raise InvalidInput(f"label longer than {MAX_LABEL} characters", code="INVALID_LABEL")
    return await accounts.add_wallet(
        db,
        user_id=user_id,
        chain_id=chain_id,
        address=checksummed,
        label=label,
        max_wallets=max_wallets,
    )


async def remove_wallet(db: AsyncConnection, *, user_id: uuid.UUID, wallet_id: str) -> None:
    """Stop tracking one of the user's wallets (404 when it is not theirs)."""
    await accounts.remove_wallet(db, user_id=user_id, wallet_id=parse_wallet_id(wallet_id))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wallet_key(wallet: Wallet) -> Key:
    """Oldest first, as `list_wallets` orders them (microseconds: exact, unlike a float)."""
    return ((wallet.created_at - _EPOCH) // timedelta(microseconds=1), str(wallet.id))


async def wallets_page(
    db: AsyncConnection, *, user_id: uuid.UUID, first: int | None, after: str | None
) -> Page[Wallet]:
    """A page of the user's wallets, oldest first (at most max_wallets_per_user in all)."""
    rows = await accounts.list_wallets(db, user_id=user_id)
    return paginate("wallet", rows, wallet_key, first=first, after=after)
