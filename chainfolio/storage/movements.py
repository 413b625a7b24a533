"""Asset movements (every balance change the transfer scan sees) and cost-basis settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.storage.database import driver_connection

METHODS = ("average", "fifo")
DEFAULT_METHOD = "average"


class AssetMovement(NamedTuple):
    """One wallet's balance of one token changing in one transfer (or its opening balance).

    A NamedTuple: a P&L request reads every movement of the user, and these are built twice as
    fast as frozen dataclasses."""

    user_id: uuid.UUID
    wallet_id: uuid.UUID | None
    chain_id: int
    block_number: int
    time: datetime
    tx_hash: str | None
    log_index: int
    contract: str
    symbol: str
    asset: str
    """The symbol that prices it (WETH -> ETH): cost basis is kept per asset."""
    decimals: int
    amount: int
    """Signed base units: + in, - out."""
    price_usd: Decimal | None
    value_usd: Decimal | None
    """Unsigned value at its block's time; None: unvalued."""
    kind: str
    """external | opening | own | wrap | position (see `chainfolio.analytics.costbasis`)."""
    counterparty: str | None = None
    id: int = 0
    wallet_address: str | None = None
    """Filled by reads."""

    @property
    def quantity(self) -> Decimal:
        """Signed whole units."""
        return Decimal(self.amount).scaleb(-self.decimals)


async def write_movements(db: AsyncConnection, movements: Sequence[AssetMovement]) -> int:
    """Store movements; one already stored (same wallet, log and kind) is skipped."""
    if not movements:
        return 0
    columns = (
        ("user_id", "uuid"),
        ("wallet_id", "uuid"),
        ("chain_id", "integer"),
        ("block_number", "bigint"),
        ("time", "timestamptz"),
        ("tx_hash", "text"),
        ("log_index", "integer"),
        ("contract", "text"),
        ("symbol", "text"),
        ("asset", "text"),
        ("decimals", "smallint"),
        ("amount", "numeric"),
        ("price_usd", "numeric"),
        ("value_usd", "numeric"),
        ("kind", "text"),
        ("counterparty", "text"),
    )
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    result = await db.execute(
        text(
            f"""INSERT INTO asset_movements ({names})
                SELECT * FROM unnest({arrays})
                ON CONFLICT DO NOTHING"""
        ),
        {name: [getattr(m, name) for m in movements] for name, _ in columns},
    )
    return int(result.rowcount or 0)


async def delete_movements_after(
    db: AsyncConnection, *, wallet_ids: Collection[uuid.UUID], block_number: int
) -> int:
    """Forget the movements of `wallet_ids` above `block_number` (a reorg orphaned them)."""
    if not wallet_ids:
        return 0
    result = await db.execute(
        text(
            "DELETE FROM asset_movements WHERE wallet_id = ANY(:w) AND block_number > :b "
            "AND kind <> 'opening'"
        ),
        {"w": list(wallet_ids), "b": block_number},
    )
    return int(result.rowcount or 0)


_SELECT = """SELECT m.user_id, m.wallet_id, m.chain_id, m.block_number, m.time, m.tx_hash,
        m.log_index, m.contract, m.symbol, m.asset, m.decimals, m.amount, m.price_usd,
        m.value_usd, m.kind, m.counterparty, m.id, w.address
    FROM asset_movements m LEFT JOIN wallets w ON w.id = m.wallet_id"""


def _movement(r: Any) -> AssetMovement:
    # the columns in field order; the amount from numeric(78, 0) to int
    return AssetMovement._make((*r[:11], int(r[11]), *r[12:]))


async def user_movements(db: AsyncConnection, *, user_id: uuid.UUID) -> list[AssetMovement]:
    """All of the user's movements, oldest first."""
    await db.execute(text("SELECT 1"))  # begins the caller's transaction (as timeseries does)
    conn = await driver_connection(db)
    rows = await conn.fetch(f"{_SELECT} WHERE m.user_id = $1 ORDER BY m.time, m.id", user_id)
    return [_movement(r) for r in rows]


async def basis_rows(db: AsyncConnection, *, user_id: uuid.UUID) -> list[Any]:
    """What cost basis needs of every movement, oldest first, as records: time, asset, amount
    (numeric), decimals, value_usd, kind, chain_id, tx_hash. Half the columns of
    `user_movements` and no join: the P&L of a long history reads only these."""
    await db.execute(text("SELECT 1"))
    conn = await driver_connection(db)
    return list(
        await conn.fetch(
            """SELECT time, asset, amount, decimals, value_usd, kind, chain_id, tx_hash
               FROM asset_movements WHERE user_id = $1 ORDER BY time, id""",
            user_id,
        )
    )


async def asset_keys(db: AsyncConnection, *, user_id: uuid.UUID) -> list[tuple[int, str, str, str]]:
    """Per (chain, token contract, symbol) the user's movements name: the asset it counts as."""
    rows = await db.execute(
        text(
            """SELECT DISTINCT ON (chain_id, contract, symbol) chain_id, contract, symbol, asset
               FROM asset_movements WHERE user_id = :u
               ORDER BY chain_id, contract, symbol, time DESC"""
        ),
        {"u": user_id},
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def stream_movements(
    db: AsyncConnection, *, user_id: uuid.UUID, batch: int = 2_000
) -> AsyncIterator[list[AssetMovement]]:
    """The user's movements, oldest first, in batches from a server-side cursor (flat memory).

    Needs a transaction (`engine.begin()` or `connect()` then a statement)."""
    await db.execute(text("SELECT 1"))
    conn = await driver_connection(db)
    cursor = await conn.cursor(f"{_SELECT} WHERE m.user_id = $1 ORDER BY m.time, m.id", user_id)
    while rows := await cursor.fetch(batch):
        yield [_movement(r) for r in rows]


async def cost_basis_method(db: AsyncConnection, *, user_id: uuid.UUID) -> str:
    """The user's cost-basis method ("average" unless they chose "fifo")."""
    value = await db.scalar(
        text("SELECT method FROM pnl_settings WHERE user_id = :u"), {"u": user_id}
    )
    return str(value) if value else DEFAULT_METHOD


async def set_cost_basis_method(db: AsyncConnection, *, user_id: uuid.UUID, method: str) -> None:
    """Choose the user's cost-basis method (one of `METHODS`)."""
    await db.execute(
        text(
            """INSERT INTO pnl_settings (user_id, method) VALUES (:u, :m)
               ON CONFLICT (user_id) DO UPDATE SET method = excluded.method"""
        ),
        {"u": user_id, "m": method},
    )
