"""Cash flows (external deposits and withdrawals) and how far the scan for them has got:
the transfer cursor of each wallet and the last block taken as final on each chain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class CashFlow:
    """An external deposit (amount > 0) or withdrawal (amount < 0) of a tracked wallet."""

    user_id: uuid.UUID
    chain_id: int
    time: datetime
    symbol: str
    contract: str
    amount: int
    decimals: int
    value_usd: Decimal | None
    tx_hash: str | None = None
    log_index: int = -1
    wallet_id: uuid.UUID | None = None
    block_number: int | None = None


async def write_cash_flows(db: AsyncConnection, flows: Sequence[CashFlow]) -> None:
    """Store detected flows; the same transfer log is stored once."""
    if not flows:
        return
    await db.execute(
        text(
            """INSERT INTO cash_flows (user_id, wallet_id, chain_id, time, symbol, contract,
                amount, decimals, value_usd, tx_hash, log_index, block_number)
               VALUES (:u, :w, :c, :t, :s, :ct, :a, :d, :v, :h, :li, :b)
               ON CONFLICT DO NOTHING"""
        ),
        [
            {
                "u": f.user_id,
                "w": f.wallet_id,
                "c": f.chain_id,
                "t": f.time,
                "s": f.symbol,
                "ct": f.contract,
                "a": f.amount,
                "d": f.decimals,
                "v": f.value_usd,
                "h": f.tx_hash,
                "li": f.log_index,
                "b": f.block_number,
            }
            for f in flows
        ],
    )


async def cash_flows_between(
    db: AsyncConnection, *, user_id: uuid.UUID, start: datetime, end: datetime
) -> list[CashFlow]:
    """The user's flows with start < time <= end, oldest first."""
    rows = await db.execute(
        text(
            """SELECT user_id, chain_id, time, symbol, contract, amount, decimals, value_usd,
                      tx_hash, log_index, wallet_id, block_number
               FROM cash_flows WHERE user_id = :u AND time > :s AND time <= :e
               ORDER BY time"""
        ),
        {"u": user_id, "s": start, "e": end},
    )
    return [
        CashFlow(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            int(r[5]),
            r[6],
            Decimal(r[7]) if r[7] is not None else None,
            r[8],
            r[9],
            r[10],
            r[11],
        )
        for r in rows
    ]


async def delete_cash_flows_after(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID], block_number: int
) -> int:
    """Forget the flows of `wallet_ids` above `block_number` (a reorg orphaned them)."""
    if not wallet_ids:
        return 0
    result = await db.execute(
        text("DELETE FROM cash_flows WHERE wallet_id = ANY(:w) AND block_number > :b"),
        {"w": list(wallet_ids), "b": block_number},
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class TransferCursor:
    """The last block whose transfers were scanned for one wallet."""

    wallet_id: uuid.UUID
    chain_id: int
    block_number: int
    block_hash: str | None


async def transfer_cursors(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, TransferCursor]:
    """The stored cursors of `wallet_ids` (a wallet never scanned has none)."""
    if not wallet_ids:
        return {}
    rows = await db.execute(
        text(
            "SELECT wallet_id, chain_id, block_number, block_hash FROM transfer_cursors "
            "WHERE wallet_id = ANY(:w)"
        ),
        {"w": list(wallet_ids)},
    )
    return {r[0]: TransferCursor(r[0], r[1], int(r[2]), r[3]) for r in rows}


async def save_transfer_cursors(db: AsyncConnection, cursors: Sequence[TransferCursor]) -> None:
    """Upsert cursors (a wallet deleted meanwhile is skipped)."""
    if not cursors:
        return
    await db.execute(
        text(
            """INSERT INTO transfer_cursors (wallet_id, chain_id, block_number, block_hash)
               SELECT x.w, x.c, x.b, x.h
               FROM unnest(CAST(:w AS uuid[]), CAST(:c AS integer[]), CAST(:b AS bigint[]),
                           CAST(:h AS text[])) AS x(w, c, b, h)
               JOIN wallets ON wallets.id = x.w
               ON CONFLICT (wallet_id) DO UPDATE SET block_number = excluded.block_number,
                   block_hash = excluded.block_hash, updated_at = now()"""
        ),
        {
            "w": [c.wallet_id for c in cursors],
            "c": [c.chain_id for c in cursors],
            "b": [c.block_number for c in cursors],
            "h": [c.block_hash for c in cursors],
        },
    )


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """A block of a chain taken as final (the confirmation depth below the head the worker last
    scanned to): while the node still has it, the node serves the chain scanned before."""

    chain_id: int
    block_number: int
    block_hash: str


async def chain_anchors(
    db: AsyncConnection, *, chain_ids: Collection[int]
) -> dict[int, ChainAnchor]:
    """The stored anchor of each of `chain_ids` (a chain never scanned has none)."""
    if not chain_ids:
        return {}
    rows = await db.execute(
        text("SELECT key, value FROM chainfolio_meta WHERE key = ANY(:k)"),
        {"k": [f"chain_anchor:{c}" for c in chain_ids]},
    )
    anchors = {}
    for key, value in rows:
        chain_id = int(key.removeprefix("chain_anchor:"))
        number, block_hash = value.split(":", 1)
        anchors[chain_id] = ChainAnchor(chain_id, int(number), block_hash)
    return anchors


async def save_chain_anchors(db: AsyncConnection, anchors: Sequence[ChainAnchor]) -> None:
    """Store each of `anchors` as its chain's (one per chain, shared by every worker)."""
    if not anchors:
        return
    await db.execute(
        text(
            "INSERT INTO chainfolio_meta (key, value) "
            "SELECT * FROM unnest(CAST(:k AS text[]), CAST(:v AS text[])) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ),
        {
            "k": [f"chain_anchor:{a.chain_id}" for a in anchors],
            "v": [f"{a.block_number}:{a.block_hash}" for a in anchors],
        },
    )
