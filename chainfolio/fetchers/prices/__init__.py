"""USD prices behind one batched `PriceSource` protocol, one module per kind of source.

* `chainlink`: AggregatorV3 feeds, by symbol (`ChainlinkPriceSource`).
* `uniswap`: the pools Uniswap's V3 and V2 factories know, for configured tokens by symbol and
  for any other token by its address key `"<chain id>:<address>"` (`UniswapPriceSource`).
* `dex`: configured Uniswap V2-style pairs (`DexPriceSource`).
* `http`: a CoinGecko-style API, off by default (`HttpPriceSource`).
* `composite`: the order — each source asked only for what the ones before left unpriced.

Values are exact Decimals built from the integer answers; every Price names its source (and
pool) and when the value was last updated.
"""

from chainfolio.fetchers.prices.base import USD, PriceSource, address_key, parse_address_key
from chainfolio.fetchers.prices.chainlink import ChainlinkPriceSource
from chainfolio.fetchers.prices.composite import CompositePriceSource
from chainfolio.fetchers.prices.dex import DexPriceSource
from chainfolio.fetchers.prices.http import HttpPriceSource
from chainfolio.fetchers.prices.uniswap import KnownPools, UniswapPriceSource

__all__ = [
    "USD",
    "ChainlinkPriceSource",
    "CompositePriceSource",
    "DexPriceSource",
    "HttpPriceSource",
    "KnownPools",
    "PriceSource",
    "UniswapPriceSource",
    "address_key",
    "parse_address_key",
]
