"""Users, wallets and allocation targets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import orjson
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.errors import InvalidInput, NotFound, Unprocessable
from chainfolio.core.inputs import checked_decimal

_USER_NAMESPACE = uuid.UUID("5b0e7c1e-6f3a-4c55-9a7e-1b1d8f0c2a90")
# The issuer of tokens without an `iss` claim (the HS256 dev tokens), and of every user that
# existed before users were keyed by (issuer, subject).
NO_ISSUER = ""
MAX_IDENTITY_CHARS = 255


def user_id_for(subject: str, issuer: str = NO_ISSUER) -> uuid.UUID:
    """The id a user created for exactly (`issuer`, `subject`) is given.

    Only the id of a new row: users are found by the exact pair in `users`, never by
    computing this (rows from before the (issuer, subject) key keep their old ids). The pair
    is hashed as it is — no case folding, no UUID parsing — so two subjects never share an id.
    """
    return uuid.uuid5(_USER_NAMESPACE, f"{len(issuer)}:{issuer}{subject}")


async def ensure_user(db: AsyncConnection, *, subject: str, issuer: str = NO_ISSUER) -> uuid.UUID:
    """The id of the user (`issuer`, `subject`), created on first sight."""
    found = await db.scalar(
        text("SELECT id FROM users WHERE issuer = :i AND subject = :s"),
        {"i": issuer, "s": subject},
    )
    if found is None and issuer != NO_ISSUER:
        # a user from before the (issuer, subject) key, with this exact subject
        found = await db.scalar(
            text(
                "UPDATE users SET issuer = :i, unclaimed = false "
                "WHERE issuer = '' AND subject = :s AND unclaimed RETURNING id"
            ),
            {"i": issuer, "s": subject},
        )
    if found is not None:
        return uuid.UUID(str(found))
    # No conflict target: concurrent first sights of one subject insert the same id, and with
    # `ON CONFLICT (issuer, subject)` the primary key (checked first, as the older index) is
    # not an arbiter, so the loser of that race got a unique violation (a 500) instead of
    # nothing. The id is derived from (issuer, subject), so any conflict is this very user.
    await db.execute(
        text("INSERT INTO users (id, issuer, subject) VALUES (:id, :i, :s) ON CONFLICT DO NOTHING"),
        {"id": user_id_for(subject, issuer), "i": issuer, "s": subject},
    )
    created = await db.scalar(
        text("SELECT id FROM users WHERE issuer = :i AND subject = :s"),
        {"i": issuer, "s": subject},
    )
    if created is None:  # an id taken by another subject: a uuid5 collision, never seen
        raise RuntimeError(f"user id {user_id_for(subject, issuer)} is taken by another subject")
    return uuid.UUID(str(created))


@dataclass(frozen=True, slots=True)
class Wallet:
    """A tracked address on one chain."""

    id: uuid.UUID
    user_id: uuid.UUID
    chain_id: int
    address: str
    label: str | None
    created_at: datetime


_WALLET_COLUMNS = "id, user_id, chain_id, address, label, created_at"


async def add_wallet(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    chain_id: int,
    address: str,
    label: str | None,
    max_wallets: int,
) -> Wallet:
    """Track `address` on `chain_id` for the user (address already EIP-55 normalised).

    The user's row is locked for the transaction before counting: concurrent adds of one user
    count one after another, so the cap holds (without it, 20 concurrent adds at 95 of 100
    all saw 95 and stored 115).
    """
    await db.execute(text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"), {"u": user_id})
    count = await db.scalar(text("SELECT count(*) FROM wallets WHERE user_id = :u"), {"u": user_id})
    if int(count or 0) >= max_wallets:
        raise Unprocessable(f"wallet limit reached ({max_wallets} per user)", code="LIMIT_EXCEEDED")
    try:
        async with db.begin_nested():
            row = (
                await db.execute(
                    text(
                        f"INSERT INTO wallets (user_id, chain_id, address, label) "
                        f"VALUES (:u, :c, :a, :l) RETURNING {_WALLET_COLUMNS}"
                    ),
                    {"u": user_id, "c": chain_id, "a": address, "l": label},
                )
            ).one()
    except IntegrityError as exc:
        raise Unprocessable(
            f"wallet {address} on chain {chain_id} is already tracked", code="DUPLICATE_WALLET"
        ) from exc
    return Wallet(*row)


async def list_wallets(db: AsyncConnection, *, user_id: uuid.UUID) -> list[Wallet]:
    """The user's wallets, oldest first."""
    rows = await db.execute(
        text(f"SELECT {_WALLET_COLUMNS} FROM wallets WHERE user_id = :u ORDER BY created_at, id"),
        {"u": user_id},
    )
    return [Wallet(*row) for row in rows]


async def all_wallets(db: AsyncConnection) -> list[Wallet]:
    """Every tracked wallet (for the refresh worker)."""
    rows = await db.execute(text(f"SELECT {_WALLET_COLUMNS} FROM wallets ORDER BY chain_id, id"))
    return [Wallet(*row) for row in rows]


async def remove_wallet(db: AsyncConnection, *, user_id: uuid.UUID, wallet_id: uuid.UUID) -> None:
    """Stop tracking a wallet of this user (its holdings go with it; history stays)."""
    result = await db.execute(
        text("DELETE FROM wallets WHERE id = :w AND user_id = :u RETURNING id"),
        {"w": wallet_id, "u": user_id},
    )
    if result.first() is None:
        raise NotFound(f"wallet {wallet_id} not found")


@dataclass(frozen=True, slots=True)
class AllocationTarget:
    """Target weight (0..1) for an asset or a named group of assets."""

    key: str
    weight: Decimal
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    """A user's targets with the drift band and minimum trade size."""

    targets: tuple[AllocationTarget, ...]
    band: Decimal
    min_trade_usd: Decimal


async def set_targets(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    targets: list[AllocationTarget],
    band: Decimal,
    min_trade_usd: Decimal,
) -> None:
    """Replace the user's allocation targets (weights already validated)."""
    await db.execute(text("DELETE FROM allocation_targets WHERE user_id = :u"), {"u": user_id})
    if targets:
        await db.execute(
            text(
                "INSERT INTO allocation_targets (user_id, key, weight, members) "
                "VALUES (:u, :k, :w, CAST(:m AS jsonb))"
            ),
            [
                {
                    "u": user_id,
                    "k": t.key,
                    "w": t.weight,
                    "m": orjson.dumps(list(t.members)).decode(),
                }
                for t in targets
            ],
        )
    await db.execute(
        text(
            "INSERT INTO allocation_settings (user_id, band, min_trade_usd) VALUES (:u, :b, :m) "
            "ON CONFLICT (user_id) DO UPDATE SET band = excluded.band, "
            "min_trade_usd = excluded.min_trade_usd"
        ),
        {"u": user_id, "b": band, "m": min_trade_usd},
    )


async def get_policy(db: AsyncConnection, *, user_id: uuid.UUID) -> AllocationPolicy:
    """The user's allocation policy (no targets and default band when never set)."""
    rows = await db.execute(
        text("SELECT key, weight, members FROM allocation_targets WHERE user_id = :u ORDER BY key"),
        {"u": user_id},
    )
    targets = tuple(
        AllocationTarget(k, _stored(w, "target weight", high=1), tuple(m)) for k, w, m in rows
    )
    settings = (
        await db.execute(
            text("SELECT band, min_trade_usd FROM allocation_settings WHERE user_id = :u"),
            {"u": user_id},
        )
    ).first()
    band, min_trade = settings if settings else (Decimal("0.05"), Decimal(50))
    return AllocationPolicy(
        targets,
        _stored(band, "band", high=Decimal("0.5")),
        _stored(min_trade, "minTradeUsd", high=MAX_TRADE_USD),
    )


MAX_TRADE_USD = Decimal(10) ** 12


def _stored(value: object, name: str, *, high: Decimal | int) -> Decimal:
    """A stored number re-checked on read: a row written around the API's checks (by hand,
    by an older version) is refused as itself, not as a failure of every answer using it."""
    try:
        return checked_decimal(Decimal(str(value)), name=name, low=Decimal(0), high=Decimal(high))
    except InvalidInput as exc:
        raise Unprocessable(
            f"the stored {name} is invalid ({exc.message}): set the allocation targets again",
            code="INVALID_STORED_VALUE",
        ) from exc
