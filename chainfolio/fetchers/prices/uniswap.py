"""Tokens priced by the pools Uniswap's V3 and V2 factories know, for tokens no feed covers.

A token is asked for by its configured symbol, or — listed and discovered tokens — by its
address key `"<chain id>:<address>"` (`base.address_key`): nothing needs configuring.

Per token and chain, discovery asks the V3 factory's `getPool(token, quote, fee)` over the
fee tiers and the V2 factory's `getPair(token, quote)` against the quote tokens (WETH, USDC,
USDT, DAI — those the chain lists), every new token of a call in one Multicall3 batch. What it
finds is kept (pools do not move; `take_found`/`remember` let the worker store it across
restarts); a token without any pool is asked again after `recheck_after` (a pool may be
created). Each read then asks every found pool's state in
one Multicall3 batch per chain: a V3 pool's `slot0`, `observe([twap, 0])` and its quote-token
balance; a V2 pair's reserves. The deepest V3 pool whose quote side is worth at least the
floor prices the token (its TWAP when the observations reach back that far, else the spot
price); without one, the deepest V2 pair above its floor does. Quote tokens are valued by
`quotes` (the feeds). Sources name the pool, the way and the quote's source:
`uniswap-v3:<chain>:<pool> (<token>/WETH twap 1800s x chainlink:<chain>)`; a price's
`updated_at` is its quote's. Why a token stayed unpriced is in `unpriced` after each call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from eth_utils.address import to_checksum_address

from chainfolio.core.domain import AssetKind, Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import TokenConfig
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    DECIMALS,
    GET_RESERVES,
    Call,
    CallResult,
    MalformedResult,
    decode_uint,
    gather_all,
    selector,
    with_address,
    with_addresses,
)
from chainfolio.fetchers.positions import SLOT0
from chainfolio.fetchers.prices.base import PriceSource, parse_address_key, utcnow
from chainfolio.fetchers.prices.pool_state import (
    liquidity_floor,
    observe_args,
    pool_quote,
    quote_tokens,
    v2_factory,
)

log = logging.getLogger(__name__)

GET_POOL = selector("getPool(address,address,uint24)")
GET_PAIR = selector("getPair(address,address)")
OBSERVE = selector("observe(uint32[])")

RECHECK_AFTER = timedelta(hours=6)
"""How long a token found without any pool stays unpriced before the factories are asked again."""


@dataclass(frozen=True, slots=True)
class _FoundPool:
    """A factory pool of a token against a quote token, found once by discovery."""

    version: int
    """3 (UniswapV3Pool) or 2 (UniswapV2Pair)."""
    address: str
    quote: TokenConfig
    fee: int = 0


@dataclass(frozen=True, slots=True)
class _Wanted:
    """A token to price: the key it was asked by, its address and a name for sources."""

    key: str
    address: str
    label: str


@dataclass(frozen=True, slots=True)
class _Pools:
    found: tuple[_FoundPool, ...]
    asked_at: datetime


@dataclass(frozen=True, slots=True)
class KnownPools:
    """What the factories answered for one token, to keep across restarts (`remember`)."""

    chain_id: int
    token: str
    pools: tuple[tuple[int, str, str, int], ...]
    """(version, pool, quote token address, fee) each; empty: none found."""
    asked_at: datetime


class UniswapPriceSource:
    """Prices by Uniswap factory pools, for configured symbols and address keys alike."""

    name = "uniswap"

    def __init__(
        self,
        readers: Sequence[EvmChainReader],
        *,
        quotes: PriceSource,
        clock: Callable[[], datetime] = utcnow,
        recheck_after: timedelta = RECHECK_AFTER,
    ) -> None:
        self._readers = {
            r.chain.chain_id: r for r in readers if r.chain.uniswap_v3 or v2_factory(r.chain)
        }
        self._quotes = quotes
        self._clock = clock
        self._recheck_after = recheck_after
        self._pools: dict[tuple[int, str], _Pools] = {}
        self._decimals: dict[tuple[int, str], int] = {}
        self.unpriced: dict[str, str] = {}
        """Key -> why the last call asking for it left it unpriced (no pool, a thin pool …)."""
        self._new: set[tuple[int, str]] = set()

    def take_found(self) -> list[KnownPools]:
        """What the factories answered since the last call (to store)."""
        taken = []
        for chain_id, token in sorted(self._new):
            pools = self._pools[(chain_id, token)]
            found = tuple((p.version, p.address, p.quote.address, p.fee) for p in pools.found)
            taken.append(KnownPools(chain_id, token, found, pools.asked_at))
        self._new.clear()
        return taken

    def remember(self, known: Iterable[KnownPools]) -> None:
        """Take stored answers for tokens not asked about in this process (a pool whose quote
        token the chain no longer lists is left out)."""
        for entry in known:
            reader = self._readers.get(entry.chain_id)
            key = (entry.chain_id, entry.token)
            if reader is None or key in self._pools:
                continue
            quotes = {q.address: q for q in quote_tokens(reader.chain)}
            found = tuple(
                _FoundPool(version, pool, quotes[quote], fee)
                for version, pool, quote, fee in entry.pools
                if quote in quotes
            )
            self._pools[key] = _Pools(found, entry.asked_at)

    def pools_of(self, chain_id: int, address: str) -> tuple[str, ...]:
        """The pools found for a token so far (empty when none or not asked yet)."""
        found = self._pools.get((chain_id, to_checksum_address(address)))
        return tuple(p.address for p in found.found) if found is not None else ()

    def _wanted(self, symbols: Collection[str]) -> dict[int, list[_Wanted]]:
        """Per chain, the tokens of `symbols` this source may price."""
        wanted: dict[int, list[_Wanted]] = {}
        by_address: dict[int, set[str]] = {}
        for key in symbols:
            parsed = parse_address_key(key)
            if parsed is not None and parsed[0] in self._readers:
                by_address.setdefault(parsed[0], set()).add(parsed[1])
        for chain_id, reader in self._readers.items():
            chain = reader.chain
            quotes = {q.address for q in quote_tokens(chain)}
            found: list[_Wanted] = []
            for token in chain.tokens:
                if token.spam or token.kind is not AssetKind.ERC20 or token.address in quotes:
                    continue
                if token.price_key in symbols:
                    found.append(_Wanted(token.price_key, token.address, token.symbol))
            labels = {t.address: t.symbol for t in (*chain.tokens, *reader.listed)}
            for address in sorted(by_address.get(chain_id, set()) - quotes):
                label = labels.get(address, f"{address[:6]}…{address[-4:]}")
                found.append(_Wanted(f"{chain_id}:{address}", address, label))
            if found:
                wanted[chain_id] = found
        return wanted

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for the keys a usable factory pool covers (first chain in config wins)."""
        wanted = self._wanted(symbols)
        for tokens in wanted.values():
            for token in tokens:
                self.unpriced.pop(token.key, None)
        if not wanted:
            return {}
        # The quote tokens' prices are read while the factories are asked (all of a chain's
        # quotes: they share the feeds' one batch), not after: a round trip less to wait for.
        quote_keys = {
            quote.price_key
            for chain_id in wanted
            for quote in quote_tokens(self._readers[chain_id].chain)
        }
        _, quotes = await asyncio.gather(
            gather_all([self._discover(c, ts) for c, ts in wanted.items()]),
            self._quotes.prices(quote_keys),
        )
        found: dict[str, Price] = {}
        reads = await gather_all([self._read(c, ts, quotes) for c, ts in wanted.items()])
        for chain_prices in reads:
            for key, price in chain_prices.items():
                found.setdefault(key, price)
        for tokens in wanted.values():
            for token in tokens:
                if token.key in found:
                    self.unpriced.pop(token.key, None)
                elif token.key not in self.unpriced:
                    self.unpriced[token.key] = "no Uniswap pool against the quote tokens"
        return found

    def _found(self, chain_id: int, address: str) -> tuple[_FoundPool, ...]:
        pools = self._pools.get((chain_id, address))
        return pools.found if pools is not None else ()

    async def _discover(self, chain_id: int, tokens: Sequence[_Wanted]) -> None:
        """Ask the factories for each new token's pools (one Multicall3 batch for all)."""
        reader = self._readers[chain_id]
        chain = reader.chain
        now = self._clock()
        new = sorted(
            {
                t.address
                for t in tokens
                if (pools := self._pools.get((chain_id, t.address))) is None
                or (not pools.found and now - pools.asked_at >= self._recheck_after)
            }
        )
        if not new:
            return
        v3, v2 = chain.uniswap_v3, v2_factory(chain)
        quotes = quote_tokens(chain)
        asked: list[tuple[str, _FoundPool]] = []
        calls: list[Call] = []
        for address in new:
            for quote in quotes:
                if v3 is not None:
                    for fee in v3.fee_tiers:
                        data = with_addresses(GET_POOL, address, quote.address)
                        calls.append(Call(v3.factory, data + fee.to_bytes(32, "big")))
                        asked.append((address, _FoundPool(3, "", quote, fee)))
                if v2 is not None:
                    calls.append(Call(v2, with_addresses(GET_PAIR, address, quote.address)))
                    asked.append((address, _FoundPool(2, "", quote)))
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("Uniswap factories on %s unavailable: %s", chain.name, exc.message)
            return
        found: dict[str, list[_FoundPool]] = {address: [] for address in new}
        for (address, pool), result in zip(asked, results, strict=True):
            if not result.success or len(result.data) != 32 or not int.from_bytes(result.data):
                continue
            pool_address = to_checksum_address(result.data[12:])
            found[address].append(_FoundPool(pool.version, pool_address, pool.quote, pool.fee))
        for address, pools_found in found.items():
            self._pools[(chain_id, address)] = _Pools(tuple(pools_found), now)
            self._new.add((chain_id, address))

    def _learn_decimals(
        self, chain_id: int, addresses: Sequence[str], results: Sequence[CallResult]
    ) -> None:
        for address, result in zip(addresses, results, strict=True):
            try:
                value = decode_uint(result)
            except MalformedResult:
                continue
            if value <= 255:
                self._decimals[(chain_id, address)] = value

    def _decimals_of(self, reader: EvmChainReader, address: str) -> int | None:
        for token in (*reader.chain.tokens, *reader.listed):
            if token.address == address and token.decimals is not None:
                return token.decimals
        return self._decimals.get((reader.chain.chain_id, address))

    def _state_calls(
        self, chain_id: int, tokens: Sequence[_Wanted]
    ) -> tuple[list[tuple[_Wanted, _FoundPool, int]], list[Call]]:
        """Each known pool's state calls: (token, pool, index of its first call), calls."""
        v3 = self._readers[chain_id].chain.uniswap_v3
        observe = OBSERVE + observe_args(v3.twap_seconds if v3 is not None else 0)
        asked: list[tuple[_Wanted, _FoundPool, int]] = []
        calls: list[Call] = []
        for token in tokens:
            for pool in self._found(chain_id, token.address):
                asked.append((token, pool, len(calls)))
                if pool.version == 3:
                    calls += [
                        Call(pool.address, SLOT0),
                        Call(pool.address, observe),
                        Call(pool.quote.address, with_address(BALANCE_OF, pool.address)),
                    ]
                else:
                    calls.append(Call(pool.address, GET_RESERVES))
        return asked, calls

    async def _read(
        self, chain_id: int, tokens: Sequence[_Wanted], quotes: Mapping[str, Price]
    ) -> dict[str, Price]:
        reader = self._readers[chain_id]
        chain = reader.chain
        asked, calls = self._state_calls(chain_id, tokens)
        if not calls:
            return {}
        # Decimals not known yet (read once, with the first pool state that needs them).
        used = {a for t, p, _ in asked for a in (t.address, p.quote.address)}
        unknown = sorted(a for a in used if self._decimals_of(reader, a) is None)
        state = len(calls)
        calls += [Call(address, DECIMALS) for address in unknown]
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("Uniswap pools on %s unavailable: %s", chain.name, exc.message)
            for token in tokens:
                self.unpriced[token.key] = f"Uniswap pools unavailable: {exc.message}"
            return {}
        self._learn_decimals(chain_id, unknown, results[state:])
        now = self._clock()
        best: dict[str, tuple[int, Decimal, Price]] = {}
        answering: set[str] = set()
        for token, pool, at in asked:
            if results[at].success and results[at].data:
                answering.add(token.address)
            price = self._priced(reader, token, pool, results[at : at + 3], quotes, now)
            if isinstance(price, str):
                log.info("%s %s pool %s not used: %s", chain.name, token.label, pool.address, price)
                self.unpriced[token.key] = f"pool {pool.address} not used: {price}"
                continue
            depth, usd = price
            # V3 first, then the deepest pool: (version rank, depth).
            rank = 1 if pool.version == 3 else 0
            current = best.get(token.key)
            if current is None or (rank, depth) > (current[0], current[1]):
                best[token.key] = (rank, depth, usd)
        # Pools that no longer answer (no code there: a remembered pool of another chain's
        # past, a devnet restarted) are forgotten: the factories are asked again next time.
        for token, _, _ in asked:
            if token.address not in answering:
                self._pools.pop((chain_id, token.address), None)
        return {key: price for key, (_, _, price) in best.items()}

    def _priced(  # noqa: PLR0917 - one pool's answer and everything that values it
        self,
        reader: EvmChainReader,
        token: _Wanted,
        pool: _FoundPool,
        results: Sequence[CallResult],
        quotes: Mapping[str, Price],
        now: datetime,
    ) -> tuple[Decimal, Price] | str:
        """(quote-side depth in USD, the USD price) from one pool's answers, or why not."""
        chain = reader.chain
        quote_price = quotes.get(pool.quote.price_key)
        if quote_price is None:
            return f"no USD price for its quote {pool.quote.symbol}"
        decimals = (
            self._decimals_of(reader, token.address),
            self._decimals_of(reader, pool.quote.address),
        )
        if decimals[0] is None or decimals[1] is None:
            return "token decimals unknown"
        quoted = pool_quote(
            version=pool.version,
            token=token.address,
            quote=pool.quote.address,
            decimals=(decimals[0], decimals[1]),
            results=results,
            twap=chain.uniswap_v3.twap_seconds if chain.uniswap_v3 is not None else 0,
        )
        if isinstance(quoted, str):
            return quoted
        price_in_quote, quote_units, how = quoted
        with localcontext() as exact:
            exact.prec = 200
            depth = quote_units * quote_price.usd
            floor = liquidity_floor(chain, pool.version)
            if depth < floor:
                return f"quote side worth {depth:.2f} USD, below the {floor} USD liquidity floor"
            usd = price_in_quote * quote_price.usd
        source = (
            f"uniswap-v{pool.version}:{chain.name}:{pool.address} "
            f"({token.label}/{pool.quote.symbol} {how} x {quote_price.source})"
        )
        return depth, Price(token.key, usd, source, min(now, quote_price.updated_at))
