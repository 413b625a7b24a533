"""Discovered tokens: metadata read once, candidates per wallet, discovery progress, visibility.

`token_metadata` holds what a token said about itself (and the spam verdict) per chain and
contract, written once; `wallet_tokens` the contracts that sent a token to a wallet, with the
block they were first seen at; `wallet_sync` each wallet's discovery scan (state, blocks
scanned of the total, the last block covered); `token_visibility` a user's hide/un-hide.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token's metadata as read once; `spam` is the reason it was classified spam."""

    chain_id: int
    contract: str
    symbol: str | None
    name: str | None
    decimals: int | None
    unreadable: str | None = None
    spam: str | None = None


@dataclass(frozen=True, slots=True)
class WalletToken:
    """A contract that sent a token to a wallet, first seen at `first_block`."""

    wallet_id: uuid.UUID
    chain_id: int
    contract: str
    first_block: int
    first_tx: str | None = None


class SyncState(StrEnum):
    """Where a wallet's discovery scan stands."""

    SCANNING = "scanning"
    SYNCED = "synced"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WalletSync:
    """A wallet's discovery scan: blocks `first_block`…`last_block` are covered."""

    wallet_id: uuid.UUID
    state: SyncState
    first_block: int
    last_block: int
    scanned_blocks: int
    total_blocks: int
    error: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExcludedToken:
    """A held token left out of the user's totals, and why."""

    chain_id: int
    wallet: str
    contract: str
    symbol: str
    reason: str
    hidden: bool


async def save_metadata(db: AsyncConnection, tokens: Iterable[StoredToken]) -> None:
    """Store tokens' metadata (a token already stored keeps its first read)."""
    rows = [
        {
            "c": t.chain_id,
            "a": t.contract,
            "s": t.symbol,
            "n": t.name,
            "d": t.decimals,
            "u": t.unreadable,
            "sp": t.spam,
        }
        for t in tokens
    ]
    if rows:
        await db.execute(
            text(
                """INSERT INTO token_metadata (chain_id, contract, symbol, name, decimals,
                    unreadable, spam) VALUES (:c, :a, :s, :n, :d, :u, :sp)
                ON CONFLICT (chain_id, contract) DO NOTHING"""
            ),
            rows,
        )


async def known_metadata(
    db: AsyncConnection, *, chain_id: int, contracts: Collection[str]
) -> dict[str, StoredToken]:
    """The stored metadata of those of `contracts` already read."""
    if not contracts:
        return {}
    rows = await db.execute(
        text(
            """SELECT chain_id, contract, symbol, name, decimals, unreadable, spam
               FROM token_metadata WHERE chain_id = :c AND contract = ANY(:a)"""
        ),
        {"c": chain_id, "a": list(contracts)},
    )
    return {r.contract: StoredToken(*r) for r in rows}


async def add_wallet_tokens(db: AsyncConnection, tokens: Iterable[WalletToken]) -> int:
    """Record candidates; one seen before keeps the earliest block. Returns how many are new."""
    rows = [
        {"w": t.wallet_id, "c": t.chain_id, "a": t.contract, "b": t.first_block, "t": t.first_tx}
        for t in tokens
    ]
    if not rows:
        return 0
    before = await db.scalar(
        text("SELECT count(*) FROM wallet_tokens WHERE wallet_id = ANY(:w)"),
        {"w": list({r["w"] for r in rows})},
    )
    await db.execute(
        text(
            """INSERT INTO wallet_tokens (wallet_id, chain_id, contract, first_block, first_tx)
            VALUES (:w, :c, :a, :b, :t)
            ON CONFLICT (wallet_id, contract) DO UPDATE
            SET first_block = excluded.first_block, first_tx = excluded.first_tx
            WHERE excluded.first_block < wallet_tokens.first_block"""
        ),
        rows,
    )
    after = await db.scalar(
        text("SELECT count(*) FROM wallet_tokens WHERE wallet_id = ANY(:w)"),
        {"w": list({r["w"] for r in rows})},
    )
    return int(after or 0) - int(before or 0)


async def wallet_tokens(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[WalletToken, StoredToken | None]]]:
    """Each wallet's candidates with their metadata (None until read)."""
    found: dict[uuid.UUID, list[tuple[WalletToken, StoredToken | None]]] = {}
    if not wallet_ids:
        return found
    rows = await db.execute(
        text(
            """SELECT wt.wallet_id, wt.chain_id, wt.contract, wt.first_block, wt.first_tx,
                      tm.contract IS NOT NULL AS known, tm.symbol, tm.name, tm.decimals,
                      tm.unreadable, tm.spam
               FROM wallet_tokens wt LEFT JOIN token_metadata tm
                 ON tm.chain_id = wt.chain_id AND tm.contract = wt.contract
               WHERE wt.wallet_id = ANY(:w) ORDER BY wt.first_block, wt.contract"""
        ),
        {"w": list(wallet_ids)},
    )
    for r in rows:
        token = WalletToken(r.wallet_id, r.chain_id, r.contract, r.first_block, r.first_tx)
        meta = (
            StoredToken(r.chain_id, r.contract, r.symbol, r.name, r.decimals, r.unreadable, r.spam)
            if r.known
            else None
        )
        found.setdefault(r.wallet_id, []).append((token, meta))
    return found


async def sync_states(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, WalletSync]:
    """The discovery state of each wallet that has one."""
    if not wallet_ids:
        return {}
    rows = await db.execute(
        text(
            """SELECT wallet_id, state, first_block, last_block, scanned_blocks, total_blocks,
                      error, updated_at
               FROM wallet_sync WHERE wallet_id = ANY(:w)"""
        ),
        {"w": list(wallet_ids)},
    )
    return {
        r.wallet_id: WalletSync(
            r.wallet_id,
            SyncState(r.state),
            r.first_block,
            r.last_block,
            r.scanned_blocks,
            r.total_blocks,
            r.error,
            r.updated_at,
        )
        for r in rows
    }


async def save_sync(db: AsyncConnection, syncs: Sequence[WalletSync]) -> None:
    """Store wallets' discovery progress."""
    rows = [
        {
            "w": s.wallet_id,
            "st": s.state.value,
            "f": s.first_block,
            "l": s.last_block,
            "sc": s.scanned_blocks,
            "t": s.total_blocks,
            "e": s.error,
        }
        for s in syncs
    ]
    if rows:
        await db.execute(
            text(
                """INSERT INTO wallet_sync (wallet_id, state, first_block, last_block,
                    scanned_blocks, total_blocks, error, updated_at)
                VALUES (:w, :st, :f, :l, :sc, :t, :e, now())
                ON CONFLICT (wallet_id) DO UPDATE SET state = excluded.state,
                    first_block = excluded.first_block, last_block = excluded.last_block,
                    scanned_blocks = excluded.scanned_blocks,
                    total_blocks = excluded.total_blocks, error = excluded.error,
                    updated_at = now()"""
            ),
            rows,
        )


async def set_visibility(
    db: AsyncConnection, *, user_id: uuid.UUID, chain_id: int, contract: str, hidden: bool
) -> None:
    """Hide (or un-hide) a token for one user."""
    await db.execute(
        text(
            """INSERT INTO token_visibility (user_id, chain_id, contract, hidden)
            VALUES (:u, :c, :a, :h)
            ON CONFLICT (user_id, chain_id, contract) DO UPDATE
            SET hidden = excluded.hidden, updated_at = now()"""
        ),
        {"u": user_id, "c": chain_id, "a": contract, "h": hidden},
    )


async def visibility(
    db: AsyncConnection, *, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[tuple[int, str], bool]]:
    """Each user's explicit choices: (chain id, contract) -> hidden."""
    found: dict[uuid.UUID, dict[tuple[int, str], bool]] = {}
    if not user_ids:
        return found
    rows = await db.execute(
        text(
            """SELECT user_id, chain_id, contract, hidden FROM token_visibility
               WHERE user_id = ANY(:u)"""
        ),
        {"u": list(user_ids)},
    )
    for r in rows:
        found.setdefault(r.user_id, {})[(r.chain_id, r.contract)] = r.hidden
    return found


async def spam_tokens(
    db: AsyncConnection, *, keys: Collection[tuple[int, str]]
) -> dict[tuple[int, str], str]:
    """The spam reason of each of these (chain id, contract) classified spam."""
    if not keys:
        return {}
    rows = await db.execute(
        text(
            """SELECT chain_id, contract, spam FROM token_metadata
               WHERE spam IS NOT NULL AND (chain_id, contract) IN
                 (SELECT * FROM unnest(CAST(:c AS integer[]), CAST(:a AS varchar[])))"""
        ),
        {"c": [k[0] for k in keys], "a": [k[1] for k in keys]},
    )
    return {(r.chain_id, r.contract): r.spam for r in rows}


async def excluded_tokens(db: AsyncConnection, *, user_id: uuid.UUID) -> list[ExcludedToken]:
    """The user's held tokens that do not count in totals: hidden, spam or unpriced."""
    rows = await db.execute(
        text(
            """SELECT pa.chain_id, w.address, pa.contract, pa.asset, tm.spam,
                      coalesce(tv.hidden, false) AS hidden, tv.hidden AS chosen,
                      pa.details ->> 'unpriced' AS unpriced
               FROM portfolio_assets pa
               JOIN wallets w ON w.id = pa.wallet_id
               LEFT JOIN token_metadata tm
                 ON tm.chain_id = pa.chain_id AND tm.contract = pa.contract
               LEFT JOIN token_visibility tv ON tv.user_id = pa.user_id
                 AND tv.chain_id = pa.chain_id AND tv.contract = pa.contract
               WHERE pa.user_id = :u AND pa.amount IS NOT NULL AND pa.amount <> 0
                 AND (tv.hidden OR (tm.spam IS NOT NULL AND tv.hidden IS NULL)
                      OR pa.price IS NULL)
               ORDER BY pa.chain_id, pa.asset, w.address"""
        ),
        {"u": user_id},
    )
    found = []
    for r in rows:
        if r.hidden:
            reason = "hidden by you"
        elif r.spam is not None and r.chosen is None:
            reason = f"spam: {r.spam}"
        else:
            reason = f"unpriced: {r.unpriced or 'no price source'}"
        found.append(ExcludedToken(r.chain_id, r.address, r.contract, r.asset, reason, r.hidden))
    return found
