"""The Uniswap pools found per token (`token_pools`): what the factories answered once, kept
across restarts so a worker does not ask them again; an empty list means none was found then."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class TokenPools:
    """A token's pools against the quote tokens: (version, pool, quote, fee) each."""

    chain_id: int
    token: str
    pools: tuple[tuple[int, str, str, int], ...]
    checked_at: datetime


async def save_token_pools(db: AsyncConnection, rows: Sequence[TokenPools]) -> None:
    """Store (or replace) tokens' pools."""
    if not rows:
        return
    await db.execute(
        text(
            """INSERT INTO token_pools (chain_id, token, pools, checked_at)
               VALUES (:c, :t, CAST(:p AS jsonb), :at)
               ON CONFLICT (chain_id, token)
               DO UPDATE SET pools = excluded.pools, checked_at = excluded.checked_at"""
        ),
        [
            {
                "c": r.chain_id,
                "t": r.token,
                "p": json.dumps([list(p) for p in r.pools]),
                "at": r.checked_at,
            }
            for r in rows
        ],
    )


async def token_pools(db: AsyncConnection, *, chain_ids: Collection[int]) -> list[TokenPools]:
    """Every token's stored pools on these chains."""
    rows = await db.execute(
        text("SELECT chain_id, token, pools, checked_at FROM token_pools WHERE chain_id = ANY(:c)"),
        {"c": list(chain_ids)},
    )
    found = []
    for chain_id, token, pools, checked_at in rows:
        loaded = json.loads(pools) if isinstance(pools, str) else pools
        found.append(
            TokenPools(
                chain_id,
                token,
                tuple((int(v), str(p), str(q), int(f)) for v, p, q, f in loaded),
                checked_at,
            )
        )
    return found
