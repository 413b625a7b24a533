"""Token lists: the shipped Uniswap list, users' lists validated, listed tokens read sparsely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from eth_utils.address import is_checksum_address

from chainfolio.core.errors import InvalidInput
from chainfolio.devnet import Devnet
from chainfolio.fetchers import open_chains, read_portfolio
from chainfolio.fetchers.config import TokenListsConfig
from chainfolio.fetchers.tokenlists import (
    load_token_list,
    parse_token_list,
    shipped_tokens,
    tokens_by_chain,
)

from .conftest import devnet_config
from .direct import DirectRpc
from .servers import rpc_proxy, serve
from .tokens import deploy_token, fresh_wallet, mint


def token_list(tokens: list[dict[str, Any]], name: str = "Test list") -> dict[str, Any]:
    """A Token Lists document around `tokens`."""
    return {
        "name": name,
        "timestamp": "2026-01-01T00:00:00Z",
        "version": {"major": 1, "minor": 0, "patch": 0},
        "tokens": tokens,
    }


def test_the_shipped_list_covers_the_main_chains_with_valid_addresses() -> None:
    per_chain = tokens_by_chain([shipped_tokens()])
    assert len(per_chain[1]) >= 400
    assert len(per_chain[42161]) >= 200
    assert len(per_chain[8453]) >= 100
    assert all(is_checksum_address(t.address) for t in shipped_tokens())
    usdc = next(t for t in per_chain[1] if t.symbol == "USDC")
    assert (usdc.address, usdc.decimals) == ("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6)


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ({"chainId": 1, "address": "0x12", "symbol": "X", "name": "X", "decimals": 18}, "address"),
        ({"chainId": 1, "address": "0x" + "a" * 40, "symbol": "X", "name": "X"}, "tokens/0"),
        (
            {"chainId": 1, "address": "0x" + "a" * 40, "symbol": "X", "name": "X", "decimals": 300},
            "decimals",
        ),
    ],
    ids=["bad-address", "no-decimals", "decimals-too-big"],
)
def test_a_list_that_breaks_the_schema_is_refused_with_where(
    entry: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_token_list(token_list([entry]), source="mine.json")
    assert caught.value.code == "INVALID_TOKEN_LIST"
    assert where in caught.value.message
    assert "mine.json" in caught.value.message


async def test_lists_load_from_files_and_urls(tmp_path: Path) -> None:
    entry = {
        "chainId": 1,
        "address": "0x6B175474E89094C44Da98b954EedeAC495271d0F",
        "symbol": "DAI",
        "name": "Dai",
        "decimals": 18,
    }
    path = tmp_path / "list.json"
    path.write_text(json.dumps(token_list([entry])))
    from_file = await load_token_list(str(path))

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.json_response(token_list([entry], name="Served"))

    async with serve(handler) as url, httpx.AsyncClient() as http:
        from_url = await load_token_list(f"{url}/list.json", http=http)
        with pytest.raises(InvalidInput) as caught:
            await load_token_list(f"{url.rsplit(':', 1)[0]}:1/none.json", http=http)
    assert caught.value.code == "INVALID_TOKEN_LIST"
    assert [t.symbol for t in from_file] == [t.symbol for t in from_url] == ["DAI"]
    assert from_url[0].list_name == "Served"


@pytest.mark.chain
async def test_listed_tokens_become_holdings_only_when_held_in_two_round_trips(
    restore_devnet: Devnet, tmp_path: Path
) -> None:
    deployment = restore_devnet.chain(1)
    wallet = fresh_wallet(20)
    listed: dict[str, str] = {}
    held: dict[str, int] = {}
    for i in range(32):
        symbol = f"LST{i:02d}"
        listed[symbol] = deploy_token(
            deployment, "MintableERC20", f"Listed {i}", symbol, 6 + i % 13
        )
        if i < 30:  # two listed tokens the wallet never received
            held[symbol] = 10**9 * (i + 1) + i
            mint(deployment, "MintableERC20", listed[symbol], wallet, held[symbol])
    entries = [
        {"chainId": 1, "address": a, "symbol": s, "name": s, "decimals": 6 + i % 13}
        for i, (s, a) in enumerate(listed.items())
    ]
    path = tmp_path / "devnet.tokenlist.json"
    path.write_text(json.dumps(token_list(entries)))

    async with rpc_proxy(deployment.rpc_url) as (url, proxy):
        config = devnet_config([deployment], rpc_urls={1: [url]}).model_copy(
            update={"token_lists": TokenListsConfig(shipped=False, sources=[str(path)])}
        )
        async with open_chains(config) as chains:
            await chains.reader(1).read([wallet])  # learns the configured tokens' decimals
            proxy.reset()
            read = await read_portfolio(chains, [(1, wallet)], with_prices=False)
    assert proxy.http_requests <= 2
    holdings = {h.symbol: h for h in read.chains[1].holdings[wallet]}
    assert set(holdings) & set(listed) == set(held)
    block = read.chains[1].status.block_number
    with DirectRpc(deployment.rpc_url) as direct:
        for symbol, amount in held.items():
            onchain = direct.call_uint(
                listed[symbol], "balanceOf(address)", ["address"], [wallet], block
            )
            assert holdings[symbol].amount == onchain == amount
            assert holdings[symbol].price is None  # no feed for LSTxx: unpriced, not zero
