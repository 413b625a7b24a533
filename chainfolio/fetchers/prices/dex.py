"""Configured Uniswap V2-style pairs (`dex_pools`): reserve(quote) / reserve(token) x the
quote's USD price, for tokens no feed covers. Pools thinner than their `min_liquidity_usd` are
not used."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

from chainfolio.core.domain import Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import ChainConfig, DexPoolConfig
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.multicall import (
    DECIMALS,
    GET_RESERVES,
    TOKEN0,
    Call,
    CallResult,
    MalformedResult,
    decode_uint,
    gather_all,
)
from chainfolio.fetchers.prices.base import PriceSource, utcnow

log = logging.getLogger(__name__)


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
        clock: Callable[[], datetime] = utcnow,
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
