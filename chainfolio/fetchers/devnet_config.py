"""Chain config for the local Hardhat devnet (tests, benchmarks and the demo).

Typed against the shape of `chainfolio.devnet` deployments rather than importing it, so the
fetchers never depend on the devnet package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from chainfolio.fetchers.config import ChainsConfig, RpcSettings


class TokenDeploymentLike(Protocol):
    """A deployed devnet ERC-20."""

    @property
    def symbol(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def decimals(self) -> int: ...


class DeploymentLike(Protocol):
    """One devnet chain with its deployed contracts."""

    @property
    def chain_id(self) -> int: ...
    @property
    def rpc_url(self) -> str: ...
    @property
    def multicall3(self) -> str: ...
    @property
    def tokens(self) -> Mapping[str, TokenDeploymentLike]: ...
    @property
    def nft(self) -> str: ...
    @property
    def vault(self) -> str: ...
    @property
    def vault_asset(self) -> str: ...
    @property
    def lending(self) -> str: ...
    @property
    def reverting_token(self) -> str: ...
    @property
    def feeds(self) -> Mapping[str, str]: ...


# Stablecoin / wrapped mapping: WETH is valued with the ETH feed, WBTC with BTC and USDT with
# the USDC feed (the devnet has no USDT feed).
DEVNET_PRICE_SYMBOLS = {"WETH": "ETH", "WBTC": "BTC", "USDT": "USDC"}
NFT_SYMBOL = "CFPUNK"  # the symbols the devnet deploys its NFT and vault with
VAULT_SYMBOL = "cfWETH"
NFT_FLOOR_FEED = "NFT_FLOOR"
REVERTING_SYMBOL = "BRKN"


def devnet_chain_name(chain_id: int) -> str:
    """The config name of a devnet chain."""
    return f"devnet-{chain_id}"


def config_from_devnet(
    deployments: Sequence[DeploymentLike],
    *,
    rpc_urls: Mapping[int, Sequence[str]] | None = None,
    rpc: RpcSettings | None = None,
    max_age: int = 3600,
    nft_floor_quote: str = "ETH",
    read_decimals: bool = True,
    lending_supplied: Sequence[str] = ("USDC",),
    lending_borrowed: Sequence[str] = ("WETH",),
) -> ChainsConfig:
    """A ChainsConfig describing devnet chains: every token, the NFT, vault, lending and feeds.

    `read_decimals` leaves token decimals out so they are read on chain once and cached;
    `rpc_urls` replaces a chain's single node URL (e.g. to put a dead URL first).
    """
    chains: list[dict[str, Any]] = []
    for deployment in deployments:
        tokens: list[dict[str, Any]] = []
        for symbol, token in deployment.tokens.items():
            entry: dict[str, Any] = {"address": token.address, "symbol": symbol}
            if not read_decimals:
                entry["decimals"] = token.decimals
            if symbol in DEVNET_PRICE_SYMBOLS:
                entry["price_symbol"] = DEVNET_PRICE_SYMBOLS[symbol]
            tokens.append(entry)
        tokens.append(
            {
                "address": deployment.nft,
                "symbol": NFT_SYMBOL,
                "kind": "erc721",
                "price_symbol": NFT_FLOOR_FEED,
            }
        )
        tokens.append({"address": deployment.reverting_token, "symbol": REVERTING_SYMBOL})
        # `vault_asset` names the underlying by symbol ("WETH"); an address is accepted too.
        underlying = next(
            s
            for s, t in deployment.tokens.items()
            if deployment.vault_asset == s or deployment.vault_asset.lower() == t.address.lower()
        )
        feeds: dict[str, Any] = {
            symbol: {"aggregator": address, "max_age": max_age}
            for symbol, address in deployment.feeds.items()
            if symbol != NFT_FLOOR_FEED
        }
        if NFT_FLOOR_FEED in deployment.feeds:
            feeds[NFT_FLOOR_FEED] = {
                "aggregator": deployment.feeds[NFT_FLOOR_FEED],
                "max_age": max_age,
                "quote": nft_floor_quote,
            }
        chains.append(
            {
                "chain_id": deployment.chain_id,
                "name": devnet_chain_name(deployment.chain_id),
                "native_symbol": "ETH",
                "rpc_urls": list((rpc_urls or {}).get(deployment.chain_id, [deployment.rpc_url])),
                "multicall3": deployment.multicall3,
                "rpc": (rpc or RpcSettings()).model_dump(),
                "tokens": tokens,
                "vaults": [
                    {
                        "address": deployment.vault,
                        "symbol": VAULT_SYMBOL,
                        "underlying": underlying,
                    }
                ],
                "lending": [
                    {
                        "address": deployment.lending,
                        "name": "devnet-lending",
                        "supplied": list(lending_supplied),
                        "borrowed": list(lending_borrowed),
                    }
                ],
                "price_feeds": feeds,
            }
        )
    # The shipped list names mainnet addresses: on a devnet with chain id 1 they hold no code.
    return ChainsConfig.model_validate({"chains": chains, "token_lists": {"shipped": False}})
