"""Chains config: the shipped mainnet file and the loader's validation."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from chainfolio.core.domain import AssetKind, Category
from chainfolio.core.errors import InvalidInput
from chainfolio.fetchers.addresses import is_checksummed
from chainfolio.fetchers.config import (
    MULTICALL3,
    SHIPPED_CHAINS_FILE,
    load_chains,
    parse_chains,
)
from chainfolio.fetchers.portfolio import validate_wallet

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
FEED = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"


def _addresses(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [a for value in node.values() for a in _addresses(value)]
    if isinstance(node, list):
        return [a for value in node for a in _addresses(value)]
    if isinstance(node, str) and node.startswith("0x"):
        return [node]
    return []


def _chain(**overrides: Any) -> dict[str, Any]:
    chain: dict[str, Any] = {
        "chain_id": 1,
        "name": "ethereum",
        "native_symbol": "ETH",
        "tokens": [{"address": USDC, "symbol": "USDC", "decimals": 6}],
        "price_feeds": {"ETH": {"aggregator": FEED}},
    }
    chain.update(overrides)
    return chain


def test_shipped_mainnet_file_loads_thirteen_chains() -> None:
    config = load_chains(env={})
    assert {c.chain_id: c.name for c in config.chains} == {
        1: "ethereum",
        137: "polygon",
        42161: "arbitrum",
        8453: "base",
        10: "optimism",
        56: "bnb",
        43114: "avalanche",
        100: "gnosis",
        59144: "linea",
        534352: "scroll",
        42220: "celo",
        81457: "blast",
        130: "unichain",
    }
    feeds = {s for c in config.chains for s in c.price_feeds}
    for chain in config.chains:
        assert chain.multicall3 == MULTICALL3
        assert chain.rpc_urls == []  # users bring their own nodes
        # every holding on the chain can be priced by some configured feed or pool
        pooled = {chain.token(s).price_key for s in chain.dex_pools}
        assert chain.price_keys() <= feeds | pooled
    for chain in config.chains[:5]:  # the first five list their main tokens and feeds
        symbols = {t.symbol for t in chain.tokens}
        assert {"USDC", "USDT", "DAI", "WETH"} <= symbols
        assert {"ETH", "USDC", "USDT", "DAI"} <= set(chain.price_feeds)
    assert config.chain(1).dex_pools["UNI"].quote == "WETH"  # UNI/WETH Uniswap V2
    # Uniswap factories as @uniswap/sdk-core 7.19.4 lists them (Gnosis and Scroll: none).
    v3, v2, base = config.chain(1).uniswap_v3, config.chain(1).uniswap_v2, config.chain(8453)
    assert v3 is not None
    assert v3.factory == "0x1F98431c8aD98523631AE4a59f267346ea31F984"
    assert v2 is not None
    assert v2.factory == "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"
    assert base.uniswap_v3 is not None
    assert base.uniswap_v3.factory == "0x33128a8fC17869897dcE68Ed026d694621f6FDfD"
    without = {c.name for c in config.chains if c.uniswap_v3 is None}
    assert without == {"gnosis", "scroll"}


def test_shipped_file_writes_every_address_in_eip55_form() -> None:
    raw = tomllib.loads(SHIPPED_CHAINS_FILE.read_text())
    addresses = _addresses(raw)
    assert len(addresses) > 70
    assert [a for a in addresses if not is_checksummed(a)] == []


def test_shipped_tokens_have_their_real_decimals() -> None:
    config = load_chains(env={})
    decimals = {(c.name, t.symbol): t.decimals for c in config.chains for t in c.tokens}
    for chain in ("ethereum", "polygon", "arbitrum", "base", "optimism"):
        assert decimals[(chain, "USDC")] == 6
        assert decimals[(chain, "USDT")] == 6
        assert decimals[(chain, "DAI")] == 18
        assert decimals[(chain, "WETH")] == 18
    assert decimals[("ethereum", "WBTC")] == 8
    assert decimals[("base", "cbBTC")] == 8


def test_rpc_urls_come_from_the_environment() -> None:
    env = {
        "CHAINFOLIO_RPC_URLS_1": "http://a.invalid, http://b.invalid",
        "POLYGON_RPC_URL": "http://polygon.invalid",
        "CHAINFOLIO_RPC_URLS_BASE": "http://base.invalid",
    }
    config = load_chains(env=env)
    assert config.chain(1).rpc_urls == ["http://a.invalid", "http://b.invalid"]
    assert config.chain(137).rpc_urls == ["http://polygon.invalid"]
    assert config.chain(8453).rpc_urls == ["http://base.invalid"]
    assert config.chain(10).rpc_urls == []


def test_lowercase_addresses_are_normalised() -> None:
    config = parse_chains({"chains": [_chain(multicall3=MULTICALL3.lower())]}, env={})
    assert config.chains[0].multicall3 == MULTICALL3


def test_a_wrong_checksum_fails_loading(tmp_path: Path) -> None:
    bad = USDC[:2] + USDC[2].lower() + USDC[3:]  # A -> a breaks the EIP-55 checksum
    path = tmp_path / "chains.toml"
    path.write_text(
        f'[[chains]]\nchain_id = 1\nname = "x"\nnative_symbol = "ETH"\n'
        f'[[chains.tokens]]\naddress = "{bad}"\nsymbol = "USDC"\n'
    )
    with pytest.raises(InvalidInput, match="EIP-55"):
        load_chains(path, env={})


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        (_chain(vaults=[{"address": USDC, "symbol": "v", "underlying": "NOPE"}]), "no token"),
        (
            _chain(tokens=[{"address": USDC, "symbol": "A"}, {"address": USDC, "symbol": "B"}]),
            "listed twice",
        ),
        (
            _chain(lending=[{"address": USDC, "name": "m", "supply_function": "bal(uint256)"}]),
            "name\\(address\\)",
        ),
        (_chain(price_feeds={"X": {"aggregator": FEED, "quote": "EUR"}}), "quoted in EUR"),
        (_chain(tokens=[{"address": USDC, "symbol": "E", "kind": "native"}]), "native"),
        (_chain(name="Has Spaces"), "name"),
    ],
)
def test_inconsistent_chains_are_rejected(chain: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_chains({"chains": [chain]}, env={})


def test_duplicate_chain_ids_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="chain_id listed twice"):
        parse_chains({"chains": [_chain(), _chain(name="other")]}, env={})


def test_tokens_per_chain_are_capped() -> None:
    tokens = [
        {"address": "0x" + f"{n:040x}", "symbol": f"T{n}", "decimals": 18} for n in range(1, 4)
    ]
    document = {"chains": [_chain(tokens=tokens)]}
    assert len(parse_chains(document, env={}, max_tokens_per_chain=3).chains[0].tokens) == 3
    with pytest.raises(InvalidInput, match="chain ethereum lists 3 tokens, more than the cap of 2"):
        parse_chains(document, env={}, max_tokens_per_chain=2)
    with pytest.raises(InvalidInput) as refused:
        parse_chains(document, env={}, max_tokens_per_chain=2)
    assert refused.value.code == "TOO_MANY_TOKENS"
    shipped = load_chains(SHIPPED_CHAINS_FILE, env={}, max_tokens_per_chain=1_000)  # the default
    assert shipped.chains


def test_token_defaults_follow_their_kind() -> None:
    nft = {"address": USDC, "symbol": "NFT", "kind": "erc721"}
    token = parse_chains({"chains": [_chain(tokens=[nft])]}, env={}).chains[0].tokens[0]
    assert token.kind is AssetKind.ERC721
    assert token.effective_category is Category.NFT
    assert token.price_key == "NFT"


def test_validate_wallet_checks_chain_and_address() -> None:
    config = load_chains(env={})
    assert validate_wallet(config, chain_id=137, address=USDC.lower()) == (137, USDC)
    with pytest.raises(InvalidInput) as unknown:
        validate_wallet(config, chain_id=999_999, address=USDC)
    assert unknown.value.code == "UNKNOWN_CHAIN"
    with pytest.raises(InvalidInput) as bad:
        validate_wallet(config, chain_id=1, address="0x1234")
    assert bad.value.code == "INVALID_ADDRESS"
