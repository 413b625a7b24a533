"""A CoinGecko-style HTTP price API (off by default), asked last."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from chainfolio.core.domain import Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import HttpPriceConfig
from chainfolio.fetchers.prices.base import utcnow

log = logging.getLogger(__name__)


class HttpPriceSource:
    """A CoinGecko-style `GET {base_url}/simple/price?ids=…&vs_currencies=usd` API."""

    name = "http"

    def __init__(
        self,
        http: httpx.AsyncClient,
        config: HttpPriceConfig,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._http = http
        self._config = config
        self._clock = clock
        environ = os.environ if env is None else env
        self._headers: dict[str, str] = {}
        if config.api_key_header and config.api_key_env and environ.get(config.api_key_env):
            self._headers[config.api_key_header] = environ[config.api_key_env]

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for the symbols that have a coin id in config; SourceUnavailable on failure."""
        ids = {s: self._config.ids[s] for s in symbols if s in self._config.ids}
        if not ids:
            return {}
        url = self._config.base_url.rstrip("/") + "/simple/price"
        params = {
            "ids": ",".join(sorted(set(ids.values()))),
            "vs_currencies": "usd",
            "include_last_updated_at": "true",
        }
        try:
            response = await self._http.get(
                url, params=params, headers=self._headers, timeout=self._config.timeout_s
            )
            response.raise_for_status()
            body = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceUnavailable(f"price API {url}: {exc}") from exc
        if not isinstance(body, dict):
            raise SourceUnavailable(f"price API {url}: answer is not a JSON object")
        now = self._clock()
        prices: dict[str, Price] = {}
        for symbol, coin in ids.items():
            price = self._price(symbol, body.get(coin), now)
            if price is not None:
                prices[symbol] = price
        return prices

    def _price(self, symbol: str, entry: Any, now: datetime) -> Price | None:
        if not isinstance(entry, dict):
            return None
        usd = entry.get("usd")
        if not isinstance(usd, Decimal) or usd <= 0:
            return None
        updated = entry.get("last_updated_at")
        updated_at = (
            datetime.fromtimestamp(int(updated), UTC) if isinstance(updated, Decimal) else now
        )
        if (now - updated_at).total_seconds() > self._config.max_age:
            log.warning("price API %s value is stale (updated %s)", symbol, updated_at.isoformat())
            return None
        return Price(symbol, usd, f"http:{httpx.URL(self._config.base_url).host}", updated_at)
