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
from fractions import Fraction
from typing import Any, Protocol

import httpx
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

from chainfolio.core.domain import AssetKind, Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import (
    ChainConfig,
    DexPoolConfig,
    HttpPriceConfig,
    PriceFeedConfig,
    TokenConfig,
    UniswapV2Config,
)
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    DECIMALS,
    GET_RESERVES,
    LATEST_ROUND_DATA,
    TOKEN0,
    Call,
    CallResult,
    MalformedResult,
    decode_uint,
    gather_all,
    selector,
    with_address,
    with_addresses,
)
from chainfolio.fetchers.positions import SLOT0, signed, sqrt_ratio_at_tick, words

log = logging.getLogger(__name__)

GET_POOL = selector("getPool(address,address,uint24)")
GET_PAIR = selector("getPair(address,address)")
OBSERVE = selector("observe(uint32[])")

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


@dataclass(frozen=True, slots=True)
class _FoundPool:
    """A factory pool of `token` against a quote token, found once by discovery."""

    version: int
    """3 (UniswapV3Pool) or 2 (UniswapV2Pair)."""
    address: str
    quote: TokenConfig
    fee: int = 0


class UniswapPriceSource:
    """Tokens priced by the pools Uniswap's factories know, for tokens no feed covers.

    Per token and chain, discovery asks the V3 factory's `getPool(token, quote, fee)` over the
    fee tiers and the V2 factory's `getPair(token, quote)` against the quote tokens (WETH,
    USDC, USDT, DAI — those the chain lists), once per process. Each read then asks every
    found pool's state in one Multicall3 call: a V3 pool's `slot0`, `observe([twap, 0])` and
    its quote-token balance; a V2 pair's reserves. The deepest V3 pool whose quote side is worth
    at least the floor prices the token (its TWAP when the observations reach back that far,
    else the spot price); without one, the deepest V2 pair above its floor does. Quote tokens
    are valued by `quotes` (the feeds). Sources name the pool: `uniswap-v3:<chain>:<pool>`.
    """

    name = "uniswap"

    def __init__(
        self,
        readers: Sequence[EvmChainReader],
        *,
        quotes: PriceSource,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._readers = [r for r in readers if r.chain.uniswap_v3 or _v2_factory(r.chain)]
        self._quotes = quotes
        self._clock = clock
        self._pools: dict[tuple[int, str], list[_FoundPool]] = {}
        self._decimals: dict[tuple[int, str], int] = {}

    def _candidates(self, symbols: Collection[str]) -> list[tuple[EvmChainReader, TokenConfig]]:
        found = []
        for reader in self._readers:
            quotes = _quote_tokens(reader.chain)
            for token in reader.chain.tokens:
                if token.spam or token.kind is not AssetKind.ERC20 or token in quotes:
                    continue
                if token.price_key in symbols:
                    found.append((reader, token))
        return found

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for the symbols a usable factory pool covers (first chain in config wins)."""
        candidates = self._candidates(symbols)
        if not candidates:
            return {}
        by_chain: dict[int, list[tuple[EvmChainReader, TokenConfig]]] = {}
        for reader, token in candidates:
            by_chain.setdefault(reader.chain.chain_id, []).append((reader, token))
        await gather_all([self._discover(c) for c in by_chain.values()])
        quote_keys = {
            pool.quote.price_key
            for reader, token in candidates
            for pool in self._pools.get((reader.chain.chain_id, token.address), [])
        }
        quotes = await self._quotes.prices(quote_keys) if quote_keys else {}
        found: dict[str, Price] = {}
        for chain_prices in await gather_all([self._read(c, quotes) for c in by_chain.values()]):
            for symbol, price in chain_prices.items():
                found.setdefault(symbol, price)
        return found

    async def _discover(self, candidates: Sequence[tuple[EvmChainReader, TokenConfig]]) -> None:
        """Ask the factories for each new token's pools (cached, also when none exist)."""
        reader = candidates[0][0]
        chain = reader.chain
        new = [t for _, t in candidates if (chain.chain_id, t.address) not in self._pools]
        if not new:
            return
        v3, v2_factory = chain.uniswap_v3, _v2_factory(chain)
        quotes = _quote_tokens(chain)
        asked: list[tuple[TokenConfig, _FoundPool]] = []
        calls: list[Call] = []
        for token in new:
            for quote in quotes:
                if v3 is not None:
                    for fee in v3.fee_tiers:
                        data = with_addresses(GET_POOL, token.address, quote.address)
                        calls.append(Call(v3.factory, data + fee.to_bytes(32, "big")))
                        asked.append((token, _FoundPool(3, "", quote, fee)))
                if v2_factory is not None:
                    data = with_addresses(GET_PAIR, token.address, quote.address)
                    calls.append(Call(v2_factory, data))
                    asked.append((token, _FoundPool(2, "", quote)))
        addresses = {t.address for t in new} | {q.address for q in quotes}
        unknown = sorted(a for a in addresses if self._decimals_of(chain, a) is None)
        calls += [Call(address, DECIMALS) for address in unknown]
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("Uniswap factories on %s unavailable: %s", chain.name, exc.message)
            return
        self._learn_decimals(chain, unknown, results[len(asked) :])
        for token in new:
            self._pools[(chain.chain_id, token.address)] = []
        for (token, pool), result in zip(asked, results[: len(asked)], strict=True):
            if not result.success or len(result.data) != 32 or not int.from_bytes(result.data):
                continue
            address = to_checksum_address(result.data[12:])
            self._pools[(chain.chain_id, token.address)].append(
                _FoundPool(pool.version, address, pool.quote, pool.fee)
            )

    def _learn_decimals(
        self, chain: ChainConfig, addresses: Sequence[str], results: Sequence[CallResult]
    ) -> None:
        for address, result in zip(addresses, results, strict=True):
            try:
                value = decode_uint(result)
            except MalformedResult:
                continue
            if value <= 255:
                self._decimals[(chain.chain_id, address)] = value

    def _decimals_of(self, chain: ChainConfig, address: str) -> int | None:
        configured = chain.token(address).decimals
        if configured is not None:
            return configured
        return self._decimals.get((chain.chain_id, address))

    async def _read(
        self,
        candidates: Sequence[tuple[EvmChainReader, TokenConfig]],
        quotes: Mapping[str, Price],
    ) -> dict[str, Price]:
        reader = candidates[0][0]
        chain = reader.chain
        v3 = chain.uniswap_v3
        twap = v3.twap_seconds if v3 is not None else 0
        asked: list[tuple[TokenConfig, _FoundPool, int]] = []
        calls: list[Call] = []
        for _, token in candidates:
            for pool in self._pools.get((chain.chain_id, token.address), []):
                asked.append((token, pool, len(calls)))
                if pool.version == 3:
                    observe = OBSERVE + _observe_args(twap)
                    calls += [
                        Call(pool.address, SLOT0),
                        Call(pool.address, observe),
                        Call(pool.quote.address, with_address(BALANCE_OF, pool.address)),
                    ]
                else:
                    calls.append(Call(pool.address, GET_RESERVES))
        if not calls:
            return {}
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("Uniswap pools on %s unavailable: %s", chain.name, exc.message)
            return {}
        now = self._clock()
        best: dict[str, tuple[int, Decimal, Price]] = {}
        for token, pool, at in asked:
            quote_price = quotes.get(pool.quote.price_key)
            if quote_price is None:
                continue
            quoted = self._pool_quote(chain, token, pool, results[at : at + 3], twap)
            if isinstance(quoted, str):
                log.info(
                    "%s %s pool %s not used: %s", chain.name, token.symbol, pool.address, quoted
                )
                continue
            price_in_quote, quote_units, how = quoted
            with localcontext() as exact:
                exact.prec = 200
                depth = quote_units * quote_price.usd
                floor = _floor(chain, pool.version)
                if depth < floor:
                    log.info(
                        "%s %s pool %s not used: quote side worth %.2f USD < %s",
                        chain.name,
                        token.symbol,
                        pool.address,
                        depth,
                        floor,
                    )
                    continue
                usd = price_in_quote * quote_price.usd
            source = (
                f"uniswap-v{pool.version}:{chain.name}:{pool.address} "
                f"({token.symbol}/{pool.quote.symbol} {how} x {quote_price.source})"
            )
            price = Price(token.price_key, usd, source, min(now, quote_price.updated_at))
            # V3 first, then the deepest pool: (version rank, depth).
            rank = 1 if pool.version == 3 else 0
            current = best.get(token.price_key)
            if current is None or (rank, depth) > (current[0], current[1]):
                best[token.price_key] = (rank, depth, price)
        return {symbol: price for symbol, (_, _, price) in best.items()}

    def _pool_quote(
        self,
        chain: ChainConfig,
        token: TokenConfig,
        pool: _FoundPool,
        results: Sequence[CallResult],
        twap: int,
    ) -> tuple[Decimal, Decimal, str] | str:
        """(token price in quote units, quote-side depth in whole units, "twap"/"spot")."""
        token_decimals = self._decimals_of(chain, token.address)
        quote_decimals = self._decimals_of(chain, pool.quote.address)
        if token_decimals is None or quote_decimals is None:
            return "token decimals unknown"
        token_is_0 = int(token.address, 16) < int(pool.quote.address, 16)
        try:
            if pool.version == 3:
                sqrt_price = words(results[0], 1)[0]
                tick = _twap_tick(results[1], twap)
                if tick is not None:
                    sqrt_price, how = sqrt_ratio_at_tick(tick), f"twap {twap}s"
                else:
                    how = "spot"
                (quote_raw,) = words(results[2], 1)
                raw = Fraction(sqrt_price * sqrt_price, 2**192)
            else:
                reserve0, reserve1 = words(results[0], 2)
                if not reserve0 or not reserve1:
                    return "empty pair"
                quote_raw = reserve1 if token_is_0 else reserve0
                raw, how = Fraction(reserve1, reserve0), "reserves"
        except MalformedResult as exc:
            return str(exc)
        if raw == 0:
            return "zero price"
        per_token = raw if token_is_0 else 1 / raw  # quote base units per token base unit
        with localcontext() as exact:
            exact.prec = 200
            price = (Decimal(per_token.numerator) / Decimal(per_token.denominator)).scaleb(
                token_decimals - quote_decimals
            )
        return price, Decimal(quote_raw).scaleb(-quote_decimals), how


def _v2_factory(chain: ChainConfig) -> str | None:
    return chain.uniswap_v2.factory if chain.uniswap_v2 is not None else None


def _quote_tokens(chain: ChainConfig) -> list[TokenConfig]:
    """The chain's configured quote tokens (V3 list, else V2 list), those it lists."""
    wanted = (chain.uniswap_v3 or chain.uniswap_v2 or UniswapV2Config()).quote_tokens
    found = []
    for ref in wanted:
        try:
            found.append(chain.token(ref))
        except ValueError:
            continue
    return found


def _floor(chain: ChainConfig, version: int) -> Decimal:
    config = chain.uniswap_v3 if version == 3 else chain.uniswap_v2
    return config.min_liquidity_usd if config is not None else Decimal(100_000)


def _observe_args(seconds: int) -> bytes:
    """ABI for observe(uint32[] [seconds, 0])."""
    return (
        (32).to_bytes(32, "big") + (2).to_bytes(32, "big") + seconds.to_bytes(32, "big") + bytes(32)
    )


def _twap_tick(result: CallResult, seconds: int) -> int | None:
    """OracleLibrary.consult's mean tick from observe([seconds, 0]); None when unavailable."""
    if seconds <= 0 or not result.success or len(result.data) < 32 * 4:
        return None
    try:
        # (int56[] tickCumulatives, uint160[] secondsPerLiquidity): first array's two entries.
        first = int.from_bytes(result.data[:32], "big")
        values = words(CallResult(True, result.data[first + 32 : first + 96]), 2)
    except MalformedResult:
        return None
    delta = signed(values[1]) - signed(values[0])
    tick = delta // seconds if delta >= 0 else -((-delta) // seconds)
    if delta < 0 and delta % seconds:
        tick -= 1
    return tick


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
