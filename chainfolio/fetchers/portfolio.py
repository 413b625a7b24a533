"""Reading many wallets across many chains at once, plus the input checks the API needs.

`open_chains` owns the HTTP client and the per-chain RPC state (URL health, cached decimals);
it lives as long as the app or worker. `read_portfolio` reads every chain concurrently, each
bounded by its own timeout, so one slow chain never delays the others beyond that timeout.
A chain that cannot be read comes back `stale` with the caller's last known holdings (a wallet
without any: its native coin with an unknown amount and the reason).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from enum import StrEnum

import httpx

from chainfolio.core.domain import ChainId, ChecksumAddress, Holding, Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.core.metrics import observe_chain_read
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.config import ChainsConfig, TokenConfig
from chainfolio.fetchers.evm import ChainRead, EvmChainReader
from chainfolio.fetchers.multicall import gather_all
from chainfolio.fetchers.prices import (
    ChainlinkPriceSource,
    CompositePriceSource,
    DexPriceSource,
    HttpPriceSource,
    PriceSource,
    UniswapPriceSource,
)
from chainfolio.fetchers.rpc import RpcClient
from chainfolio.fetchers.tokenlists import (
    ListedToken,
    as_token,
    load_token_list,
    shipped_tokens,
    tokens_by_chain,
)

log = logging.getLogger(__name__)

DEFAULT_CHAIN_TIMEOUT_S = 30.0


class ChainSet:
    """The configured chains with their live RPC state; create it with `open_chains`."""

    def __init__(
        self,
        config: ChainsConfig,
        http: httpx.AsyncClient,
        *,
        listed: Mapping[int, Sequence[ListedToken]] | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.readers: dict[int, EvmChainReader] = {
            chain.chain_id: EvmChainReader(
                chain,
                RpcClient(chain.rpc_urls, http=http, settings=chain.rpc, chain=chain.name),
                listed=[as_token(chain, t) for t in (listed or {}).get(chain.chain_id, ())],
            )
            for chain in config.chains
        }
        readers = list(self.readers.values())
        feeds = ChainlinkPriceSource(readers)
        sources: list[PriceSource] = [feeds]
        self.uniswap: UniswapPriceSource | None = None
        if any(chain.uniswap_v3 or chain.uniswap_v2 for chain in config.chains):
            # Chainlink, then Uniswap V3 pools, then V2 pairs (one source), then the rest.
            self.uniswap = UniswapPriceSource(readers, quotes=feeds)
            sources.append(self.uniswap)
        if any(chain.dex_pools for chain in config.chains):
            # Pools are quoted in feed-priced tokens (WETH, USDC …): their quotes come from feeds.
            sources.append(DexPriceSource(readers, quotes=feeds))
        if config.prices.http.enabled:
            sources.append(HttpPriceSource(http, config.prices.http))
        self.prices: PriceSource = CompositePriceSource(sources)

    def reader(self, chain_id: int) -> EvmChainReader:
        """The reader of a configured chain; InvalidInput for an unknown chain id."""
        self.config.chain(chain_id)
        return self.readers[chain_id]


@asynccontextmanager
async def open_chains(
    config: ChainsConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[ChainSet]:
    """Open one pooled HTTP client for every chain and price API; close it on exit.

    The configured token lists are loaded here (a user's list that fails validation stops
    the start with INVALID_TOKEN_LIST)."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    async with httpx.AsyncClient(transport=transport, limits=limits, timeout=30.0) as http:
        lists: list[Sequence[ListedToken]] = []
        if config.token_lists.shipped:
            lists.append(shipped_tokens())
        for source in config.token_lists.sources:
            lists.append(await load_token_list(source, http=http))
        listed = tokens_by_chain(lists, chain_ids=[c.chain_id for c in config.chains])
        yield ChainSet(config, http, listed=listed)


class ChainState(StrEnum):
    """Whether a chain's holdings are fresh or the last known ones."""

    OK = "ok"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """How reading one chain went."""

    chain_id: int
    name: str
    state: ChainState
    block_number: int | None
    duration_s: float
    error: str | None = None
    rpc_url: str | None = None


@dataclass(frozen=True, slots=True)
class ChainHoldings:
    """One chain's holdings per wallet and how they were obtained."""

    status: ChainStatus
    holdings: dict[str, list[Holding]]


@dataclass(frozen=True, slots=True)
class PortfolioRead:
    """Every requested chain's holdings plus the prices attached to them."""

    chains: dict[int, ChainHoldings]
    prices: dict[str, Price]

    def holdings(self) -> list[Holding]:
        """All holdings, chain by chain, wallet by wallet."""
        return [h for c in self.chains.values() for hs in c.holdings.values() for h in hs]


def validate_wallet(
    config: ChainsConfig, *, chain_id: int, address: str
) -> tuple[ChainId, ChecksumAddress]:
    """Check an addWallet input: a configured chain and a valid address (EIP-55 form back)."""
    chain = config.chain(chain_id)
    return chain.id, parse_address(address)


async def read_portfolio(
    chains: ChainSet,
    wallets: Iterable[tuple[int, str]],
    *,
    chain_timeout_s: float = DEFAULT_CHAIN_TIMEOUT_S,
    last_known: Mapping[tuple[int, str], Sequence[Holding]] | None = None,
    with_prices: bool = True,
    discovered: Mapping[tuple[int, str], Sequence[TokenConfig]] | None = None,
) -> PortfolioRead:
    """Read every (chain id, wallet) pair; chains concurrently, each within its own timeout.

    `discovered` adds tokens found for a wallet (transfer-log discovery) to its read."""
    per_chain: dict[int, list[ChecksumAddress]] = {}
    for chain_id, wallet in wallets:
        validate_wallet(chains.config, chain_id=chain_id, address=wallet)
        per_chain.setdefault(chain_id, []).append(parse_address(wallet))
    known = {(c, parse_address(w)): list(hs) for (c, w), hs in (last_known or {}).items()}

    extra: dict[int, dict[str, Sequence[TokenConfig]]] = {}
    for (chain_id, wallet), tokens in (discovered or {}).items():
        extra.setdefault(chain_id, {})[parse_address(wallet)] = tokens
    chain_reads = [
        _read_chain(
            chains.readers[chain_id],
            list(dict.fromkeys(owners)),
            chain_timeout_s,
            known,
            extra.get(chain_id, {}),
        )
        for chain_id, owners in per_chain.items()
    ]
    # Discovered tokens are priced by their address keys, held or not (a flow of one that left
    # the wallet is valued too); listed ones only once the read shows them held.
    symbols = set().union(*(chains.readers[c].chain.price_keys() for c in per_chain))
    symbols.update(t.price_key for tokens in (discovered or {}).values() for t in tokens)
    results, prices = await asyncio.gather(
        gather_all(chain_reads), _read_prices(chains.prices, symbols, chain_timeout_s, with_prices)
    )
    held = {
        h.extra.get("price_symbol", h.symbol)
        for result in results
        for hs in result.holdings.values()
        for h in hs
        if h.amount
    }
    if held - symbols:
        prices |= await _read_prices(chains.prices, held - symbols, chain_timeout_s, with_prices)
    for status in (result.status for result in results):
        observe_chain_read(status.name, status.state.value, status.duration_s)
    unpriced = chains.uniswap.unpriced if chains.uniswap is not None else {}
    priced = {
        result.status.chain_id: ChainHoldings(
            result.status,
            {
                w: [_with_price(h, prices, unpriced) for h in hs]
                for w, hs in result.holdings.items()
            },
        )
        for result in results
    }
    return PortfolioRead(priced, prices)


async def _read_chain(
    reader: EvmChainReader,
    wallets: list[ChecksumAddress],
    budget_s: float,
    known: Mapping[tuple[int, ChecksumAddress], list[Holding]],
    discovered: Mapping[str, Sequence[TokenConfig]],
) -> ChainHoldings:
    chain = reader.chain
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget_s):
            read: ChainRead = await reader.read(wallets, discovered=discovered)
    except Exception as exc:  # whatever breaks one chain must not break the others
        if isinstance(exc, SourceUnavailable):
            error = exc.message
        elif isinstance(exc, TimeoutError):
            error = f"timed out after {budget_s}s"
        else:
            log.exception("reading chain %s failed", chain.name)
            error = f"internal error: {type(exc).__name__}: {exc}"
        # A wallet never read has no last known values: one unknown holding says so (an empty
        # list would read as a wallet holding nothing).
        stale: dict[str, list[Holding]] = {
            w: [replace(h, stale=True) for h in known.get((chain.chain_id, w), [])]
            or [reader.unread(w, error)]
            for w in wallets
        }
        blocks = [h.block_number for hs in stale.values() for h in hs if h.block_number is not None]
        status = ChainStatus(
            chain.chain_id,
            chain.name,
            ChainState.STALE,
            max(blocks) if blocks else None,
            time.perf_counter() - started,
            error=error,
        )
        return ChainHoldings(status, stale)
    status = ChainStatus(
        chain.chain_id,
        chain.name,
        ChainState.OK,
        read.block_number,
        time.perf_counter() - started,
        rpc_url=read.rpc_url,
    )
    return ChainHoldings(status, read.holdings)


async def _read_prices(
    source: PriceSource, symbols: set[str], budget_s: float, enabled: bool
) -> dict[str, Price]:
    if not enabled or not symbols:
        return {}
    try:
        async with asyncio.timeout(budget_s):
            return await source.prices(symbols)
    except (SourceUnavailable, TimeoutError) as exc:
        log.warning("prices unavailable: %s", exc)
        return {}


def _with_price(
    holding: Holding, prices: Mapping[str, Price], unpriced: Mapping[str, str]
) -> Holding:
    """The holding with its price; without one, why (when a source said: `extra["unpriced"]`)."""
    key = holding.extra.get("price_symbol", holding.symbol)
    price = prices.get(key)
    if price is not None:
        return replace(holding, price=price)
    if key in unpriced and holding.amount:
        return replace(holding, extra={**holding.extra, "unpriced": unpriced[key]})
    return holding
