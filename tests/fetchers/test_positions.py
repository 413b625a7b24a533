"""Uniswap V3 positions and V2 LP tokens read by the chain reader equal the protocol's answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chainfolio.core.domain import Category, Holding
from chainfolio.core.errors import InvalidInput
from chainfolio.devnet import revert, snapshot, web3_for
from chainfolio.devnet.uniswap import MAX_COLLECT, v3_contract
from chainfolio.fetchers import open_chains
from chainfolio.fetchers.config import parse_chains
from chainfolio.fetchers.positions import sqrt_ratio_at_tick

from .uniswap import WETH, UniswapWorld, uniswap_world

pytestmark = pytest.mark.chain
MANAGER = "0xC36442b4a4522E871399CD717aBDD847Ab11FE88"
__all__ = ["uniswap_world"]


async def _read(world: UniswapWorld, wallets: list[str]) -> dict[str, list[Holding]]:
    async with open_chains(world.config()) as chains:
        read = await chains.reader(1).read(wallets)
    return read.holdings


def _legs(holdings: list[Holding], token_id: int) -> dict[tuple[str, Category], Holding]:
    return {
        (h.extra["leg"], h.category): h
        for h in holdings
        if h.extra.get("token_id") == str(token_id)
    }


def _periphery(world: UniswapWorld, token_id: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(decreaseLiquidity amounts, collect amounts) simulated with eth_call from the owner."""
    manager = v3_contract(world.chain, "manager", world.uniswap.position_manager)
    owner = world.positions[token_id]
    liquidity = manager.functions.positions(token_id).call()[7]
    principal = (0, 0)
    if liquidity:
        call = manager.functions.decreaseLiquidity((token_id, liquidity, 0, 0, 2**40))
        principal = tuple(call.call({"from": owner}))
    fees = manager.functions.collect((token_id, owner, MAX_COLLECT, MAX_COLLECT))
    return principal, tuple(fees.call({"from": owner}))  # type: ignore[return-value]


def _check_against_periphery(world: UniswapWorld, holdings: dict[str, list[Holding]]) -> None:
    for token_id, owner in world.positions.items():
        legs = _legs(holdings[owner], token_id)
        assert len(legs) == 4, (token_id, legs)
        principal, fees = _periphery(world, token_id)
        read_principal = (
            legs[("0", Category.DEPOSIT)].amount,
            legs[("1", Category.DEPOSIT)].amount,
        )
        read_fees = (legs[("0", Category.REWARD)].amount, legs[("1", Category.REWARD)].amount)
        assert read_principal == principal, token_id
        assert read_fees == fees, token_id
        in_range = legs[("0", Category.DEPOSIT)].extra["in_range"] == "true"
        tick = int(legs[("0", Category.DEPOSIT)].extra["tick"])
        lower = int(legs[("0", Category.DEPOSIT)].extra["tick_lower"])
        upper = int(legs[("0", Category.DEPOSIT)].extra["tick_upper"])
        assert in_range == (lower <= tick < upper)


@pytest.fixture
def scratch(uniswap_world: UniswapWorld) -> Iterator[UniswapWorld]:
    """The world, reverted after the test."""
    before = snapshot(uniswap_world.chain)
    yield uniswap_world
    revert(uniswap_world.chain, before)


def test_tick_math_matches_the_pool(uniswap_world: UniswapWorld) -> None:
    pool = v3_contract(uniswap_world.chain, "pool", uniswap_world.pool)
    sqrt_price, tick, *_ = pool.functions.slot0().call()
    # The pool's tick is the greatest tick whose sqrt ratio is <= its sqrt price.
    assert sqrt_ratio_at_tick(tick) <= sqrt_price < sqrt_ratio_at_tick(tick + 1)
    assert sqrt_ratio_at_tick(-887272) == 4295128739
    assert sqrt_ratio_at_tick(887272) == 1461446703485210103287273052203988822378723970342


async def test_v3_positions_equal_decrease_liquidity_and_collect(
    uniswap_world: UniswapWorld,
) -> None:
    world = uniswap_world
    holdings = await _read(world, list(set(world.positions.values())))
    _check_against_periphery(world, holdings)
    flags = {
        token_id: _legs(holdings[owner], token_id)[("0", Category.DEPOSIT)].extra["in_range"]
        for token_id, owner in world.positions.items()
    }
    assert {t for t, flag in flags.items() if flag == "true"} == world.in_range
    assert len(world.in_range) < len(world.positions)  # out-of-range ones are covered too
    owner = world.chain.wallets[0]
    fees = [h.amount for h in holdings[owner] if h.category is Category.REWARD]
    assert any(fees)  # the swaps earned the in-range positions something


async def test_a_swap_moves_the_legs(scratch: UniswapWorld) -> None:
    world = scratch
    wallets = list(set(world.positions.values()))
    before = await _read(world, wallets)
    world.swap(world.weth, 20 * WETH)
    after = await _read(world, wallets)
    _check_against_periphery(world, after)
    moved = [
        t
        for t in world.in_range
        if _legs(before[world.positions[t]], t)[("0", Category.DEPOSIT)].amount
        != _legs(after[world.positions[t]], t)[("0", Category.DEPOSIT)].amount
    ]
    assert set(moved) == world.in_range


async def test_v2_lp_tokens_equal_burn(scratch: UniswapWorld) -> None:
    world = scratch
    holdings = await _read(world, world.lp_owners)
    pair = v3_contract(world.chain, "pair", world.pair)
    token0 = pair.functions.token0().call()
    for owner in world.lp_owners:
        legs = {
            h.extra["leg"]: h for h in holdings[owner] if h.extra.get("protocol") == "uniswap-v2"
        }
        assert {h.category for h in legs.values()} == {Category.DEPOSIT}
        assert legs["0"].contract.startswith(world.pair)
        assert legs["0"].extra["underlying_contract"] == token0
        snap = snapshot(world.chain)
        balance = pair.functions.balanceOf(owner).call()
        w3 = web3_for(world.chain)
        w3.provider.make_request("hardhat_impersonateAccount", [owner])  # type: ignore[arg-type]
        tx = pair.functions.transfer(world.pair, balance).transact({"from": owner, "gasPrice": 0})
        w3.eth.wait_for_transaction_receipt(tx)
        burned = pair.functions.burn(owner).call({"from": owner})
        revert(world.chain, snap)
        assert (legs["0"].amount, legs["1"].amount) == tuple(burned)
        assert legs["0"].amount
        assert legs["1"].amount


async def test_a_closed_position_holds_nothing(scratch: UniswapWorld) -> None:
    world = scratch
    token_id = min(world.in_range)
    owner = world.positions[token_id]
    manager = v3_contract(world.chain, "manager", world.uniswap.position_manager)
    w3 = web3_for(world.chain)
    w3.provider.make_request("hardhat_impersonateAccount", [owner])  # type: ignore[arg-type]
    liquidity = manager.functions.positions(token_id).call()[7]
    sent = {"from": owner, "gasPrice": 0}
    for call in (
        manager.functions.decreaseLiquidity((token_id, liquidity, 0, 0, 2**40)),
        manager.functions.collect((token_id, owner, MAX_COLLECT, MAX_COLLECT)),
    ):
        w3.eth.wait_for_transaction_receipt(call.transact(sent))  # type: ignore[arg-type]
    holdings = await _read(world, [owner])
    assert _legs(holdings[owner], token_id) == {}  # the NFT is still owned, but empty
    others = [t for t, o in world.positions.items() if o == owner and t != token_id]
    assert all(len(_legs(holdings[owner], t)) == 4 for t in others)


async def test_positions_take_two_rounds_after_the_balances(uniswap_world: UniswapWorld) -> None:
    world = uniswap_world
    config = world.config(lp_pairs=False)
    chain = config.chains[0].model_copy(update={"vaults": []})  # no convertToAssets round
    config = config.model_copy(update={"chains": [chain]})
    wallets = list(set(world.positions.values()))
    async with open_chains(config) as chains:
        reader = chains.reader(1)
        for _ in range(2):  # cold (speculative indices) and warm (the counts seen)
            before = reader.rpc.stats.http_requests
            read = await reader.read(wallets)
            # eth_blockNumber; balances + NFT counts + indices; positions; pools and ticks.
            assert reader.rpc.stats.http_requests - before == 4
            assert sum(
                len(_legs(read.holdings[w], t)) for t, w in world.positions.items()
            ) == 4 * len(world.positions)


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("uniswap_v3", {"factory": "0x1234"}, "factory"),
        ("uniswap_v3", {"factory": MANAGER, "pool_init_code_hash": "0xabc"}, "pool_init_code_hash"),
        ("uniswap_v3", {"factory": MANAGER, "positions_guess": -1}, "positions_guess"),
        ("uniswap_v2", {"lp_pairs": ["not an address"]}, "lp_pairs"),
    ],
)
def test_bad_uniswap_config_is_refused_with_a_code(
    section: str, value: dict[str, object], message: str
) -> None:
    chain = {"chain_id": 1, "name": "ethereum", "native_symbol": "ETH", section: value}
    with pytest.raises(InvalidInput, match=message) as refused:
        parse_chains({"chains": [chain]})
    assert refused.value.code == "INVALID_CONFIG"
