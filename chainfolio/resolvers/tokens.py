"""Token visibility, excluded tokens and each wallet's discovery progress."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.errors import InvalidInput
from chainfolio.fetchers.addresses import parse_address
from chainfolio.resolvers.context import ChainInfo
from chainfolio.storage import tokens
from chainfolio.storage.tokens import ExcludedToken, WalletSync


async def set_token_visibility(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    chain_id: int,
    contract: str,
    hidden: bool,
    chains: Mapping[int, ChainInfo],
) -> str:
    """Hide or un-hide a token for the user (next refresh applies it); the contract back."""
    if chain_id not in chains:
        raise InvalidInput(f"unknown chain id {chain_id}", code="UNKNOWN_CHAIN")
    checksummed = parse_address(contract)
    await tokens.set_visibility(
        db, user_id=user_id, chain_id=chain_id, contract=checksummed, hidden=hidden
    )
    return checksummed


async def excluded_tokens(db: AsyncConnection, *, user_id: uuid.UUID) -> list[ExcludedToken]:
    """The user's held tokens left out of totals, with the reason."""
    return await tokens.excluded_tokens(db, user_id=user_id)


async def wallet_sync(db: AsyncConnection, *, wallet_id: uuid.UUID) -> WalletSync | None:
    """The wallet's discovery progress (None before its first scan starts)."""
    return (await tokens.sync_states(db, wallet_ids=[wallet_id])).get(wallet_id)
