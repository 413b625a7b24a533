"""GraphQL types of token discovery: a wallet's scan progress, tokens left out of totals."""

from __future__ import annotations

import dataclasses

import strawberry

from chainfolio.storage.tokens import ExcludedToken as ExcludedRow
from chainfolio.storage.tokens import WalletSync as SyncRow


@strawberry.type(description="A wallet's token-discovery scan over its chain's Transfer logs.")
class WalletSync:
    state: str = strawberry.field(description="pending, scanning, synced or failed.")
    scanned_blocks: int
    total_blocks: int
    first_block: int | None
    last_block: int | None = strawberry.field(description="Scanned up to this block.")
    error: str | None

    @classmethod
    def of(cls, row: SyncRow | None) -> WalletSync:
        """From a stored scan; a wallet not scanned yet is pending."""
        if row is None:
            return cls(
                state="pending",
                scanned_blocks=0,
                total_blocks=0,
                first_block=None,
                last_block=None,
                error=None,
            )
        return cls(
            state=row.state.value,
            scanned_blocks=row.scanned_blocks,
            total_blocks=row.total_blocks,
            first_block=row.first_block,
            last_block=row.last_block,
            error=row.error,
        )


@strawberry.type(description="A held token that counts in no total: hidden, spam or unpriced.")
class ExcludedToken:
    chain_id: int
    wallet: str
    contract: str
    symbol: str
    reason: str
    hidden: bool

    @classmethod
    def of(cls, row: ExcludedRow) -> ExcludedToken:
        """From a stored row (the same fields)."""
        return cls(**dataclasses.asdict(row))


@strawberry.type(description="A token's visibility for the caller.")
class TokenVisibility:
    chain_id: int
    contract: str
    hidden: bool
