"""Everything that talks to EVM chains and price sources (may import `chainfolio.core` only).

Typical use (one ChainSet per app or worker, loaders per request)::

    async with open_chains(load_chains()) as chains:
        snapshot = await read_portfolio(chains, [(1, "0x…"), (137, "0x…")])
        balances = BalanceLoader(chains)
"""

from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.config import ChainConfig, ChainsConfig, load_chains, parse_chains
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.evm import ChainRead, ChainReader, EvmChainReader
from chainfolio.fetchers.loaders import BalanceLoader, PriceLoader
from chainfolio.fetchers.portfolio import (
    ChainHoldings,
    ChainSet,
    ChainState,
    ChainStatus,
    PortfolioRead,
    open_chains,
    read_portfolio,
    validate_wallet,
)
from chainfolio.fetchers.prices import (
    ChainlinkPriceSource,
    CompositePriceSource,
    DexPriceSource,
    HttpPriceSource,
    PriceSource,
)
from chainfolio.fetchers.rpc import ChainUnavailable

__all__ = [
    "BalanceLoader",
    "ChainConfig",
    "ChainHoldings",
    "ChainRead",
    "ChainReader",
    "ChainSet",
    "ChainState",
    "ChainStatus",
    "ChainUnavailable",
    "ChainlinkPriceSource",
    "ChainsConfig",
    "CompositePriceSource",
    "DexPriceSource",
    "EvmChainReader",
    "HttpPriceSource",
    "PortfolioRead",
    "PriceLoader",
    "PriceSource",
    "config_from_devnet",
    "load_chains",
    "open_chains",
    "parse_address",
    "parse_chains",
    "read_portfolio",
    "validate_wallet",
]
