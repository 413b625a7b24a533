"""Asset movements (every balance change the transfer scan sees) and cost-basis settings."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime, timedelta
from decimal import Context, Decimal
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


class BasisColumns(NamedTuple):
    """What cost basis reads of a user's movements of kind external or opening, oldest first,
    as one list per field (`chainfolio.analytics.costbasis.summarize`)."""

    assets: list[str]
    quantities: list[Decimal]
    """Signed whole units, exact."""
    values_usd: list[Decimal | None]
    rates: list[Decimal | None]
    """The display currency's stored rate nearest each movement (empty: none asked)."""
    txs: list[str | None]
    """`chain:tx hash` of the external movements that share their hash with another (None
    for the others: a transaction of one movement is no swap)."""
    before: int
    """How many of them are at or before the `after` given (none when it is None)."""


# One sort, in the subquery, which PostgreSQL never flattens (it has an ORDER BY): the
# aggregates above it read its rows in that order (an ORDER BY in each aggregate would sort
# the rows once per column). Amounts are scaled here (`Decimal.scaleb` is exact).
_COLUMNS = """SELECT array_agg(m.asset), array_agg(m.amount::text), array_agg(m.decimals),
        array_agg(m.value_usd::text), {rates}, array_agg(m.chain_id),
        array_agg(CASE WHEN m.kind = 'external' THEN m.tx_hash END),
        count(*) FILTER (WHERE m.time <= $2)
    FROM (SELECT time, asset, amount, decimals, value_usd, chain_id, kind, tx_hash
          FROM asset_movements
          WHERE user_id = $1 AND kind IN ('external', 'opening')
          ORDER BY time, id) m"""
_USD_COLUMNS = _COLUMNS.format(rates="NULL::text[]")
# The rate ($3: its price symbol) nearest a movement's time within ±$4, as `prices_nearest`
# chooses it (the earlier of two as near): the nearest is the last one at or before the time
# or the first one after it, two probes of the prices' (symbol, time) key instead of sorting
# every price of the window for each movement.
_NEAREST_RATE = """(SELECT price::text FROM (
        (SELECT time, price FROM prices
         WHERE symbol = $3 AND time <= m.time AND time >= m.time - $4::interval
         ORDER BY time DESC LIMIT 1)
        UNION ALL
        (SELECT time, price FROM prices
         WHERE symbol = $3 AND time > m.time AND time <= m.time + $4::interval
         ORDER BY time LIMIT 1)) near
    ORDER BY abs(extract(epoch FROM near.time - m.time)), near.time
    LIMIT 1)"""
_RATE_COLUMNS = _COLUMNS.format(rates=f"array_agg({_NEAREST_RATE})")
_SCALE = Context(prec=100)


def _decimals(texts: list[str | None] | None) -> list[Decimal | None]:
    return [None if t is None else Decimal(t) for t in texts or ()]


async def basis_columns(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    after: datetime | None = None,
    rate_symbol: str | None = None,
    rate_window: timedelta = timedelta(0),
) -> BasisColumns:
    """The user's movements that cost basis runs on, in one statement and one row of arrays:
    no object per movement (a long history is read without garbage-collector churn), amounts
    scaled by the database (exact numeric), the rate of `rate_symbol` nearest each movement
    within ±`rate_window` joined in when asked (as `prices_nearest` finds it)."""
    await db.execute(text("SELECT 1"))  # begins the caller's transaction (as timeseries does)
    conn = await driver_connection(db)
    if rate_symbol is None:
        row = await conn.fetchrow(_USD_COLUMNS, user_id, after)
    else:
        row = await conn.fetchrow(_RATE_COLUMNS, user_id, after, rate_symbol, rate_window)
    assets, amounts, decimals, values, rates, chains, hashes, before = row
    scale = _SCALE
    return BasisColumns(
        assets or [],
        [Decimal(a).scaleb(-d, scale) for a, d in zip(amounts or (), decimals or (), strict=True)],
        _decimals(values),
        _decimals(rates),
        _shared_keys(chains or [], hashes or []),
        before,
    )


def _shared_keys(chains: list[int], hashes: list[str | None]) -> list[str | None]:
    """`chain:hash` of the movements whose hash more than one has (the only swap candidates);
    None for the others: most histories have one movement per transaction."""
    counts = Counter(hashes)
    shared = {h for h, n in counts.items() if n > 1 and h is not None}
    if not shared:
        return [None] * len(hashes)
    return [f"{c}:{h}" if h in shared else None for c, h in zip(chains, hashes, strict=True)]


async def asset_keys(
    db: AsyncConnection, *, user_id: uuid.UUID, symbols: Collection[str] | None = None
) -> list[tuple[int, str, str, str]]:
    """Per (chain, token contract, symbol) the user's movements name: the asset it counts as
    (only of `symbols` when given: what a few holdings need, without sorting every movement)."""
    if symbols is not None and not symbols:
        return []
    rows = await db.execute(
        text(
            """SELECT DISTINCT ON (chain_id, contract, symbol) chain_id, contract, symbol, asset
               FROM asset_movements
               WHERE user_id = :u AND (CAST(:s AS text[]) IS NULL OR symbol = ANY(:s))
               ORDER BY chain_id, contract, symbol, time DESC"""
        ),
        {"u": user_id, "s": None if symbols is None else sorted(symbols)},
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# The export's text, formatted by the database where it is exact: the date (as
# `datetime.isoformat` of a UTC time, `Z` for +00:00), numbers without trailing zeros (as a
# normalized Decimal), and the asset and symbol quoted as `csv.writer` quotes them (a field
# holding a comma, a quote or a line break is quoted, its quotes doubled: token symbols are
# anything). Hashes and addresses, hex, are checked by the caller (cheaper there).
_ISO = """to_char(m.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_trunc('second', m.time) = m.time THEN ''
            ELSE to_char(m.time AT TIME ZONE 'UTC', '.US') END || 'Z'"""


def _csv_field(column: str) -> str:
    value = f"coalesce({column}, '')"
    return (
        f"""CASE WHEN {value} ~ E'[",\\r\\n]' THEN '"' || replace({value}, '"', '""') || '"'"""
        f" ELSE {value} END"
    )


_EXPORT = f"""SELECT {_ISO}, m.chain_id, m.tx_hash, w.address,
        {_csv_field("m.asset")} || ',' || {_csv_field("m.symbol")} || ','
            || trim_scale(m.amount * ('1e-' || m.decimals)::numeric)::text,
        m.asset, m.amount::text, m.decimals, m.value_usd::text, trim_scale(m.value_usd)::text,
        {{rate}}, m.kind, m.counterparty, coalesce(m.time > $2, true)
    FROM asset_movements m LEFT JOIN wallets w ON w.id = m.wallet_id
    WHERE m.user_id = $1 ORDER BY m.time, m.id"""
_USD_EXPORT = _EXPORT.format(rate="NULL::text")
_RATE_EXPORT = _EXPORT.format(rate=_NEAREST_RATE)


async def stream_export(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    after: datetime | None = None,
    rate_symbol: str | None = None,
    rate_window: timedelta = timedelta(0),
    batch: int = 5_000,
) -> AsyncIterator[list[Any]]:
    """Every movement of the user as the transactions export writes it, oldest first, in
    batches of records from a server-side cursor (flat memory): the date (ISO 8601, `Z`), chain
    id, tx hash, wallet address, the CSV fields asset, symbol and amount (whole units) joined,
    asset, amount (base units, text), decimals, USD value (text), its CSV field, the rate of
    `rate_symbol` nearest it (text, as `basis_columns`), kind, counterparty, and whether it is
    after `after` (always without one).

    A `DECLARE`d cursor, which PostgreSQL plans for its first rows (the index in time order,
    no sort of the whole history first), and the next batch is asked for before this one is
    handed over: the database formats it while the caller works on this one. Needs a
    transaction (`engine.begin()` or `connect()` then a statement); nothing else may use the
    connection until the iteration ends."""
    await db.execute(text("SELECT 1"))
    conn = await driver_connection(db)
    # asyncpg caches `FETCH n FROM name` with the columns it first returned: one cursor name
    # per statement, so a FETCH is never decoded with another statement's columns.
    args: list[object] = [user_id, after]
    query = _USD_EXPORT
    if rate_symbol is not None:
        query, args = _RATE_EXPORT, [*args, rate_symbol, rate_window]
    cursor = f"chainfolio_export_{zlib.crc32(query.encode()):08x}"
    await conn.execute(f"DECLARE {cursor} NO SCROLL CURSOR FOR {query}", *args)
    fetch = f"FETCH {int(batch)} FROM {cursor}"
    ahead = asyncio.ensure_future(conn.fetch(fetch))
    try:
        while rows := await ahead:
            ahead = asyncio.ensure_future(conn.fetch(fetch))
            await asyncio.sleep(0)  # sends the FETCH before the caller takes this batch
            yield rows
    finally:
        ahead.cancel()  # the caller stopped early (the transaction's end closes the cursor)
    await conn.execute(f"CLOSE {cursor}")


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
