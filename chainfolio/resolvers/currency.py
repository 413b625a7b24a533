"""Money in the display currency: USD figures divided by the stored Chainlink rate (USD per
unit of the currency) nearest each figure's own time; a series is converted point by point.

A figure whose time has no rate stored near it is unknown (None), never converted at another
time's rate; a series point without a rate becomes a gap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from chainfolio.core.currencies import CURRENCIES, USD
from chainfolio.resolvers.history import HistoryView
from chainfolio.storage.history import SeriesPoint
from chainfolio.storage.prices import prices_nearest

FIAT_RATE_WINDOW = timedelta(hours=24)
"""Chainlink FX feeds update on a 24 h heartbeat: a stored rate this near is the feed's own."""
CRYPTO_RATE_WINDOW = timedelta(minutes=90)


class Rates:
    """USD per unit of one display currency at given moments (the stored rate nearest each)."""

    def __init__(self, currency: str, found: Mapping[datetime, Decimal]) -> None:
        self.currency = currency
        self._found = found

    def rate(self, moment: datetime) -> Decimal | None:
        """USD per unit of the currency at `moment` (None: no rate stored near it)."""
        if self.currency == USD:
            return Decimal(1)
        return self._found.get(moment)

    def convert(self, usd: Decimal | None, moment: datetime) -> Decimal | None:
        """`usd` in the currency at `moment` (None when either is unknown)."""
        if usd is None:
            return None
        if self.currency == USD:
            return usd
        rate = self._found.get(moment)
        return None if rate is None else usd / rate


def rate_source(currency: str) -> tuple[str, timedelta]:
    """The price symbol of a display currency's rate, and how near a stored rate must be."""
    window = CRYPTO_RATE_WINDOW if CURRENCIES[currency].crypto else FIAT_RATE_WINDOW
    return CURRENCIES[currency].price_symbol, window


async def load_rates(db: AsyncConnection, currency: str, moments: Collection[datetime]) -> Rates:
    """The currency's stored rates nearest each of `moments` (one query)."""
    if currency == USD or not moments:
        return Rates(currency, {})
    symbol, window = rate_source(currency)
    found = await prices_nearest(db, [(symbol, m) for m in set(moments)], window=window)
    return Rates(currency, {moment: price for (_, moment), (_, price) in found.items()})


async def convert_history(db: AsyncConnection, view: HistoryView, currency: str) -> HistoryView:
    """`view` in `currency`: each point divided by the rate at its own snapshot time."""
    if currency == USD:
        return view
    if len(view.points) > _LONG_SERIES:
        # the points of a columnar series are made on first use (10,000: ~10 ms): in a
        # thread, as the conversion below (issue 21)
        moments = await asyncio.to_thread(lambda: [p.timestamp for p in view.points])
    else:
        moments = [p.timestamp for p in view.points]
    rates = await load_rates(db, currency, moments)
    if len(view.points) > _LONG_SERIES:
        # 10,000 points took 10-30 ms: in a thread, the event loop keeps serving (issue 21)
        return await asyncio.to_thread(_converted, view, rates)
    return _converted(view, rates)


_LONG_SERIES = 2_000


def _converted(view: HistoryView, rates: Rates) -> HistoryView:
    points: list[SeriesPoint] = []
    gaps = list(view.gaps)
    for p in view.points:
        value = rates.convert(p.total_value, p.timestamp)
        if value is None:
            gaps.append(p.bucket)
        else:
            points.append(p._replace(total_value=value))
    return replace(view, points=points, gaps=sorted(gaps))
