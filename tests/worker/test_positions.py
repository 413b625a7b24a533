"""DEX positions and debt through the worker into storage and the portfolio: legs grouped back
into one position, attributed to their assets, fees as REWARD, debt negative."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from web3 import Web3

from chainfolio.bus.broadcast import Bus
from chainfolio.core.domain import Category
from chainfolio.devnet import devnet_contract, web3_for
from chainfolio.fetchers import ChainsConfig, open_chains
from chainfolio.fetchers.config import TokenConfig
from chainfolio.resolvers.positions import group_positions
from chainfolio.schema.types import Portfolio
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.holdings import current_holdings
from chainfolio.worker.cycle import Worker
from tests.fetchers.uniswap import UniswapWorld, deploy_token, uniswap_world
from tests.fixtures.portfolio import portfolio_both_ways

pytestmark = pytest.mark.chain
__all__ = ["uniswap_world"]


def fixed_clock() -> datetime:
    return datetime(2026, 12, 3, 10, 30, tzinfo=UTC)


async def _refresh(
    engine: AsyncEngine, config: ChainsConfig, chain_id: int, wallets: list[str]
) -> uuid.UUID:
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"positions-{uuid.uuid4().hex[:6]}")
        for wallet in wallets:
            await add_wallet(
                db, user_id=user_id, chain_id=chain_id, address=wallet, label=None, max_wallets=10
            )
    async with open_chains(config) as chains, Bus("memory://") as bus:
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=fixed_clock, chain_names=names)
        report = await worker.refresh()
        assert report.stale_chains == {}
    return user_id


async def test_positions_are_stored_grouped_and_attributed(
    engine: AsyncEngine, uniswap_world: UniswapWorld
) -> None:
    world = uniswap_world
    config = world.config()
    owner = world.chain.wallets[0]
    async with open_chains(config) as chains:
        read = (await chains.reader(1).read([owner])).holdings[owner]
    user_id = await _refresh(engine, config, 1, [owner])
    async with engine.connect() as db:
        stored = await current_holdings(db, user_id=user_id)
    view = await portfolio_both_ways(engine, user_id, fixed_clock())
    positions = group_positions(stored)
    owned = sorted(t for t, o in world.positions.items() if o == owner)
    assert sorted(int(p.id.split("#")[1]) for p in positions) == owned
    expected = {(h.contract, h.category): h.amount for h in read if "position" in h.extra}
    got = {
        (s.holding.contract, s.holding.category): s.holding.amount
        for p in positions
        for s in p.legs
    }
    assert got == expected  # exact base units survive storage
    for position in positions:
        assert position.protocol == "uniswap-v3"
        assert len(position.legs) == 4
        assert position.in_range == (int(position.id.split("#")[1]) in world.in_range)
        assert position.value_usd == sum(s.holding.value_usd for s in position.legs)  # type: ignore[misc]
    categories = {c.category: c.value for c in view.categories}
    assert categories[Category.DEPOSIT.value] > 0
    assert categories[Category.REWARD.value] > 0
    # Legs count toward their assets: WETH's value is the wallet's WETH plus every WETH leg.
    weth = sum(s.holding.value_usd or 0 for s in stored if s.holding.symbol == "WETH")
    assert next(a.value for a in view.assets if a.asset == "WETH") == weth
    async with engine.connect() as db:
        breakdown = await db.scalar(
            text(
                "SELECT category_breakdown FROM portfolio_snapshots WHERE user_id = :u "
                "ORDER BY timestamp DESC LIMIT 1"
            ),
            {"u": user_id},
        )
    snapshot = json.loads(breakdown) if isinstance(breakdown, str) else breakdown
    # The hourly snapshot breaks the same value down the same way.
    assert Decimal(str(snapshot["DEPOSIT"])) == categories[Category.DEPOSIT.value]
    assert Decimal(str(snapshot["REWARD"])) == categories[Category.REWARD.value]
    schema = Portfolio.of(view)
    assert [p.id for p in schema.positions()] == [p.id for p in positions]
    assert {h.position for h in schema.holdings() if h.position} == {p.id for p in positions}


async def test_a_wallet_with_only_debt_has_a_negative_total(
    engine: AsyncEngine, uniswap_world: UniswapWorld
) -> None:
    # Aave-style debt token (a devnet stand-in: balanceOf grows like variableDebtWETH's).
    world = uniswap_world
    debt = deploy_token(world.chain, "Variable Debt WETH", "variableDebtWETH", 18)
    borrower = Web3.to_checksum_address("0x" + "7e" * 20)
    base = world.config(positions=False, lp_pairs=False)
    chain = base.chains[0]
    token = TokenConfig.model_validate(
        {
            "address": debt,
            "symbol": "variableDebtWETH",
            "kind": "position",
            "category": "LOAN",
            "price_symbol": "ETH",
        }
    )
    config = base.model_copy(
        update={"chains": [chain.model_copy(update={"tokens": [*chain.tokens, token]})]}
    )
    w3 = web3_for(world.chain)
    mint = devnet_contract(w3, "MintableERC20", debt).functions.mint(borrower, 3 * 10**18 // 2)
    w3.eth.wait_for_transaction_receipt(mint.transact({"from": world.chain.deployer}))
    user_id = await _refresh(engine, config, 1, [borrower])
    view = await portfolio_both_ways(engine, user_id, fixed_clock())
    eth = Decimal(world.chain.feed_answers["ETH"]).scaleb(-8)
    assert view.total_value == -Decimal("1.5") * eth
    nonzero = {c.category: c.value for c in view.categories if c.value}
    assert nonzero == {"LOAN": -Decimal("1.5") * eth}
