"""Balances through the whole read path against the Hardhat devnet, checked call by call."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chainfolio.core.domain import NATIVE, AssetKind, Category, Holding
from chainfolio.devnet import Devnet, DevnetDeployment, transfer_native, transfer_token
from chainfolio.fetchers import ChainsConfig, ChainSet, ChainState, open_chains, read_portfolio
from chainfolio.fetchers.devnet_config import NFT_SYMBOL, REVERTING_SYMBOL, VAULT_SYMBOL

from .conftest import devnet_config
from .direct import DirectRpc

pytestmark = pytest.mark.chain


def _by_symbol(holdings: list[Holding]) -> dict[tuple[str, Category], Holding]:
    return {(h.symbol, h.category): h for h in holdings}


async def _read_all(chains: ChainSet, deployment: DevnetDeployment) -> dict[str, list[Holding]]:
    result = await read_portfolio(chains, [(deployment.chain_id, w) for w in deployment.wallets])
    chain = result.chains[deployment.chain_id]
    assert chain.status.state is ChainState.OK, chain.status
    return dict(chain.holdings)


@pytest.mark.parametrize("read_decimals", [True, False], ids=["decimals-read", "decimals-config"])
async def test_every_balance_equals_a_direct_eth_call_at_the_same_block(
    devnet: Devnet, read_decimals: bool
) -> None:
    deployment = devnet.chain(137)
    config = devnet_config([deployment], read_decimals=read_decimals)
    async with open_chains(config) as chains:
        holdings = await _read_all(chains, deployment)
    checked = 0
    with DirectRpc(deployment.rpc_url) as direct:
        for wallet, owned in holdings.items():
            for holding in owned:
                if holding.symbol == REVERTING_SYMBOL:
                    continue
                assert holding.amount == _direct(direct, wallet, holding), holding
                checked += 1
    for wallet, owned in holdings.items():
        for holding in owned:
            if holding.kind is AssetKind.NATIVE:
                assert holding.contract == NATIVE
                assert holding.amount == deployment.native_balances[wallet]
            elif holding.kind is AssetKind.ERC20 and holding.symbol in deployment.tokens:
                assert holding.decimals == deployment.tokens[holding.symbol].decimals
                assert holding.amount == deployment.token_balances[wallet][holding.symbol]
    assert len({h.block_number for hs in holdings.values() for h in hs}) == 1
    assert {h.decimals for hs in holdings.values() for h in hs if h.symbol != VAULT_SYMBOL} == {
        0,
        6,
        8,
        18,
    }
    # per wallet: native, 5 ERC-20s, the NFT, the vault, supplied USDC and borrowed WETH
    assert checked == 20 * 10


def _direct(direct: DirectRpc, wallet: str, holding: Holding) -> int:
    """The same amount read with plain single eth_calls at the holding's block."""
    block = holding.block_number
    assert block is not None
    if holding.kind is AssetKind.NATIVE:
        return direct.native_balance(wallet, block)
    if holding.kind in (AssetKind.ERC20, AssetKind.ERC721):
        return direct.balance_of(holding.contract, wallet, block)
    if holding.category is Category.STAKED:
        shares = direct.balance_of(holding.contract, wallet, block)
        signature = "convertToAssets(uint256)"
        return direct.call_uint(holding.contract, signature, ["uint256"], [shares], block)
    signature = "supplied" if holding.category is Category.DEPOSIT else "borrowed"
    args = [wallet, holding.extra["underlying_contract"]]
    return direct.call_uint(
        holding.contract, f"{signature}(address,address)", ["address", "address"], args, block
    )


async def test_nft_counts_vault_assets_and_lending_positions(
    chains: ChainSet, devnet: Devnet
) -> None:
    deployment = devnet.chain(1)
    holdings = await _read_all(chains, deployment)
    for wallet, owned in holdings.items():
        found = _by_symbol(owned)
        nft = found[(NFT_SYMBOL, Category.NFT)]
        assert nft.amount == len(deployment.nft_ids.get(wallet, ()))
        assert nft.decimals == 0

        vault = found[(VAULT_SYMBOL, Category.STAKED)]
        assert vault.kind is AssetKind.POSITION
        shares = deployment.vault_shares.get(wallet, 0)
        assert vault.extra["shares"] == str(shares)
        # convertToAssets rounds down, and the vault had accrued yield before any deposit
        assert vault.amount is not None
        assert vault.amount > shares if shares else vault.amount == 0
        assert vault.extra["underlying"] == "WETH"
        assert vault.extra["price_symbol"] == "ETH"

        supplied = found[("USDC", Category.DEPOSIT)]
        borrowed = found[("WETH", Category.LOAN)]
        assert supplied.amount == deployment.lending_supplied.get(wallet, {}).get("USDC", 0)
        assert borrowed.amount == deployment.lending_borrowed.get(wallet, {}).get("WETH", 0)
        assert supplied.contract == borrowed.contract == deployment.lending


async def test_vault_share_is_worth_more_than_one_asset_and_loans_count_negative(
    chains: ChainSet, devnet: Devnet
) -> None:
    deployment = devnet.chain(1)
    depositor = next(iter(deployment.vault_shares))
    borrower = next(iter(deployment.lending_borrowed))
    result = await read_portfolio(chains, [(1, depositor), (1, borrower)])
    vault = _by_symbol(result.chains[1].holdings[depositor])[(VAULT_SYMBOL, Category.STAKED)]
    assert vault.amount is not None
    assert vault.amount > int(vault.extra["shares"])  # yield accrued before deposits
    assert vault.price is not None
    assert vault.value_usd == Decimal(vault.amount).scaleb(-18) * Decimal("3000")
    loan = _by_symbol(result.chains[1].holdings[borrower])[("WETH", Category.LOAN)]
    assert loan.value_usd is not None
    assert loan.value_usd < 0
    assert (
        loan.value_usd == -Decimal(deployment.lending_borrowed[borrower]["WETH"]).scaleb(-18) * 3000
    )


async def test_reverting_token_is_unknown_with_its_reason_never_zero(
    chains: ChainSet, devnet: Devnet
) -> None:
    deployment = devnet.chain(42161)
    holdings = await _read_all(chains, deployment)
    for owned in holdings.values():
        broken = _by_symbol(owned)[(REVERTING_SYMBOL, Category.WALLET)]
        assert broken.amount is None
        assert broken.balance is None
        assert broken.value_usd is None
        assert broken.error == "reverted: RevertingToken: balanceOf always reverts"
        # its neighbours are unaffected
        assert _by_symbol(owned)[("USDC", Category.WALLET)].amount is not None


async def test_a_token_that_is_not_a_contract_is_unknown(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    config = devnet_config([deployment]).model_dump()
    not_a_contract = deployment.wallets[-1]
    config["chains"][0]["tokens"].append(
        {"address": not_a_contract, "symbol": "GHOST", "decimals": 18}
    )
    async with open_chains(ChainsConfig.model_validate(config)) as chains:
        result = await read_portfolio(chains, [(1, deployment.wallets[0])], with_prices=False)
    ghost = _by_symbol(result.chains[1].holdings[deployment.wallets[0]])[("GHOST", Category.WALLET)]
    assert ghost.amount is None
    assert ghost.error is not None
    assert "no data" in ghost.error


async def test_after_a_transfer_the_next_read_shows_the_new_amounts(
    chains: ChainSet, restore_devnet: Devnet
) -> None:
    deployment = restore_devnet.chain(1)
    sender, receiver = deployment.wallets[1], deployment.wallets[2]
    pairs = [(1, sender), (1, receiver)]
    before = await read_portfolio(chains, pairs)
    usdc_amount, wei = 1_234_567, 10**18 + 1
    transfer_token(deployment, symbol="USDC", sender=sender, to=receiver, amount=usdc_amount)
    transfer_native(deployment, sender=sender, to=receiver, amount=wei)
    after = await read_portfolio(chains, pairs)

    def amount(read: object, wallet: str, symbol: str) -> int:
        holdings = read.chains[1].holdings[wallet]  # type: ignore[attr-defined]
        value = _by_symbol(holdings)[(symbol, Category.WALLET)].amount
        assert value is not None
        return value

    assert after.chains[1].status.block_number > before.chains[1].status.block_number  # type: ignore[operator]
    assert amount(after, sender, "USDC") == amount(before, sender, "USDC") - usdc_amount
    assert amount(after, receiver, "USDC") == amount(before, receiver, "USDC") + usdc_amount
    assert amount(after, receiver, "ETH") == amount(before, receiver, "ETH") + wei
    # the devnet's base fee is 0, so the sender pays exactly the value sent
    assert amount(after, sender, "ETH") == amount(before, sender, "ETH") - wei


async def test_position_tokens_are_read_and_spam_tokens_are_not(devnet: Devnet) -> None:
    deployment = devnet.chain(1)
    config = devnet_config([deployment]).model_dump()
    tokens = config["chains"][0]["tokens"]
    for token in tokens:
        if token["symbol"] == "USDT":
            token["spam"] = True
    receipt = {"address": deployment.vault, "symbol": "rWETH", "kind": "position"}
    tokens.append({**receipt, "category": "DEPOSIT", "price_symbol": "ETH"})
    depositor = next(iter(deployment.vault_shares))
    async with open_chains(ChainsConfig.model_validate(config)) as chains:
        result = await read_portfolio(chains, [(1, depositor)], with_prices=False)
    found = _by_symbol(result.chains[1].holdings[depositor])
    assert not any(symbol == "USDT" for symbol, _ in found)
    position = found[("rWETH", Category.DEPOSIT)]
    assert position.kind is AssetKind.POSITION
    assert position.amount == deployment.vault_shares[depositor]
    assert position.decimals == 18  # read with decimals() on the receipt token
