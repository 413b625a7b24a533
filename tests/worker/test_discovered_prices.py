"""Discovered tokens through the worker on Hardhat, the real Uniswap contracts and PostgreSQL:
nothing configured about them, yet one is priced by its V3 pool, one by its V2 pair, one whose
only pool is below the liquidity floor stays unpriced (listed with the reason, in no total,
never zero), a spam token is flagged and kept out until the user un-hides it; a transfer of a
discovered token into or out of the wallet is a cash flow valued at its price, not a gain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from web3.types import RPCEndpoint, Wei

from chainfolio.bus.broadcast import Bus
from chainfolio.core.domain import MONEY, Holding
from chainfolio.devnet import Devnet, increase_time, set_price, web3_for
from chainfolio.devnet.uniswap import create_v2_pair, v3_contract
from chainfolio.fetchers import ChainsConfig
from chainfolio.fetchers.config import TokenListsConfig
from chainfolio.fetchers.portfolio import open_chains
from chainfolio.fetchers.positions import sqrt_ratio_at_tick
from chainfolio.fetchers.prices import address_key
from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.storage import tokens as token_store
from chainfolio.storage.accounts import Wallet, list_wallets
from chainfolio.storage.flows import cash_flows_between
from chainfolio.storage.holdings import current_holdings
from chainfolio.storage.market import latest_prices
from chainfolio.storage.pools import token_pools
from chainfolio.storage.prices import PricePoint, write_prices
from chainfolio.worker.cycle import Worker
from chainfolio.worker.discovery import TokenDiscovery
from tests.fetchers.tokens import OPENZEPPELIN, deploy_token, mint
from tests.fetchers.uniswap import USDC, WETH, UniswapWorld, deep_pool, uniswap_world
from tests.fixtures.devnet import own_time
from tests.worker.test_backfill import snapshot_series
from tests.worker.test_flows import Clock, user_with_wallets

pytestmark = pytest.mark.chain
__all__ = ["uniswap_world"]

UNIT = 10**18
HOUR = timedelta(hours=1)
OUTSIDE = to_checksum_address("0x" + "ab" * 20)


@dataclass(frozen=True)
class Discovered:
    v3: str
    v2: str
    thin: str
    spam: str
    pool: str


def _deploy(world: UniswapWorld) -> Discovered:
    """Four OpenZeppelin ERC-20s nobody configured, each with its pools."""
    chain = world.chain
    names = {
        "v3": ("Pool Three", "PTHREE"),
        "v2": ("Pair Two", "PTWO"),
        "thin": ("Thin Pool", "TTHIN"),
        "spam": ("Visit claim-rewards.xyz to claim", "CLAIM"),
    }
    made = {k: deploy_token(chain, OPENZEPPELIN, *v) for k, v in names.items()}
    # 2 USD in a deep V3 pool against WETH (ETH at 3,000).
    pool = deep_pool(
        world.chain,
        world.uniswap,
        made["v3"],
        world.weth,
        Fraction(2, 3000),
        (300_000 * UNIT, 200 * WETH),
    )
    # 4 USDC in a deep V2 pair; the spam token 1.5 USDC in another.
    for token, units, usdc in ((made["v2"], 50_000, 200_000), (made["spam"], 100_000, 150_000)):
        create_v2_pair(
            chain,
            world.uniswap,
            token_a=token,
            token_b=world.usdc,
            amount_a=units * UNIT,
            amount_b=usdc * USDC,
        )
    # ~1,000 USDC of liquidity: far below the 100,000 USD floor.
    deep_pool(
        world.chain,
        world.uniswap,
        made["thin"],
        world.usdc,
        Fraction(USDC, UNIT),
        (1_000 * UNIT, 1_000 * USDC),
    )
    return Discovered(made["v3"], made["v2"], made["thin"], made["spam"], pool)


def _fund(world: UniswapWorld, wallet: str, amounts: dict[str, int]) -> None:
    """Send `amounts` of tokens to the wallet by transfers (minted to the deployer first)."""
    chain = world.chain
    for token, amount in amounts.items():
        mint(chain, OPENZEPPELIN, token, chain.deployer, amount)
        _send(world, token, chain.deployer, wallet, amount)


def _config(world: UniswapWorld) -> ChainsConfig:
    """The chain with Uniswap's factories and nothing about the discovered tokens."""
    return world.config(positions=False, lp_pairs=False).model_copy(
        update={"token_lists": TokenListsConfig(shipped=False)}
    )


def _send(world: UniswapWorld, token: str, sender: str, to: str, amount: int) -> None:
    """An ERC-20 transfer sent as `sender` (impersonated, at zero gas price)."""
    w3 = web3_for(world.chain)
    contract = w3.eth.contract(
        address=to_checksum_address(token),
        abi=[
            {
                "name": "transfer",
                "type": "function",
                "stateMutability": "nonpayable",
                "inputs": [{"name": "to", "type": "address"}, {"name": "v", "type": "uint256"}],
                "outputs": [{"name": "", "type": "bool"}],
            }
        ],
    )
    sender = to_checksum_address(sender)
    w3.provider.make_request(RPCEndpoint("hardhat_impersonateAccount"), [sender])
    try:
        tx = contract.functions.transfer(to_checksum_address(to), amount).transact(
            {"from": sender, "gasPrice": Wei(0)}
        )
        assert w3.eth.wait_for_transaction_receipt(tx, timeout=30)["status"] == 1
    finally:
        w3.provider.make_request(RPCEndpoint("hardhat_stopImpersonatingAccount"), [sender])


def _exact(value: Fraction) -> Decimal:
    with localcontext() as exact:
        exact.prec = 200
        return Decimal(value.numerator) / Decimal(value.denominator)


async def _wallets(engine: AsyncEngine, user_id: uuid.UUID) -> list[Wallet]:
    async with engine.connect() as db:
        return await list_wallets(db, user_id=user_id)


async def _held(engine: AsyncEngine, user_id: uuid.UUID) -> dict[str, Holding]:
    async with engine.connect() as db:
        return {s.holding.contract: s.holding for s in await current_holdings(db, user_id=user_id)}


async def test_discovered_tokens_priced_by_pools_and_their_transfers_are_flows(
    engine: AsyncEngine, restore_devnet: Devnet, uniswap_world: UniswapWorld
) -> None:
    world = uniswap_world
    chain = world.chain
    found = _deploy(world)
    wallet = chain.wallets[12]
    sent = {found.v3: 1_000 * UNIT + 7, found.v2: 250 * UNIT + 3, found.thin: 10 * UNIT}
    sent[found.spam] = 10 * UNIT
    _fund(world, wallet, sent)  # sent by transfers, as a wallet receives tokens
    start = own_time(chain, days=520)
    clock = Clock(start)
    config = _config(world)
    user_id = await user_with_wallets(engine, 1, wallet)
    async with open_chains(config) as chains, Bus("memory://") as bus:
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await worker.refresh()
        held = await _held(engine, user_id)
        async with engine.connect() as db:
            excluded = {
                e.contract: e for e in await token_store.excluded_tokens(db, user_id=user_id)
            }
            total = summarize_holdings(await current_holdings(db, user_id=user_id))[0]
            recorded = await latest_prices(
                db, symbols=[address_key(1, t) for t in (found.v3, found.v2, found.thin)]
            )

        # References: the pool's slot0 and the pair's reserves, read directly, x the feeds.
        eth = Fraction(chain.feed_answers["ETH"], 10**8)
        usdc = Fraction(chain.feed_answers["USDC"], 10**8)
        # The chain's clock moved days ahead: the pool's observations reach back 1,800 s, so
        # the price is OracleLibrary's mean tick over them.
        cumulatives = v3_contract(chain, "pool", found.pool).functions.observe([1800, 0]).call()[0]
        delta = cumulatives[1] - cumulatives[0]
        mean = delta // 1800 if delta >= 0 else -((-delta) // 1800) - (1 if delta % 1800 else 0)
        raw = Fraction(sqrt_ratio_at_tick(mean) ** 2, 2**192)
        v3_price = _exact((raw if int(found.v3, 16) < int(world.weth, 16) else 1 / raw) * eth)
        v2_price = _exact(Fraction(200_000 * USDC, 50_000 * UNIT) * 10**12 * usdc)

        three, two = held[found.v3], held[found.v2]
        assert three.amount == sent[found.v3]
        assert three.price is not None
        assert three.price.usd == v3_price
        assert three.price.source.startswith(f"uniswap-v3:devnet-1:{found.pool} (")
        assert "/WETH twap 1800s x chainlink:devnet-1" in three.price.source
        assert recorded == {address_key(1, found.v3): v3_price, address_key(1, found.v2): v2_price}
        assert two.price is not None
        assert two.price.usd == v2_price == 4 * _exact(usdc)
        assert two.price.source.startswith("uniswap-v2:devnet-1:")
        # The thin one: listed with its reason, unpriced (never 0), in no total.
        thin = held[found.thin]
        assert thin.amount == sent[found.thin]
        assert thin.price is None
        assert thin.value_usd is None
        assert excluded[found.thin].reason.startswith("unpriced: pool ")
        assert "below the 100000 USD liquidity floor" in excluded[found.thin].reason
        # The spam one: flagged and out of the total although a deep pair prices it.
        spam = held[found.spam]
        assert spam.price is None
        assert excluded[found.spam].reason.startswith("spam: ")
        assert three.value_usd is not None
        assert two.value_usd is not None
        others = [
            h.value_usd for h in held.values() if h.contract not in sent and h.value_usd is not None
        ]
        with localcontext(MONEY):  # the totals' context
            assert total == sum([three.value_usd, two.value_usd, *others], Decimal(0))

        # Un-hiding the spam token counts it at its pair's price; hiding it again does not.
        async with engine.begin() as db:
            await token_store.set_visibility(
                db, user_id=user_id, chain_id=1, contract=found.spam, hidden=False
            )
        clock.now = start + timedelta(minutes=5)
        await worker.refresh()
        shown = (await _held(engine, user_id))[found.spam]
        assert shown.price is not None
        assert shown.price.usd == _exact(Fraction(3, 2) * usdc)
        async with engine.begin() as db:
            await token_store.set_visibility(
                db, user_id=user_id, chain_id=1, contract=found.spam, hidden=True
            )

        # A discovered token moving in and out of the wallet: a deposit and a withdrawal,
        # valued at its pool's price, so the value it adds is never counted as a gain.
        before_value = three.value_usd
        _fund(world, wallet, {found.v3: 500 * UNIT})
        _send(world, found.v3, wallet, OUTSIDE, 200 * UNIT)
        _send(world, found.v2, wallet, OUTSIDE, 50 * UNIT)
        _fund(world, wallet, {found.spam: UNIT})  # hidden: adds nothing
        clock.now = start + timedelta(hours=1)
        await worker.refresh()
        after = (await _held(engine, user_id))[found.v3]
        async with engine.connect() as db:
            flows = await cash_flows_between(
                db, user_id=user_id, start=start - timedelta(hours=2), end=clock.now
            )
        wallets = await _wallets(engine, user_id)

    # The pools the factories named were stored: a restarted worker's price source has them
    # before it asks anything.
    async with engine.connect() as db:
        stored = {p.token: p for p in await token_pools(db, chain_ids=[1])}
    assert [p[1] for p in stored[found.v3].pools] == [found.pool]
    async with open_chains(config) as restarted:
        assert restarted.uniswap is not None
        assert restarted.uniswap.pools_of(1, found.v3) == ()
        await TokenDiscovery(engine=engine, chains=restarted).plan(wallets)
        assert restarted.uniswap.pools_of(1, found.v3) == (found.pool,)
        assert restarted.uniswap.pools_of(1, found.v2) == tuple(
            p[1] for p in stored[found.v2].pools
        )

    by = {(f.contract, f.amount): f for f in flows}
    deposit = by[(found.v3, 500 * UNIT)]
    withdrawal = by[(found.v3, -200 * UNIT)]
    assert deposit.symbol == "PTHREE"
    assert deposit.decimals == 18
    assert deposit.value_usd == 500 * v3_price
    assert withdrawal.value_usd == -200 * v3_price
    assert by[(found.v2, -50 * UNIT)].value_usd == -50 * v2_price
    assert not [f for f in flows if f.contract == found.spam]  # counted in no total: no flow
    assert after.value_usd is not None
    assert after.value_usd - before_value == deposit.value_usd + withdrawal.value_usd


async def test_missed_hours_are_back_filled_with_discovered_tokens(
    engine: AsyncEngine, restore_devnet: Devnet, uniswap_world: UniswapWorld
) -> None:
    world = uniswap_world
    chain = world.chain
    found = _deploy(world)
    wallet = chain.wallets[13]
    _fund(world, wallet, {found.v3: 100 * UNIT, found.thin: UNIT, found.spam: UNIT})
    started = own_time(chain, days=530)
    clock = Clock(started)
    config = _config(world)
    user_id = await user_with_wallets(engine, 1, wallet)
    w3 = web3_for(chain)
    async with open_chains(config) as chains, Bus("memory://") as bus:
        names = {c.chain_id: c.name for c in chains.config.chains}
        first = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        await first.refresh()  # then the worker is down for three hours
        price = (await _held(engine, user_id))[found.v3].price
        assert price is not None, (await _held(engine, user_id))[found.v3]
        increase_time(chain, 3_600)
        _fund(world, wallet, {found.v3: 50 * UNIT})  # +50 PTHREE in hour 2
        increase_time(chain, 2 * 3_600)
        for feed, answer in chain.feed_answers.items():  # fresh rounds: feeds are not stale
            set_price(chain, feed, answer)
        start_hour = started.replace(minute=0, second=0, microsecond=0)
        now = datetime.fromtimestamp(w3.eth.get_block("latest")["timestamp"], UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        missed = [start_hour + i * HOUR for i in range(1, 4) if start_hour + i * HOUR < hour]
        async with engine.begin() as db:  # other workers kept recording prices meanwhile
            rows = await db.execute(
                text("SELECT symbol, price, source FROM prices WHERE time = :t"),
                {"t": started.replace(second=0, microsecond=0)},
            )
            observed = list(rows)
            assert address_key(1, found.v3) in {r[0] for r in observed}
            await write_prices(
                db, [PricePoint(m, s, Decimal(p), src) for m in missed for s, p, src in observed]
            )
        clock.now = now
        restarted = Worker(engine=engine, bus=bus, chains=chains, clock=clock, chain_names=names)
        report = await restarted.refresh()
    assert report.backfilled >= len(missed) >= 2  # other tests' users may be back-filled too
    series = await snapshot_series(engine, user_id)
    # Every missed hour is there (the thin and the spam token made none a gap), each with the
    # PTHREE the wallet held at the block nearest it, at its stored price.
    assert list(series) == [start_hour, *missed, hour]
    base = series[start_hour]
    with localcontext(MONEY):
        assert series[start_hour + HOUR] == base
        assert series[start_hour + 2 * HOUR] == base + 50 * price.usd
