"""The price order: each source asked, in turn, only for what the ones before left unpriced."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from chainfolio.core.domain import Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.prices.base import PriceSource

log = logging.getLogger(__name__)


class CompositePriceSource:
    """Tries its sources in order, each only for the symbols still missing."""

    name = "composite"

    def __init__(self, sources: Sequence[PriceSource]) -> None:
        self.sources = list(sources)

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices from the first source that has a usable value for each symbol."""
        found: dict[str, Price] = {}
        missing = set(symbols)
        for source in self.sources:
            if not missing:
                break
            try:
                got = await source.prices(missing)
            except SourceUnavailable as exc:
                log.warning("price source %s unavailable: %s", source.name, exc.message)
                continue
            found.update({s: p for s, p in got.items() if s in missing})
            missing -= got.keys()
        return found
