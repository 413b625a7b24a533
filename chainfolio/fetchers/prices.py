"""USD prices behind one batched `PriceSource` protocol.

* `ChainlinkPriceSource` reads AggregatorV3 `latestRoundData` + `decimals` through Multicall3
  on the chains that list a feed for the symbol (config order = preference). An answer older
  than the feed's `max_age`, non-positive or never updated is not used: the next chain with
  that feed is tried, and if none has a usable answer the symbol is absent.
* `DexPriceSource` reads Uniswap V2-style pairs (`getReserves`, `token0`) through Multicall3:
  the token's price in the pair's quote token times the quote's USD price (from the feeds),
  for tokens no feed covers. Pools thinner than their `min_liquidity_usd` are not used.
* `HttpPriceSource` asks a CoinGecko-style `/simple/price` API (off by default).
* `CompositePriceSource` asks its sources in order for whatever is still missing.

Values are exact Decimals built from the integer answers; every Price names its source and
when the value was last updated.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any, Protocol

import httpx
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

from chainfolio.core.domain import Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import (
    ChainConfig,
    DexPoolConfig,
    HttpPriceConfig,
    PriceFeedConfig,
)
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.multicall import (
    DECIMALS,
    GET_RESERVES,
    LATEST_ROUND_DATA,
    TOKEN0,
    Call,
    CallResult,
    MalformedResult,
    decode_uint,
    gather_all,
)

log = logging.getLogger(__name__)

USD = "USD"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PriceSource(Protocol):
    """Anything that prices many symbols in USD in one call."""

    name: str

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for the symbols it can price now; unknown or unusable ones are absent."""
        ...


@dataclass(frozen=True, slots=True)
class _Answer:
    value: Decimal
    updated_at: datetime
    source: str
    quote: str


class ChainlinkPriceSource:
    """AggregatorV3 feeds read through Multicall3 on the configured chains."""

    name = "chainlink"

    def __init__(
        self, readers: Sequence[EvmChainReader], *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._readers = list(readers)
        self._clock = clock
        self._feed_decimals: dict[tuple[int, str], int] = {}

    def _candidates(self, symbol: str) -> list[tuple[EvmChainReader, PriceFeedConfig]]:
        return [
            (reader, reader.chain.price_feeds[symbol])
            for reader in self._readers
            if symbol in reader.chain.price_feeds
        ]

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for `symbols` (feeds quoted in another symbol are converted to USD)."""
        needed = self._with_quotes(symbols)
        answers = await self._answers(needed)
        prices: dict[str, Price] = {}
        for symbol in symbols:
            price = self._resolve(symbol, answers, depth=0)
            if price is not None:
                prices[symbol] = price
        return prices

    def _with_quotes(self, symbols: Collection[str]) -> set[str]:
        needed: set[str] = set()
        frontier = [s for s in symbols if s != USD]
        while frontier:
            symbol = frontier.pop()
            if symbol in needed:
                continue
            needed.add(symbol)
            frontier += [f.quote for _, f in self._candidates(symbol) if f.quote != USD]
        return needed

    async def _answers(self, symbols: set[str]) -> dict[str, _Answer]:
        answers: dict[str, _Answer] = {}
        queues = {s: self._candidates(s) for s in symbols}
        while True:
            by_chain: dict[int, tuple[EvmChainReader, dict[str, PriceFeedConfig]]] = {}
            for symbol, queue in queues.items():
                if symbol not in answers and queue:
                    reader, feed = queue.pop(0)
                    by_chain.setdefault(reader.chain.chain_id, (reader, {}))[1][symbol] = feed
            if not by_chain:
                return answers
            for found in await gather_all(
                [self._read_feeds(reader, feeds) for reader, feeds in by_chain.values()]
            ):
                answers.update(found)

    async def _read_feeds(
        self, reader: EvmChainReader, feeds: Mapping[str, PriceFeedConfig]
    ) -> dict[str, _Answer]:
        chain = reader.chain
        calls = [Call(feed.aggregator, LATEST_ROUND_DATA) for feed in feeds.values()]
        unknown = [
            f.aggregator
            for f in feeds.values()
            if (chain.chain_id, f.aggregator) not in self._feed_decimals
        ]
        calls += [Call(aggregator, DECIMALS) for aggregator in unknown]
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("price feeds on %s unavailable: %s", chain.name, exc.message)
            return {}
        for aggregator, result in zip(unknown, results[len(feeds) :], strict=True):
            try:
                self._feed_decimals[(chain.chain_id, aggregator)] = decode_uint(result)
            except MalformedResult as exc:
                log.warning("%s feed %s decimals(): %s", chain.name, aggregator, exc)
        now = self._clock()
        answers: dict[str, _Answer] = {}
        for (symbol, feed), result in zip(feeds.items(), results[: len(feeds)], strict=True):
            decimals = self._feed_decimals.get((chain.chain_id, feed.aggregator))
            answer = _round_answer(result, decimals, feed, now) if decimals is not None else None
            if isinstance(answer, str) or answer is None:
                log.warning(
                    "%s %s feed %s not used: %s",
                    chain.name,
                    symbol,
                    feed.aggregator,
                    answer or "decimals unknown",
                )
                continue
            value, updated_at = answer
            answers[symbol] = _Answer(value, updated_at, f"chainlink:{chain.name}", feed.quote)
        return answers

    def _resolve(self, symbol: str, answers: Mapping[str, _Answer], depth: int) -> Price | None:
        answer = answers.get(symbol)
        if answer is None or depth > 4:
            return None
        if answer.quote == USD:
            return Price(symbol, answer.value, answer.source, answer.updated_at)
        quote = self._resolve(answer.quote, answers, depth + 1)
        if quote is None:
            return None
        with localcontext() as exact:
            exact.prec = 200
            usd = answer.value * quote.usd
        return Price(
            symbol,
            usd,
            f"{answer.source} ({symbol}/{answer.quote} x {quote.source})",
            min(answer.updated_at, quote.updated_at),
        )


def _round_answer(
    result: CallResult, decimals: int, feed: PriceFeedConfig, now: datetime
) -> tuple[Decimal, datetime] | str:
    """(value, updated_at) from a latestRoundData result, or why it cannot be used."""
    if not result.success:
        return result.error or "latestRoundData failed"
    try:
        _, answer, _, updated_at, _ = decode(
            ["uint80", "int256", "uint256", "uint256", "uint80"], result.data
        )
    except (DecodingError, ValueError, OverflowError) as exc:
        return f"undecodable latestRoundData: {exc}"
    if answer <= 0:
        return f"non-positive answer {answer}"
    if updated_at == 0:
        return "round never updated"
    when = datetime.fromtimestamp(updated_at, UTC)
    age = (now - when).total_seconds()
    if age > feed.max_age:
        return f"stale: updated {age:.0f}s ago, max_age {feed.max_age}s"
    return Decimal(answer).scaleb(-decimals), when


@dataclass(frozen=True, slots=True)
class _Pool:
    reader: EvmChainReader
    token: str
    """Symbol (in the chain's tokens) of the token the pool prices."""
    config: DexPoolConfig


class DexPriceSource:
    """Uniswap V2-style pairs: reserve(quote) / reserve(token) x the quote's USD price."""

    name = "dex"

    def __init__(
        self,
        readers: Sequence[EvmChainReader],
        *,
        quotes: PriceSource,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._readers = list(readers)
        self._quotes = quotes
        self._clock = clock
        self._token0: dict[tuple[int, str], str] = {}
        self._decimals: dict[tuple[int, str], int] = {}

    def _pools(self, symbols: Collection[str]) -> dict[str, list[_Pool]]:
        pools: dict[str, list[_Pool]] = {}
        for reader in self._readers:
            chain = reader.chain
            for token, config in chain.dex_pools.items():
                key = chain.token(token).price_key
                if key in symbols:
                    pools.setdefault(key, []).append(_Pool(reader, token, config))
        return pools

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for the symbols a usable pool covers (config order = preference)."""
        pools = self._pools(symbols)
        if not pools:
            return {}
        quote_keys = {
            p.reader.chain.token(p.config.quote).price_key for ps in pools.values() for p in ps
        }
        quotes = await self._quotes.prices(quote_keys)
        by_chain: dict[int, list[_Pool]] = {}
        for candidates in pools.values():
            for pool in candidates:
                by_chain.setdefault(pool.reader.chain.chain_id, []).append(pool)
        found: dict[tuple[int, str], Price] = {}
        for chain_prices in await gather_all(
            [self._read_pools(chain_pools, quotes) for chain_pools in by_chain.values()]
        ):
            found.update(chain_prices)
        prices: dict[str, Price] = {}
        for symbol, candidates in pools.items():
            for pool in candidates:
                price = found.get((pool.reader.chain.chain_id, pool.token))
                if price is not None:
                    prices[symbol] = Price(symbol, price.usd, price.source, price.updated_at)
                    break
        return prices

    async def _read_pools(
        self, pools: Sequence[_Pool], quotes: Mapping[str, Price]
    ) -> dict[tuple[int, str], Price]:
        reader = pools[0].reader
        chain = reader.chain
        calls = [Call(p.config.pair, GET_RESERVES) for p in pools]
        pairs = sorted(
            {p.config.pair for p in pools if (chain.chain_id, p.config.pair) not in self._token0}
        )
        tokens = sorted(
            {
                address
                for p in pools
                for address in (chain.token(p.token).address, chain.token(p.config.quote).address)
                if self._decimals_of(chain, address) is None
            }
        )
        calls += [Call(pair, TOKEN0) for pair in pairs]
        calls += [Call(address, DECIMALS) for address in tokens]
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("DEX pools on %s unavailable: %s", chain.name, exc.message)
            return {}
        learned = iter(results[len(pools) :])
        for pair in pairs:
            result = next(learned)
            if result.success and len(result.data) == 32:
                self._token0[(chain.chain_id, pair)] = to_checksum_address(result.data[12:])
        for address in tokens:
            try:
                decimals = decode_uint(next(learned))
            except MalformedResult:
                continue
            if decimals <= 255:
                self._decimals[(chain.chain_id, address)] = decimals
        now = self._clock()
        prices: dict[tuple[int, str], Price] = {}
        for pool, result in zip(pools, results[: len(pools)], strict=True):
            price = self._pool_price(chain, pool, result, quotes, now)
            if isinstance(price, str):
                log.warning(
                    "%s %s pool %s not used: %s", chain.name, pool.token, pool.config.pair, price
                )
                continue
            prices[(chain.chain_id, pool.token)] = price
        return prices

    def _decimals_of(self, chain: ChainConfig, address: str) -> int | None:
        configured = chain.token(address).decimals
        return (
            configured if configured is not None else self._decimals.get((chain.chain_id, address))
        )

    def _pool_price(
        self,
        chain: ChainConfig,
        pool: _Pool,
        result: CallResult,
        quotes: Mapping[str, Price],
        now: datetime,
    ) -> Price | str:
        """The pool's USD price of its token, or why it cannot be used."""
        quote_price = quotes.get(chain.token(pool.config.quote).price_key)
        if quote_price is None:
            return f"no USD price for its quote {pool.config.quote}"
        reserves = self._reserves(chain, pool, result)
        if isinstance(reserves, str):
            return reserves
        token_units, quote_units = reserves
        with localcontext() as exact:
            exact.prec = 200
            liquidity = quote_units * quote_price.usd
            if liquidity < pool.config.min_liquidity_usd:
                return f"quote side worth {liquidity:.2f} USD < {pool.config.min_liquidity_usd}"
            usd = quote_units / token_units * quote_price.usd
        source = f"dex:{chain.name} ({pool.token}/{pool.config.quote} x {quote_price.source})"
        return Price(
            chain.token(pool.token).price_key, usd, source, min(now, quote_price.updated_at)
        )

    def _reserves(
        self, chain: ChainConfig, pool: _Pool, result: CallResult
    ) -> tuple[Decimal, Decimal] | str:
        """(token, quote) reserves in whole units from getReserves(), or why not."""
        token, quote = chain.token(pool.token), chain.token(pool.config.quote)
        token0 = self._token0.get((chain.chain_id, pool.config.pair))
        decimals = (
            self._decimals_of(chain, token.address),
            self._decimals_of(chain, quote.address),
        )
        problem = None
        if token0 not in (token.address, quote.address):
            problem = f"pair's token0 {token0} is neither {pool.token} nor {pool.config.quote}"
        elif decimals[0] is None or decimals[1] is None:
            problem = "token decimals unknown"
        elif not result.success:
            problem = result.error or "getReserves() failed"
        if problem is not None or decimals[0] is None or decimals[1] is None:
            return problem or "token decimals unknown"
        try:
            reserve0, reserve1, _ = decode(["uint112", "uint112", "uint32"], result.data)
        except (DecodingError, ValueError, OverflowError) as exc:
            return f"undecodable getReserves: {exc}"
        token_raw, quote_raw = (
            (reserve0, reserve1) if token0 == token.address else (reserve1, reserve0)
        )
        if token_raw <= 0 or quote_raw <= 0:
            return "empty pool"
        return Decimal(token_raw).scaleb(-decimals[0]), Decimal(quote_raw).scaleb(-decimals[1])


class HttpPriceSource:
    """A CoinGecko-style `GET {base_url}/simple/price?ids=…&vs_currencies=usd` API."""

    name = "http"

    def __init__(
        self,
        http: httpx.AsyncClient,
        config: HttpPriceConfig,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = _utcnow,
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
