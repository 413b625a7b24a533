"""Helpers that change chain state: transfers, prices, time, snapshots."""

from __future__ import annotations

import pytest
from web3 import Web3

from chainfolio.devnet import (
    Devnet,
    accrue_vault_yield,
    devnet_contract,
    increase_time,
    mine,
    mint_token,
    set_feed_updated_at,
    set_price,
    set_time,
    transfer_native,
    transfer_token,
    web3_for,
)

pytestmark = pytest.mark.chain


def test_transfers_move_exact_amounts(restore_devnet: Devnet) -> None:
    chain = restore_devnet.chain(137)
    w3 = web3_for(chain)
    alice, bob = chain.wallets[0], chain.wallets[1]
    transfer_native(chain, sender=alice, to=bob, amount=123)
    assert w3.eth.get_balance(Web3.to_checksum_address(alice)) == chain.native_balances[alice] - 123
    assert w3.eth.get_balance(Web3.to_checksum_address(bob)) == chain.native_balances[bob] + 123
    transfer_token(chain, symbol="USDC", sender=bob, to=alice, amount=1_500_000)
    usdc = devnet_contract(w3, "MintableERC20", chain.tokens["USDC"].address)
    assert usdc.functions.balanceOf(alice).call() == chain.token_balances[alice]["USDC"] + 1_500_000
    assert usdc.functions.balanceOf(bob).call() == chain.token_balances[bob]["USDC"] - 1_500_000
    mint_token(chain, symbol="WBTC", to=bob, amount=7)
    wbtc = devnet_contract(w3, "MintableERC20", chain.tokens["WBTC"].address)
    assert wbtc.functions.balanceOf(bob).call() == chain.token_balances[bob]["WBTC"] + 7


def test_restore_devnet_reverted_previous_test(devnet: Devnet) -> None:
    chain = devnet.chain(137)
    alice = chain.wallets[0]
    balance = web3_for(chain).eth.get_balance(Web3.to_checksum_address(alice))
    assert balance == chain.native_balances[alice]


def test_set_price_and_staleness(restore_devnet: Devnet) -> None:
    chain = restore_devnet.chain(42161)
    w3 = web3_for(chain)
    feed = devnet_contract(w3, "MockV3Aggregator", chain.feeds["ETH"])
    set_price(chain, "ETH", 2_500_00000000)
    round_id, answer, _, updated_at, _ = feed.functions.latestRoundData().call()
    assert (round_id, answer) == (2, 2_500_00000000)
    assert updated_at == w3.eth.get_block("latest")["timestamp"]
    set_price(chain, "ETH", 2_400_00000000, updated_at=1_000)
    round_id, answer, started_at, updated_at, _ = feed.functions.latestRoundData().call()
    assert (round_id, answer, updated_at) == (3, 2_400_00000000, 1_000)
    assert started_at > 1_000
    set_feed_updated_at(chain, chain.feeds["BTC"], 42)
    btc = devnet_contract(w3, "MockV3Aggregator", chain.feeds["BTC"])
    assert btc.functions.latestRoundData().call()[3] == 42
    assert feed.functions.getRoundData(2).call()[1] == 2_500_00000000


def test_time_blocks_and_yield(restore_devnet: Devnet) -> None:
    chain = restore_devnet.chain(1)
    w3 = web3_for(chain)
    before = w3.eth.get_block("latest")
    assert mine(chain, 5) == before["number"] + 5
    assert increase_time(chain, 3_600) >= before["timestamp"] + 3_600
    later = w3.eth.get_block("latest")["timestamp"] + 86_400
    assert set_time(chain, later) == later
    assert w3.eth.get_block("latest")["timestamp"] == later
    vault = devnet_contract(w3, "MockERC4626Vault", chain.vault)
    rate = vault.functions.convertToAssets(10**18).call()
    accrue_vault_yield(chain, 10**18)
    assert vault.functions.convertToAssets(10**18).call() > rate
