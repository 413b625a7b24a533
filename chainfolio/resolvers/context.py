"""What every resolver call is given: the process's services and the caller."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import WALLETS_CHANNEL, Bus
from chainfolio.core.cache import AnswerCache, NoCache
from chainfolio.core.settings import Settings
from chainfolio.fetchers.config import SWAP_GAS_UNITS

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChainInfo:
    """What the API needs to know of a configured chain."""

    chain_id: int
    name: str
    native_symbol: str = "ETH"
    native_price_symbol: str = "ETH"
    gas_price_gwei: Decimal | None = None
    swap_gas_units: int = SWAP_GAS_UNITS


@dataclass(slots=True)
class Services:
    """Process-wide clients, created in the app lifespan and closed there."""

    settings: Settings
    engine: AsyncEngine
    chains: Mapping[int, ChainInfo]
    bus: Bus
    clock: Callable[[], datetime] = utc_now
    cache: AnswerCache = field(default_factory=NoCache)

    async def changed(self, user_id: uuid.UUID, *, wallets: bool = False) -> None:
        """After a committed change of the user's data: drop their cached answers; when their
        wallets changed, ask the worker to refresh them now (`WALLETS_CHANNEL`)."""
        await self.cache.invalidate([user_id])
        if wallets:
            try:
                await self.bus.publish(WALLETS_CHANNEL, str(user_id))
            except Exception:  # committed already: the worker's next cycle reads the wallets
                log.warning("could not ask the worker to refresh %s now", user_id, exc_info=True)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user of one request."""

    user_id: uuid.UUID
    subject: str
    rate_key: str  # the per-user rate limit's key (`api.web`)
    expires_at: float | None = None
    """The token's `exp` (Unix seconds): a websocket is closed then."""
