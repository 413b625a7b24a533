"""Odd ERC-20s on Hardhat: metadata decoded whatever its type, amounts exact to the base unit."""

from __future__ import annotations

import pytest

from chainfolio.devnet import Devnet
from chainfolio.fetchers import open_chains
from chainfolio.fetchers.config import TokenConfig
from chainfolio.fetchers.metadata import as_token, decode_decimals, decode_text, read_metadata
from chainfolio.fetchers.multicall import CallResult
from chainfolio.fetchers.prices import address_key

from .conftest import devnet_config
from .direct import DirectRpc
from .tokens import deploy_token, fresh_wallet, mint, token_call

pytestmark = pytest.mark.chain


async def test_odd_tokens_read_exactly_and_unreadable_ones_are_unknown_with_a_reason(
    restore_devnet: Devnet,
) -> None:
    deployment = restore_devnet.chain(1)
    wallet = fresh_wallet(10)
    deployer = deployment.deployer
    tokens = {
        "ZERO": deploy_token(deployment, "MintableERC20", "Zero Decimals", "ZERO", 0),
        "TWO": deploy_token(deployment, "MintableERC20", "Two Decimals", "TWO", 2),
        "BIG": deploy_token(deployment, "MintableERC20", "Twenty-four", "BIG", 24),
        "FEE": deploy_token(deployment, "FeeOnTransferToken", "Fee Token", "FEE", 18),
        "MKR": deploy_token(deployment, "Bytes32MetadataToken"),
        "NRT": deploy_token(deployment, "NoReturnToken"),
        "NODEC": deploy_token(deployment, "RevertingDecimalsToken"),
    }
    artifacts = {
        "ZERO": "MintableERC20",
        "TWO": "MintableERC20",
        "BIG": "MintableERC20",
        "FEE": "FeeOnTransferToken",
        "MKR": "Bytes32MetadataToken",
        "NRT": "NoReturnToken",
        "NODEC": "RevertingDecimalsToken",
    }
    amounts = {"ZERO": 7, "TWO": 12_345, "BIG": 3 * 10**24 + 1, "MKR": 10**18 + 3, "NODEC": 99}
    for symbol, amount in amounts.items():
        mint(deployment, artifacts[symbol], tokens[symbol], wallet, amount)
    # Sent, not minted: the fee token burns 1% on the way; the no-return token returns nothing.
    for symbol, sent in (("FEE", 10**20 + 55), ("NRT", 5_000_001)):
        mint(deployment, artifacts[symbol], tokens[symbol], deployer, sent)
        token_call(deployment, artifacts[symbol], tokens[symbol], "transfer", wallet, sent)
    amounts["FEE"] = 10**20 + 55 - (10**20 + 55) // 100
    amounts["NRT"] = 5_000_001

    config = devnet_config([deployment])
    async with open_chains(config) as chains:
        reader = chains.reader(1)
        metadata = await read_metadata(reader, list(tokens.values()))
        discovered = [as_token(m, price_key=address_key(1, m.address)) for m in metadata.values()]
        read = await reader.read([wallet], discovered={wallet: discovered})

    by_address = {m.address: m for m in metadata.values()}
    mkr = by_address[tokens["MKR"]]
    assert (mkr.symbol, mkr.name, mkr.decimals) == ("MKR", "Maker", 18)
    assert [by_address[tokens[s]].decimals for s in ("ZERO", "TWO", "BIG", "NRT")] == [0, 2, 24, 6]
    nodec = by_address[tokens["NODEC"]]
    assert nodec.decimals is None
    assert nodec.symbol == "NODEC"
    assert "decimals() reverted" in (nodec.unreadable or "")

    holdings = {h.contract: h for h in read.holdings[wallet]}
    with DirectRpc(deployment.rpc_url) as direct:
        for symbol, address in tokens.items():
            onchain = direct.call_uint(
                address, "balanceOf(address)", ["address"], [wallet], read.block_number
            )
            assert onchain == amounts[symbol], symbol
            holding = holdings[address]
            if symbol == "NODEC":
                assert holding.amount is None  # unknown, never scaled by a guessed zero
                assert "decimals() failed" in (holding.error or "")
            else:
                assert holding.amount == onchain, symbol
                assert holding.decimals == by_address[address].decimals


def test_text_decoding_accepts_string_and_bytes32_and_refuses_garbage() -> None:
    string = bytes.fromhex(
        "0000000000000000000000000000000000000000000000000000000000000020"
        "0000000000000000000000000000000000000000000000000000000000000004"
        "5553444300000000000000000000000000000000000000000000000000000000"
    )
    assert decode_text(CallResult(True, string)) == "USDC"
    assert decode_text(CallResult(True, b"SAI".ljust(32, b"\0"))) == "SAI"
    assert decode_text(CallResult(True, b"\x01\x02")) is None
    assert decode_text(CallResult(False, b"", "reverted")) is None
    assert decode_decimals(CallResult(True, (6).to_bytes(32, "big"))) == (6, None)
    assert decode_decimals(CallResult(True, b""))[0] is None
    assert decode_decimals(CallResult(True, (256).to_bytes(32, "big")))[0] is None


async def test_a_discovered_token_with_no_contract_there_is_not_a_holding(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    wallet = fresh_wallet(11)
    nowhere = TokenConfig(address=fresh_wallet(12), symbol="GONE", decimals=18)
    async with open_chains(devnet_config([deployment])) as chains:
        read = await chains.reader(1).read([wallet], discovered={wallet: [nowhere]})
    assert nowhere.address not in {h.contract for h in read.holdings[wallet]}
