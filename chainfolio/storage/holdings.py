"""Current holdings (`portfolio_assets`): written by the refresh, read by the API.

Two kinds of "not fresh" are kept apart. The `stale` column is chain-level: the wallet's chain
could not be read at the last attempt, so every row of the wallet shows its last known values.
A row with an `error` but `stale` false is token-level: the chain was read, this one call
failed (a reverting `balanceOf`), so the row keeps its last known amount — or none if it was
never read — and the chain stays fresh.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.domain import AssetKind, Category, Holding, Price, balance_of, value_of
from chainfolio.storage.database import driver_connection


@dataclass(frozen=True, slots=True)
class StoredHolding:
    """A holding as last stored, with the chain's display name and the row's age."""

    holding: Holding
    chain: str
    wallet_id: uuid.UUID
    updated_at: datetime
    chain_stale: bool = False
    """The wallet's chain could not be read at the last attempt (`holding.stale` is then set
    too; a token-level failure sets only `holding.stale` and `holding.error`)."""
    balance: Decimal | None = field(init=False)
    """`holding.balance`, computed once (an answer reads it up to eight times per holding)."""
    value_usd: Decimal | None = field(init=False)
    """`holding.value_usd`, computed once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "balance", self.holding.balance)
        object.__setattr__(self, "value_usd", self.holding.value_usd)


POSITION_DETAILS = (
    "protocol",
    "position",
    "leg",
    "token_id",
    "pool",
    "fee",
    "tick_lower",
    "tick_upper",
    "tick",
    "in_range",
    "liquidity",
    "underlying",
    "underlying_contract",
)
"""What is kept of a DEX position leg's `extra`: enough to show it as part of its position."""


UNPRICED = "unpriced"
"""Holding.extra key: why no price source priced the holding (e.g. its only pool is thin)."""


def position_details(holding: Holding) -> str | None:
    """The JSON stored in `details`: a position leg's details, why a holding is unpriced;
    None when neither applies."""
    kept = (*POSITION_DETAILS, UNPRICED) if "position" in holding.extra else (UNPRICED,)
    details = {k: holding.extra[k] for k in kept if k in holding.extra}
    return json.dumps(details) if details else None


def _details(raw: object) -> dict[str, str]:
    # asyncpg hands jsonb over as text unless a codec is registered.
    loaded = json.loads(raw) if isinstance(raw, str) else raw
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


async def replace_wallet_holdings(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    chain: str,
    holdings: Sequence[Holding],
    observed_at: datetime,
) -> None:
    """Store a fresh read of one wallet: upsert what it holds, delete what it no longer holds.

    A holding whose amount is unknown (its call failed) keeps its last known amount and value,
    or none at all, with the reason in `error` — an unknown is never written as zero. The chain
    was read, so no row of this wallet is chain-stale afterwards.
    """
    keep: list[str] = []
    for h in holdings:
        keep.append(f"{h.contract}|{h.category.value}")
        params = {
            "u": user_id,
            "w": wallet_id,
            "chain": chain,
            "asset": h.symbol,
            "balance": h.balance,
            "value": h.value_usd,
            "t": observed_at,
            "cid": h.chain_id,
            "contract": h.contract,
            "kind": h.kind.value,
            "cat": h.category.value,
            "dec": h.decimals,
            "amount": h.amount,
            "price": h.price.usd if h.price else None,
            "src": h.price.source if h.price else None,
            "pt": h.price.updated_at if h.price else None,
            "block": h.block_number,
            "stale": False,
            "err": h.error,
            "details": position_details(h),
        }
        if h.amount is None:
            await db.execute(
                text(
                    """INSERT INTO portfolio_assets (user_id, wallet_id, chain, asset, balance,
                        value_usd, updated_at, chain_id, contract, kind, category, decimals,
                        stale, error)
                    VALUES (:u, :w, :chain, :asset, NULL, NULL, :t, :cid, :contract, :kind, :cat,
                        :dec, false, :err)
                    ON CONFLICT (wallet_id, contract, category) DO UPDATE
                    SET stale = false, error = excluded.error"""
                ),
                params,
            )
            continue
        await db.execute(
            text(
                """INSERT INTO portfolio_assets (user_id, wallet_id, chain, asset, balance,
                    value_usd, updated_at, chain_id, contract, kind, category, decimals, amount,
                    price, price_source, price_updated_at, block_number, stale, error, details)
                VALUES (:u, :w, :chain, :asset, :balance, :value, :t, :cid, :contract, :kind,
                    :cat, :dec, :amount, :price, :src, :pt, :block, :stale, :err,
                    CAST(:details AS jsonb))
                ON CONFLICT (wallet_id, contract, category) DO UPDATE SET
                    chain = excluded.chain, asset = excluded.asset, balance = excluded.balance,
                    value_usd = excluded.value_usd, updated_at = excluded.updated_at,
                    kind = excluded.kind, decimals = excluded.decimals, amount = excluded.amount,
                    price = excluded.price, price_source = excluded.price_source,
                    price_updated_at = excluded.price_updated_at,
                    block_number = excluded.block_number, stale = excluded.stale,
                    error = excluded.error, details = excluded.details"""
            ),
            params,
        )
    await db.execute(
        text(
            "DELETE FROM portfolio_assets WHERE wallet_id = :w "
            "AND NOT (contract || '|' || category = ANY(:keep))"
        ),
        {"w": wallet_id, "keep": keep},
    )


async def mark_wallet_stale(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    chain: str,
    error: str,
    unread: Holding,
    observed_at: datetime,
) -> None:
    """The chain could not be read: keep last known values, flag them stale with the reason.

    A wallet never read yet has no last known values: `unread` (its native coin, amount
    unknown) is stored in their place, so the portfolio shows an unknown holding with the
    reason rather than nothing — which would read as a zero.
    """
    updated = await db.execute(
        text("UPDATE portfolio_assets SET stale = true, error = :e WHERE wallet_id = :w"),
        {"w": wallet_id, "e": error},
    )
    if updated.rowcount:
        return
    await db.execute(
        text(
            """INSERT INTO portfolio_assets (user_id, wallet_id, chain, asset, balance, value_usd,
                updated_at, chain_id, contract, kind, category, decimals, stale, error)
            VALUES (:u, :w, :chain, :asset, NULL, NULL, :t, :cid, :contract, :kind, :cat, :dec,
                true, :e)"""
        ),
        {
            "u": user_id,
            "w": wallet_id,
            "chain": chain,
            "asset": unread.symbol,
            "t": observed_at,
            "cid": unread.chain_id,
            "contract": unread.contract,
            "kind": unread.kind.value,
            "cat": unread.category.value,
            "dec": unread.decimals,
            "e": error,
        },
    )


FROM_CURRENT = """FROM portfolio_assets pa JOIN wallets w ON w.id = pa.wallet_id
    WHERE pa.user_id = $1
    ORDER BY abs(pa.value_usd) DESC NULLS LAST, pa.chain_id, pa.asset, w.address, pa.contract,
        pa.kind, pa.category"""
_CURRENT = f"""SELECT pa.chain_id, w.address, pa.asset, pa.contract, pa.kind, pa.category,
        pa.decimals, pa.amount, pa.price, pa.price_source, pa.price_updated_at, pa.block_number,
        pa.error, pa.stale, pa.chain, pa.wallet_id, pa.updated_at, pa.details
    {FROM_CURRENT}"""
HOLDING_COLUMNS = """pa.chain_id, w.address, pa.asset, pa.contract, pa.category, pa.decimals,
    pa.amount::text, pa.price, pa.price_source, pa.error, pa.stale, pa.chain,
    (extract(epoch FROM pa.updated_at) * 1000000)::int8"""
"""The columns `holding_rows` reads, selected `FROM_CURRENT`. Decoding is most of a read's
cost: 36 `timestamptz` values took asyncpg ~60 us and 72 `numeric` ~45 us (a `SELECT 1`
round trip ~55 us). The amount is an integer (`numeric(78, 0)`), read exactly from its text;
the time as whole microseconds, turned into one `datetime` per distinct value (a refresh
writes one time per wallet)."""

_KINDS = {k.value: k for k in AssetKind}
_CATEGORIES = {c.value: c for c in Category}


async def current_holdings(db: AsyncConnection, *, user_id: uuid.UUID) -> list[StoredHolding]:
    """Everything the user holds, as last stored; largest value first, unpriced last.

    Read on the asyncpg driver connection (inside the caller's transaction, if any) with a
    statement asyncpg prepares once per connection: this is the API's hottest read, and
    SQLAlchemy's text() + Row path cost four times the query itself (docs/BENCHMARKS.md).
    """
    driver = await driver_connection(db)
    rows = await driver.fetch(_CURRENT, user_id)
    result: list[StoredHolding] = []
    for (
        chain_id,
        address,
        asset,
        contract,
        kind,
        category,
        decimals,
        amount,
        price,
        price_source,
        price_updated_at,
        block_number,
        error,
        stale,
        chain,
        wallet_id,
        updated_at,
        details,
    ) in rows:
        holding = Holding(
            chain_id=chain_id,
            wallet=address,
            symbol=asset,
            contract=contract,
            kind=_KINDS[kind],
            category=_CATEGORIES[category],
            decimals=decimals,
            amount=None if amount is None else int(amount),
            price=None if price is None else Price(asset, price, price_source, price_updated_at),
            block_number=block_number,
            error=error,
            stale=stale or error is not None,
            observed_at=updated_at,
            extra=_details(details),
        )
        result.append(StoredHolding(holding, chain, wallet_id, updated_at, stale))
    return result


class HoldingRow(NamedTuple):
    """A stored holding as `current_holdings` reads it, with its balance and value, in the
    plain form of the row: what an answer that only shows holdings needs. Building the
    `Holding`, `Price` and `StoredHolding` of a row costs ~3.5 µs, a tuple ~0.2 µs — most of
    the uncached REST `/v1/portfolio` answer's own work at 36 holdings."""

    chain_id: int
    wallet: str
    symbol: str
    contract: str
    category: str
    """`Category` value."""
    decimals: int
    amount: int | None
    price_usd: Decimal | None
    price_source: str | None
    """None when the holding has no price (as `Holding.price` is None)."""
    error: str | None
    stale: bool
    """`Holding.stale`: the chain could not be read, or this holding's call failed."""
    chain_stale: bool
    chain: str
    updated_at: datetime
    balance: Decimal | None
    value_usd: Decimal | None

    @classmethod
    def of(cls, stored: StoredHolding) -> HoldingRow:
        """The row of a holding read by `current_holdings`."""
        h = stored.holding
        return cls(
            h.chain_id,
            h.wallet,
            h.symbol,
            h.contract,
            h.category.value,
            h.decimals,
            h.amount,
            h.price.usd if h.price else None,
            h.price.source if h.price else None,
            h.error,
            h.stale,
            stored.chain_stale,
            stored.chain,
            stored.updated_at,
            stored.balance,
            stored.value_usd,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def holding_rows(records: Iterable[Sequence[Any]]) -> list[HoldingRow]:
    """`current_holdings` as `HoldingRow`s, in the same order, from asyncpg records whose
    first columns are `HOLDING_COLUMNS` (more may follow)."""
    make = HoldingRow._make
    times: dict[int, datetime] = {}
    result: list[HoldingRow] = []
    for (
        chain_id,
        address,
        asset,
        contract,
        category,
        decimals,
        amount,
        price,
        price_source,
        error,
        stale,
        chain,
        micros,
        *_,
    ) in records:
        units = balance = value = None
        if amount is not None:
            units = int(amount)
            balance = balance_of(units, decimals)
            if price is not None:
                value = value_of(balance, price, category)
        updated_at = times.get(micros)
        if updated_at is None:
            updated_at = times[micros] = _EPOCH + timedelta(microseconds=micros)
        result.append(
            make(
                (
                    chain_id,
                    address,
                    asset,
                    contract,
                    category,
                    decimals,
                    units,
                    price,
                    None if price is None else price_source,
                    error,
                    stale or error is not None,
                    stale,
                    chain,
                    updated_at,
                    balance,
                    value,
                )
            )
        )
    return result
