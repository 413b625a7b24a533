"""Chains as data: the TOML format that describes every EVM network, and its loader.

Why this is long: it is the chains file's one definition: the TOML example below and the
pydantic models that validate each table of it, read in one place by anyone adding a chain.

A chain entry names its RPC URLs (tried in order), its Multicall3, the tokens and positions
to read, and the Chainlink-style feeds that price them. Adding a chain is a config entry.

```toml
[[chains]]
chain_id = 1
name = "ethereum"
native_symbol = "ETH"
rpc_urls = ["${ETHEREUM_RPC_URL}"]          # ${VAR} is expanded; empty results are dropped
multicall3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
gas_price_gwei = 2                           # optional: for rebalancing gas estimates
swap_gas_units = 150000                      # optional: gas of one swap in those estimates

[[chains.tokens]]
address = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
symbol = "WETH"
decimals = 18                                # optional: read once via decimals() and cached
price_symbol = "ETH"                         # priced with the ETH feed

[[chains.vaults]]                            # ERC-4626: shares -> convertToAssets
address = "0x…"
symbol = "sDAI"
underlying = "DAI"                           # symbol or address of a token above

[[chains.lending]]                           # supplied counts as DEPOSIT, borrowed as LOAN
address = "0x…"
name = "market"
supplied = ["USDC"]
borrowed = ["WETH"]
supply_function = "supplied(address,address)"   # (account[, asset]) -> uint256
borrow_function = "borrowed(address,address)"

[chains.price_feeds.ETH]
aggregator = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
max_age = 3600                               # seconds; older answers are not used
quote = "USD"                                # or another feed's symbol (NFT floors in ETH)

[chains.uniswap_v3]                          # position NFTs read; factory pools price tokens
factory = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
position_manager = "0xC36442b4a4522E871399CD717aBDD847Ab11FE88"
# fee_tiers = [100, 500, 3000, 10000]; quote_tokens = ["WETH", "USDC", "USDT", "DAI"]
# min_liquidity_usd = 100000; twap_seconds = 1800

[chains.uniswap_v2]                          # LP tokens read; factory pairs price tokens
factory = "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"
lp_pairs = ["0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"]

[chains.dex_pools.UNI]                       # Uniswap V2-style pair: used when no feed prices UNI
pair = "0xd3d2E2692501A5c9Ca623199D38826e513033a17"
quote = "WETH"                               # the pair's other token (in `tokens`)
min_liquidity_usd = 100000                   # thinner pools are not trusted

[token_lists]                                # every listed token of a wallet's chain is checked
shipped = true                               # the Uniswap default list (package data)
sources = ["my-tokens.json", "https://…/list.json"]   # Token Lists JSON, schema-validated

[discovery]                                  # tokens found in Transfer logs to a wallet
initial_blocks = 1000000                     # a new wallet's first scan: this far back
max_range_blocks = 10000                     # widest eth_getLogs range (halved on errors)
```

`CHAINFOLIO_RPC_URLS_<CHAIN_ID>` or `CHAINFOLIO_RPC_URLS_<NAME>` (comma separated) replace
a chain's `rpc_urls`: users bring their own nodes.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from chainfolio.core.currencies import RATE_SYMBOLS
from chainfolio.core.domain import AssetKind, Category, ChainId, ChecksumAddress
from chainfolio.core.errors import InvalidInput
from chainfolio.fetchers.addresses import parse_address

MULTICALL3 = ChecksumAddress("0xcA11bde05977b3631167028862bE2a173976CA11")
"""Multicall3 lives at the same address on every chain that has it (deterministic deploy)."""

SWAP_GAS_UNITS = 150_000
"""Gas of one DEX swap in rebalancing estimates (a Uniswap V3 single-hop swap: ~130 to 180 K)."""

SHIPPED_CHAINS_FILE = Path(__file__).with_name("chains.mainnet.toml")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SIGNATURE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\(address(,address)?\)")


def _address(value: str) -> ChecksumAddress:
    try:
        return parse_address(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from exc


Address = Annotated[str, AfterValidator(_address)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RpcSettings(_Model):
    """How hard to push one chain's nodes."""

    timeout_s: float = Field(10.0, gt=0)
    backoff_s: float = Field(5.0, ge=0)
    backoff_max_s: float = Field(300.0, ge=0)
    probe_max_s: float = Field(5.0, ge=0)
    """A failed URL is probed again at most this long after its last failure when no other
    URL answers (the half-open circuit breaker), whatever its back-off."""
    batch: bool = True
    chunk_size: int = Field(400, ge=1)
    chunks_per_request: int = Field(8, ge=1)
    max_in_flight: int = Field(2, ge=1)
    call_gas: int | None = Field(None, gt=0)


class TokenConfig(_Model):
    """A contract whose `balanceOf(wallet)` is a holding.

    `kind = "position"` marks receipt tokens read the same way but counted as positions (Aave
    aTokens as DEPOSIT, debt tokens as LOAN). `spam = true` tokens are known so they can be
    recognised and hidden; they are never read nor valued.
    """

    address: Address
    symbol: str = Field(min_length=1)
    decimals: int | None = Field(None, ge=0, le=255)
    kind: AssetKind = AssetKind.ERC20
    category: Category | None = None
    price_symbol: str | None = None
    spam: bool = False

    @field_validator("kind")
    @classmethod
    def _not_native(cls, kind: AssetKind) -> AssetKind:
        if kind is AssetKind.NATIVE:
            raise ValueError("the native coin is described by native_symbol, not as a token")
        return kind

    @property
    def price_key(self) -> str:
        """The symbol whose price values this token (WETH -> ETH)."""
        return self.price_symbol or self.symbol

    @property
    def effective_category(self) -> Category:
        """Configured category, else NFT for ERC-721 and WALLET for the rest."""
        if self.category is not None:
            return self.category
        return Category.NFT if self.kind is AssetKind.ERC721 else Category.WALLET


class VaultConfig(_Model):
    """An ERC-4626 vault: shares via balanceOf, underlying via convertToAssets."""

    address: Address
    symbol: str = Field(min_length=1)
    underlying: str
    category: Category = Category.STAKED


class LendingMarketConfig(_Model):
    """A money market read with `fn(account)` or `fn(account, asset)` returning uint256."""

    address: Address
    name: str = Field(min_length=1)
    supplied: list[str] = Field(default_factory=list)
    borrowed: list[str] = Field(default_factory=list)
    supply_function: str = "supplied(address,address)"
    borrow_function: str = "borrowed(address,address)"

    @field_validator("supply_function", "borrow_function")
    @classmethod
    def _signature(cls, value: str) -> str:
        if not _SIGNATURE.fullmatch(value):
            raise ValueError(f"want name(address) or name(address,address), got {value!r}")
        return value


class PriceFeedConfig(_Model):
    """A Chainlink-style AggregatorV3 quoting one symbol in USD (or in another feed's symbol)."""

    aggregator: Address
    max_age: int = Field(3600, gt=0)
    quote: str = "USD"


class DexPoolConfig(_Model):
    """A Uniswap V2-style pair pricing a token in the pair's other (quote) token.

    The price is reserve(quote) / reserve(token), scaled by decimals, times the quote's USD
    price. A pool whose quote side is worth less than `min_liquidity_usd` is not used: thin
    pools are cheap to move.
    """

    pair: Address
    quote: str = Field(min_length=1)
    min_liquidity_usd: Decimal = Field(Decimal(100_000), ge=0)


V3_POOL_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
"""keccak256 of UniswapV3Pool's creation code (v3-periphery's PoolAddress.POOL_INIT_CODE_HASH)."""

DEX_QUOTE_TOKENS = ("WETH", "USDC", "USDT", "DAI")


class UniswapV3Config(_Model):
    """Uniswap V3 on one chain: position NFTs to read, and factory pools to price tokens with.

    Pools are found with `getPool(token, quote, fee)` over `fee_tiers` against `quote_tokens`
    (those in the chain's tokens), once per process. A pool whose quote-token balance is worth
    less than `min_liquidity_usd` is not used. The price is the pool's `observe` TWAP over
    `twap_seconds` when its observations reach back that far, else `slot0`.
    """

    factory: Address
    position_manager: Address | None = None
    pool_init_code_hash: str = Field(V3_POOL_INIT_CODE_HASH, pattern=r"^0x[0-9a-fA-F]{64}$")
    fee_tiers: list[int] = Field(default_factory=lambda: [100, 500, 3000, 10000])
    quote_tokens: list[str] = Field(default_factory=lambda: list(DEX_QUOTE_TOKENS))
    min_liquidity_usd: Decimal = Field(Decimal(100_000), ge=0)
    twap_seconds: int = Field(1800, ge=0)
    positions_guess: int = Field(12, ge=0, le=1000)
    """Position indices asked for per wallet before its NFT count is first seen: a wallet with
    more takes a fourth round on its first read only (later reads ask for the count seen)."""


class UniswapV2Config(_Model):
    """Uniswap V2 on one chain: LP tokens to read, and factory pairs to price tokens with."""

    factory: Address | None = None
    lp_pairs: list[Address] = Field(default_factory=list)
    quote_tokens: list[str] = Field(default_factory=lambda: list(DEX_QUOTE_TOKENS))
    min_liquidity_usd: Decimal = Field(Decimal(100_000), ge=0)


class ChainConfig(_Model):
    """One EVM network."""

    chain_id: int = Field(gt=0)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    native_symbol: str = Field(min_length=1)
    native_decimals: int = Field(18, ge=0, le=255)
    native_price_symbol: str | None = None
    rpc_urls: list[str] = Field(default_factory=list)
    multicall3: Address = MULTICALL3
    rpc: RpcSettings = Field(default_factory=RpcSettings)
    tokens: list[TokenConfig] = Field(default_factory=list)
    vaults: list[VaultConfig] = Field(default_factory=list)
    lending: list[LendingMarketConfig] = Field(default_factory=list)
    price_feeds: dict[str, PriceFeedConfig] = Field(default_factory=dict)
    dex_pools: dict[str, DexPoolConfig] = Field(default_factory=dict)
    uniswap_v3: UniswapV3Config | None = None
    uniswap_v2: UniswapV2Config | None = None
    # Rebalancing gas estimates use a configured gas price, not a live eth_gasPrice read: a plan
    # then costs no RPC round trip and is reproducible. None: the cost is reported unknown.
    gas_price_gwei: Decimal | None = Field(None, ge=0)
    swap_gas_units: int = Field(SWAP_GAS_UNITS, gt=0)
    # Uniswap factories of the chain (pool discovery by getPool/getPair); None: not deployed.

    @model_validator(mode="after")
    def _references(self) -> Self:
        seen: dict[str, str] = {}
        for token in self.tokens:
            if token.address in seen:
                raise ValueError(f"token {token.address} listed twice ({seen[token.address]})")
            seen[token.address] = token.symbol
        symbols = [t.symbol for t in self.tokens]
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"token symbols listed twice: {', '.join(duplicates)}")
        for vault in self.vaults:
            self.token(vault.underlying)
        for market in self.lending:
            for ref in (*market.supplied, *market.borrowed):
                self.token(ref)
        for symbol, pool in self.dex_pools.items():
            if self.token(symbol) is self.token(pool.quote):
                raise ValueError(f"chain {self.name}: pool for {symbol} is quoted in itself")
        return self

    @property
    def id(self) -> ChainId:
        """The chain id as its domain type."""
        return ChainId(self.chain_id)

    @property
    def native_price_key(self) -> str:
        """The symbol whose price values the native coin."""
        return self.native_price_symbol or self.native_symbol

    def token(self, ref: str) -> TokenConfig:
        """The configured token named by symbol or address."""
        for token in self.tokens:
            if ref in (token.symbol, token.address) or ref.lower() == token.address.lower():
                return token
        raise ValueError(f"chain {self.name}: no token {ref!r} in its tokens list")

    def price_keys(self) -> set[str]:
        """Every symbol this chain's holdings need a price for."""
        keys = {self.native_price_key}
        keys.update(t.price_key for t in self.tokens if not t.spam)
        keys.update(self.token(v.underlying).price_key for v in self.vaults)
        for market in self.lending:
            keys.update(self.token(r).price_key for r in (*market.supplied, *market.borrowed))
        # Display-currency rates (EUR/USD …): stored with every refresh for conversions.
        keys.update(RATE_SYMBOLS.intersection(self.price_feeds))
        return keys


COINGECKO_PLATFORMS = {
    1: "ethereum",
    10: "optimistic-ethereum",
    56: "binance-smart-chain",
    100: "xdai",
    137: "polygon-pos",
    8453: "base",
    42161: "arbitrum-one",
    43114: "avalanche",
    59144: "linea",
    534352: "scroll",
}
"""CoinGecko's asset-platform ids (its `GET /asset_platforms`) of the shipped chains."""


class HttpPriceConfig(_Model):
    """A CoinGecko-style API (off unless enabled): `/simple/price` for the symbols `ids`
    names, `/simple/token_price/<platform>` for tokens known by address on `platforms`."""

    enabled: bool = False
    base_url: str = "https://api.coingecko.com/api/v3"
    ids: dict[str, str] = Field(default_factory=dict)
    platforms: dict[int, str] = Field(default_factory=lambda: dict(COINGECKO_PLATFORMS))
    """Chain id -> the API's platform id, for pricing listed and discovered tokens."""
    addresses_per_request: int = Field(30, ge=1)
    api_key_header: str | None = None
    api_key_env: str | None = None
    max_age: int = Field(900, gt=0)
    timeout_s: float = Field(10.0, gt=0)


class TokenListsConfig(_Model):
    """Which token lists name the tokens every wallet is checked for (`tokenlists`)."""

    shipped: bool = True
    """The Uniswap default list shipped as package data."""
    sources: list[str] = Field(default_factory=list)
    """The user's own lists: file paths or http(s) URLs, validated against the schema."""


class DiscoveryConfig(_Model):
    """Finding the tokens a wallet received that no list names (`discovery`)."""

    enabled: bool = True
    initial_blocks: int = Field(1_000_000, ge=0)
    """A new wallet's first scan covers this many blocks back from the head."""
    max_range_blocks: int = Field(10_000, ge=1)
    """The widest eth_getLogs range asked for; halved on "range too large"/"too many results"."""


class PricesConfig(_Model):
    """Which price sources to use, tried in order."""

    http: HttpPriceConfig = Field(default_factory=HttpPriceConfig)


class ChainsConfig(_Model):
    """Every configured chain plus price-source settings."""

    chains: list[ChainConfig] = Field(default_factory=list)
    prices: PricesConfig = Field(default_factory=PricesConfig)
    token_lists: TokenListsConfig = Field(default_factory=TokenListsConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for attr in ("chain_id", "name"):
            values = [getattr(c, attr) for c in self.chains]
            duplicates = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"chain {attr} listed twice: {', '.join(duplicates)}")
        quotable = {"USD"} | {s for c in self.chains for s in c.price_feeds}
        for chain in self.chains:
            for symbol, feed in chain.price_feeds.items():
                if feed.quote not in quotable or feed.quote == symbol:
                    raise ValueError(
                        f"chain {chain.name}: feed {symbol} is quoted in {feed.quote}, "
                        "which is neither USD nor another feed's symbol"
                    )
        return self

    def chain(self, chain_id: int) -> ChainConfig:
        """The chain with this id; InvalidInput when it is not configured."""
        for chain in self.chains:
            if chain.chain_id == chain_id:
                return chain
        configured = ", ".join(str(c.chain_id) for c in self.chains) or "none"
        raise InvalidInput(
            f"chain {chain_id} is not configured (configured: {configured})",
            code="UNKNOWN_CHAIN",
        )


def load_chains(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    max_tokens_per_chain: int | None = None,
) -> ChainsConfig:
    """Load and validate a chains TOML file (the shipped mainnet file by default)."""
    source = Path(path) if path is not None else SHIPPED_CHAINS_FILE
    with source.open("rb") as handle:
        # JSON is accepted too: it is what tools (the demo, tests) write without a TOML writer.
        raw = json.load(handle) if source.suffix == ".json" else tomllib.load(handle)
    return parse_chains(raw, env=env, source=str(source), max_tokens_per_chain=max_tokens_per_chain)


def parse_chains(
    raw: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "<config>",
    max_tokens_per_chain: int | None = None,
) -> ChainsConfig:
    """Validate an already-parsed TOML document, applying RPC URL overrides from `env`.

    `max_tokens_per_chain` caps the tokens (with vault shares, every wallet read asks for
    each of them) a chain may list: above it the config is refused, naming the chain.
    """
    environ = os.environ if env is None else env
    document = dict(raw)
    document["chains"] = [_with_rpc_urls(dict(c), environ) for c in raw.get("chains", [])]
    try:
        config = ChainsConfig.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(
            f"{source}: invalid chains config: {exc}", code="INVALID_CONFIG"
        ) from exc
    for chain in config.chains:
        if max_tokens_per_chain is not None and len(chain.tokens) > max_tokens_per_chain:
            raise InvalidInput(
                f"{source}: chain {chain.name} lists {len(chain.tokens)} tokens, more than the "
                f"cap of {max_tokens_per_chain} (CHAINFOLIO_MAX_TOKENS_PER_CHAIN)",
                code="TOO_MANY_TOKENS",
            )
    return config


def _with_rpc_urls(chain: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for key in (
        f"CHAINFOLIO_RPC_URLS_{chain.get('chain_id')}",
        f"CHAINFOLIO_RPC_URLS_{str(chain.get('name', '')).upper().replace('-', '_')}",
    ):
        if env.get(key):
            chain["rpc_urls"] = [u.strip() for u in env[key].split(",") if u.strip()]
            return chain
    urls = chain.get("rpc_urls", [])
    if isinstance(urls, list):
        expanded = (_ENV_REF.sub(lambda m: env.get(m.group(1), ""), str(u)).strip() for u in urls)
        chain["rpc_urls"] = [u for u in expanded if u]
    return chain
