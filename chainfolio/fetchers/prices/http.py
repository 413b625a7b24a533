"""A CoinGecko-style HTTP price API (off by default), asked last: by coin id for symbols, by
contract address for listed and discovered tokens."""

from __future__ import annotations

import asyncio
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
from chainfolio.fetchers.prices.base import parse_address_key, utcnow

log = logging.getLogger(__name__)


class HttpPriceSource:
    """A CoinGecko-style API: `GET {base_url}/simple/price?ids=…&vs_currencies=usd` for
    symbols, `GET {base_url}/simple/token_price/{platform}?contract_addresses=…` for address
    keys (`"<chain id>:<address>"`) on chains with a platform id, requests concurrently."""

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
        """Prices for the symbols with a coin id and the address keys with a platform;
        SourceUnavailable when every request failed."""
        base = self._config.base_url.rstrip("/")
        # Per request: its URL, its parameters, and key -> the name of its entry in the answer.
        asks: list[tuple[str, dict[str, str], dict[str, str]]] = []
        ids = {s: self._config.ids[s] for s in symbols if s in self._config.ids}
        if ids:
            params = {"ids": ",".join(sorted(set(ids.values())))}
            asks.append((f"{base}/simple/price", params, ids))
        by_platform: dict[str, dict[str, str]] = {}
        for key in symbols:
            parsed = parse_address_key(key)
            if parsed is not None and parsed[0] in self._config.platforms:
                platform = self._config.platforms[parsed[0]]
                by_platform.setdefault(platform, {})[key] = parsed[1].lower()
        size = self._config.addresses_per_request
        for platform, keys in sorted(by_platform.items()):
            ordered = sorted(keys.items())
            for at in range(0, len(ordered), size):
                chunk = dict(ordered[at : at + size])
                params = {"contract_addresses": ",".join(sorted(chunk.values()))}
                asks.append((f"{base}/simple/token_price/{platform}", params, chunk))
        if not asks:
            return {}
        answers = await asyncio.gather(
            *(self._get(url, params) for url, params, _ in asks), return_exceptions=True
        )
        failures = [a for a in answers if isinstance(a, BaseException)]
        if len(failures) == len(answers):
            raise failures[0]
        now = self._clock()
        prices: dict[str, Price] = {}
        for (url, _, names), body in zip(asks, answers, strict=True):
            if isinstance(body, BaseException):
                log.warning("price API %s failed: %s", url, body)
                continue
            for key, name in names.items():
                price = self._price(key, body.get(name), now)
                if price is not None:
                    prices[key] = price
        return prices

    async def _get(self, url: str, params: Mapping[str, str]) -> dict[str, Any]:
        query = {**params, "vs_currencies": "usd", "include_last_updated_at": "true"}
        try:
            response = await self._http.get(
                url, params=query, headers=self._headers, timeout=self._config.timeout_s
            )
            response.raise_for_status()
            body = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceUnavailable(f"price API {url}: {exc}") from exc
        if not isinstance(body, dict):
            raise SourceUnavailable(f"price API {url}: answer is not a JSON object")
        return body

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
