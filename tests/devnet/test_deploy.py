"""The session devnet holds exactly what `DevnetDeployment` says it does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from eth_utils.address import is_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError

from chainfolio.devnet import (
    MULTICALL3_ADDRESS,
    Devnet,
    DevnetDeployment,
    devnet_contract,
    encode_call,
    iter_holdings,
    load_artifact,
    web3_for,
)
from tests.fixtures.devnet import onchain_holdings

pytestmark = pytest.mark.chain


def _multicall(chain: DevnetDeployment) -> tuple[Web3, Any]:
    w3 = web3_for(chain)
    return w3, devnet_contract(w3, "Multicall3", chain.multicall3)


def test_nodes_answer_their_chain_ids(devnet: Devnet) -> None:
    assert [web3_for(c).eth.chain_id for c in devnet.chains] == [1, 137, 42161]
    assert [c.chain_id for c in devnet.chains] == [1, 137, 42161]


def test_addresses_are_eip55_and_differ_between_chains(devnet: Devnet) -> None:
    for chain in devnet.chains:
        addresses = [t.address for t in chain.tokens.values()] + list(chain.feeds.values())
        addresses += [chain.nft, chain.vault, chain.lending, chain.reverting_token]
        addresses += chain.wallets
        assert all(is_checksum_address(a) for a in addresses)
        assert len(set(addresses)) == len(addresses)
    usdc = {c.tokens["USDC"].address for c in devnet.chains}
    assert len(usdc) == 3
    assert devnet.chains[0].wallets == devnet.chains[1].wallets


def test_multicall3_sits_at_canonical_address(devnet_chain: DevnetDeployment) -> None:
    w3, multicall = _multicall(devnet_chain)
    assert devnet_chain.multicall3 == MULTICALL3_ADDRESS
    code = w3.eth.get_code(Web3.to_checksum_address(MULTICALL3_ADDRESS))
    assert code.to_0x_hex() == load_artifact("Multicall3").deployed_bytecode
    assert multicall.functions.getBlockNumber().call() == w3.eth.block_number
    assert multicall.functions.getChainId().call() == 1
    wallet = devnet_chain.wallets[3]
    assert multicall.functions.getEthBalance(wallet).call() == devnet_chain.native_balances[wallet]


def test_aggregate3_reports_failure_per_call(devnet_chain: DevnetDeployment) -> None:
    _, multicall = _multicall(devnet_chain)
    wallet = devnet_chain.wallets[0]
    usdc = devnet_chain.tokens["USDC"].address
    calls = [
        (usdc, True, encode_call("MintableERC20", "balanceOf", wallet)),
        (devnet_chain.reverting_token, True, encode_call("MintableERC20", "balanceOf", wallet)),
        (MULTICALL3_ADDRESS, True, encode_call("Multicall3", "getEthBalance", wallet)),
    ]
    (ok_usdc, usdc_raw), (ok_broken, _), (ok_eth, eth_raw) = multicall.functions.aggregate3(
        calls
    ).call()
    assert ok_usdc
    assert int.from_bytes(usdc_raw) == devnet_chain.token_balances[wallet]["USDC"]
    assert not ok_broken
    assert ok_eth
    assert int.from_bytes(eth_raw) == devnet_chain.native_balances[wallet]
    strict = [(c[0], False, c[2]) for c in calls]
    with pytest.raises(ContractLogicError):
        multicall.functions.aggregate3(strict).call()
    results = multicall.functions.tryAggregate(False, [(c[0], c[2]) for c in calls]).call()
    assert [ok for ok, _ in results] == [True, False, True]


def test_every_funded_balance_is_exact(devnet: Devnet) -> None:
    for chain in devnet.chains:
        holdings = onchain_holdings(chain)
        assert holdings == list(iter_holdings(chain))
        assert len(holdings) == 20 * 6
        amounts = [amount for _, _, amount in holdings]
        assert 0 in amounts
        assert len(set(amounts)) > 100


def test_token_metadata(devnet_chain: DevnetDeployment) -> None:
    w3 = web3_for(devnet_chain)
    expected = {"USDC": 6, "USDT": 6, "WBTC": 8, "DAI": 18, "WETH": 18}
    assert {s: t.decimals for s, t in devnet_chain.tokens.items()} == expected
    for symbol, token in devnet_chain.tokens.items():
        contract = devnet_contract(w3, "MintableERC20", token.address)
        assert contract.functions.decimals().call() == expected[symbol]
        assert contract.functions.symbol().call() == symbol


def test_feeds_answer_like_chainlink(devnet_chain: DevnetDeployment) -> None:
    w3 = web3_for(devnet_chain)
    now = w3.eth.get_block("latest")["timestamp"]
    prices = {}
    for key, address in devnet_chain.feeds.items():
        feed = devnet_contract(w3, "MockV3Aggregator", address)
        decimals = feed.functions.decimals().call()
        round_id, answer, started_at, updated_at, answered_in = (
            feed.functions.latestRoundData().call()
        )
        assert decimals == devnet_chain.feed_decimals[key]
        assert answer == devnet_chain.feed_answers[key]
        assert round_id == answered_in == 1
        assert 0 < started_at <= updated_at <= now
        prices[key] = Decimal(answer).scaleb(-decimals)
        assert feed.functions.description().call()
    assert prices["ETH"] == Decimal(3000)
    assert prices["BTC"] == Decimal(65000)
    assert prices["NFT_FLOOR"] == Decimal("12.5")  # in ETH


def test_vault_exchange_rate_is_not_one(devnet_chain: DevnetDeployment) -> None:
    w3 = web3_for(devnet_chain)
    vault = devnet_contract(w3, "MockERC4626Vault", devnet_chain.vault)
    assert vault.functions.asset().call() == devnet_chain.tokens[devnet_chain.vault_asset].address
    assert vault.functions.decimals().call() == 18
    assert vault.functions.convertToAssets(10**18).call() == 105 * 10**16
    assert 10**18 - vault.functions.convertToShares(105 * 10**16).call() <= 1  # rounds down
    assert devnet_chain.vault_shares
    for wallet, shares in devnet_chain.vault_shares.items():
        assert vault.functions.balanceOf(wallet).call() == shares
        assert vault.functions.convertToAssets(shares).call() > shares
    assert devnet_chain.wallets[0] in devnet_chain.vault_shares


def test_lending_views(devnet_chain: DevnetDeployment) -> None:
    w3 = web3_for(devnet_chain)
    market = devnet_contract(w3, "MockLendingMarket", devnet_chain.lending)
    usdc, weth = devnet_chain.tokens["USDC"].address, devnet_chain.tokens["WETH"].address
    assert len(devnet_chain.lending_supplied) == 4
    for wallet in devnet_chain.wallets:
        supplied = devnet_chain.lending_supplied.get(wallet, {}).get("USDC", 0)
        borrowed = devnet_chain.lending_borrowed.get(wallet, {}).get("WETH", 0)
        assert market.functions.supplied(wallet, usdc).call() == supplied
        assert market.functions.borrowed(wallet, weth).call() == borrowed
        assert market.functions.borrowed(wallet, usdc).call() == 0


def test_nft_holdings(devnet_chain: DevnetDeployment) -> None:
    w3 = web3_for(devnet_chain)
    nft = devnet_contract(w3, "MintableERC721", devnet_chain.nft)
    for wallet in devnet_chain.wallets:
        ids = devnet_chain.nft_ids.get(wallet, ())
        assert nft.functions.balanceOf(wallet).call() == len(ids)
        owned = [nft.functions.tokenOfOwnerByIndex(wallet, i).call() for i in range(len(ids))]
        assert tuple(owned) == ids
        assert all(nft.functions.ownerOf(i).call() == wallet for i in ids)
    assert nft.functions.totalSupply().call() == sum(map(len, devnet_chain.nft_ids.values()))


def test_reverting_token_reverts_on_balance_of(devnet_chain: DevnetDeployment) -> None:
    w3 = web3_for(devnet_chain)
    token = devnet_contract(w3, "RevertingToken", devnet_chain.reverting_token)
    assert token.functions.decimals().call() == 18
    with pytest.raises(ContractLogicError, match="always reverts"):
        token.functions.balanceOf(devnet_chain.wallets[0]).call()
