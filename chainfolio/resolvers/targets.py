"""Allocation targets: validated weights (percent, summing to 100), band and minimum trade."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.errors import InvalidInput
from chainfolio.core.inputs import checked_decimal, checked_text
from chainfolio.storage import accounts
from chainfolio.storage.accounts import AllocationPolicy, AllocationTarget


async def set_allocation_targets(
    db: AsyncConnection,
    *,
    user_id: uuid.UUID,
    targets: Sequence[tuple[str, Decimal, Sequence[str]]],
    band_percent: Decimal,
    min_trade_usd: Decimal,
) -> AllocationPolicy:
    """Replace the user's targets; weights in percent must be within 0..100 and sum to 100."""
    _check_inputs(targets, band_percent, min_trade_usd)
    keys = [key.strip() for key, _, _ in targets]
    if any(not key or len(key) > 100 for key in keys) or len(set(keys)) != len(keys):
        raise InvalidInput(
            "target keys must be unique, non-empty and at most 100 characters",
            code="INVALID_TARGETS",
        )
    if any(not Decimal(0) <= weight <= 100 for _, weight, _ in targets):
        raise InvalidInput(
            "each weight must be between 0 and 100 (percent)", code="INVALID_TARGETS"
        )
    total = sum((weight for _, weight, _ in targets), Decimal(0))
    if targets and total != 100:
        raise InvalidInput(f"weights must sum to 100, not {total}", code="INVALID_TARGETS")
    if not Decimal(0) < band_percent <= 50:
        raise InvalidInput("band must be in (0, 50] percent", code="INVALID_TARGETS")
    if min_trade_usd < 0:
        raise InvalidInput("minimum trade must not be negative", code="INVALID_TARGETS")
    rows = [
        AllocationTarget(key, weight / 100, tuple(members))
        for key, (_, weight, members) in zip(keys, targets, strict=True)
    ]
    await accounts.set_targets(
        db, user_id=user_id, targets=rows, band=band_percent / 100, min_trade_usd=min_trade_usd
    )
    return await accounts.get_policy(db, user_id=user_id)


MAX_TARGETS = 100
MAX_MEMBERS = 100
_CODE = "INVALID_TARGETS"


def _check_inputs(
    targets: Sequence[tuple[str, Decimal, Sequence[str]]],
    band_percent: Decimal,
    min_trade_usd: Decimal,
) -> None:
    """Bounds and text checks before any arithmetic: a NaN or 1e400 never reaches storage."""
    if len(targets) > MAX_TARGETS:
        raise InvalidInput(f"at most {MAX_TARGETS} targets", code=_CODE)
    for key, weight, members in targets:
        checked_text(key, name="target key", max_chars=100, code=_CODE)
        checked_decimal(weight, name="weight", low=Decimal(0), high=Decimal(100), code=_CODE)
        if len(members) > MAX_MEMBERS:
            raise InvalidInput(f"at most {MAX_MEMBERS} members per target", code=_CODE)
        for member in members:
            checked_text(member, name="member", max_chars=100, code=_CODE)
    checked_decimal(band_percent, name="band", low=Decimal(0), high=Decimal(50), code=_CODE)
    checked_decimal(
        min_trade_usd, name="minTradeUsd", low=Decimal(0), high=accounts.MAX_TRADE_USD, code=_CODE
    )
