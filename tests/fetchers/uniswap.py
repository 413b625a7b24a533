"""The real Uniswap contracts on the session devnet's chain 1, with positions to read.

`uniswap_world` deploys them once per test module after a snapshot and reverts at the end, so
other modules see the chain as deployed. Tests that swap or burn take their own snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import pytest

from chainfolio.devnet import Devnet, DevnetDeployment, load_artifact, revert, snapshot, web3_for
from chainfolio.devnet.uniswap import (
    TICK_SPACING,
    UniswapDeployment,
    create_v2_pair,
    create_v3_pool,
    mint_v3_position,
    seed_positions,
    swap_v3,
    v3_contract,
)
from chainfolio.fetchers import ChainsConfig
from chainfolio.fetchers.config import UniswapV2Config, UniswapV3Config

from .conftest import devnet_config

WETH = 10**18
USDC = 10**6
ETH_USDC = Fraction(3000 * USDC, WETH)
"""3,000 USDC per WETH, in base units: the devnet's ETH feed price."""
FEE = 3000


@dataclass
class UniswapWorld:
    """What the module fixture deployed: addresses, owners and their position ids."""

    chain: DevnetDeployment
    uniswap: UniswapDeployment
    pool: str
    tick: int
    positions: dict[int, str] = field(default_factory=dict)
    """token id -> owner."""
    in_range: set[int] = field(default_factory=set)
    pair: str = ""
    lp_owners: list[str] = field(default_factory=list)

    @property
    def weth(self) -> str:
        return self.chain.tokens["WETH"].address

    @property
    def usdc(self) -> str:
        return self.chain.tokens["USDC"].address

    def config(self, *, lp_pairs: bool = True, positions: bool = True) -> ChainsConfig:
        """The devnet chain's config with Uniswap V3 (and V2 LP pairs) added."""
        base = devnet_config([self.chain])
        v3 = UniswapV3Config(
            factory=self.uniswap.v3_factory,
            position_manager=self.uniswap.position_manager if positions else None,
            pool_init_code_hash=self.uniswap.pool_init_code_hash,
        )
        v2 = UniswapV2Config(
            factory=self.uniswap.v2_factory, lp_pairs=[self.pair] if lp_pairs and self.pair else []
        )
        chain = base.chains[0].model_copy(update={"uniswap_v3": v3, "uniswap_v2": v2})
        return base.model_copy(update={"chains": [chain]})

    def mint(self, owner: str, lower: int, upper: int, weth: int, usdc: int) -> int:
        """Mint a WETH/USDC position (ticks relative to the initial tick)."""
        token_id = mint_v3_position(
            self.chain,
            self.uniswap,
            owner=owner,
            token_a=self.weth,
            token_b=self.usdc,
            fee=FEE,
            tick_lower=self.tick + lower,
            tick_upper=self.tick + upper,
            amount_a=weth,
            amount_b=usdc,
        )
        self.positions[token_id] = owner
        if lower <= 0 < upper:
            self.in_range.add(token_id)
        return token_id

    def swap(self, token_in: str, amount: int) -> None:
        """Swap through the WETH/USDC pool (the deployer pays)."""
        token_out = self.usdc if token_in == self.weth else self.weth
        swap_v3(
            self.chain,
            self.uniswap,
            token_in=token_in,
            token_out=token_out,
            fee=FEE,
            amount_in=amount,
        )


def build_world(chain: DevnetDeployment) -> UniswapWorld:
    """Uniswap on `chain`: a WETH/USDC pool at 3,000 with positions in and out of range, and a
    WETH/USDC V2 pair whose LP tokens wallets 2 and 3 hold."""
    seeded = seed_positions(chain, owners=(chain.wallets[0], chain.wallets[1]))
    world = UniswapWorld(chain, seeded.uniswap, seeded.pool, seeded.tick)
    world.positions = dict(seeded.positions)
    world.in_range = set(seeded.in_range)
    weth, usdc = world.weth, world.usdc
    world.pair = create_v2_pair(
        chain,
        seeded.uniswap,
        token_a=weth,
        token_b=usdc,
        amount_a=10 * WETH,
        amount_b=30_000 * USDC,
        to=chain.wallets[2],
    )
    create_v2_pair(
        chain,
        seeded.uniswap,
        token_a=weth,
        token_b=usdc,
        amount_a=WETH,
        amount_b=3_000 * USDC,
        to=chain.wallets[3],
    )
    world.lp_owners = [chain.wallets[2], chain.wallets[3]]
    return world


@pytest.fixture(scope="module")
def uniswap_world(devnet: Devnet) -> Iterator[UniswapWorld]:
    """Uniswap deployed on chain 1 for this module; the chain is reverted afterwards."""
    chain = devnet.chain(1)
    before = snapshot(chain)
    try:
        yield build_world(chain)
    finally:
        revert(chain, before)


def deploy_token(chain: DevnetDeployment, name: str, symbol: str, decimals: int) -> str:
    """A fresh MintableERC20 on `chain`."""
    w3 = web3_for(chain)
    artifact = load_artifact("MintableERC20")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(name, symbol, decimals).transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(tx, timeout=30)["contractAddress"]
    assert address is not None
    return str(address)


def deep_pool(
    chain: DevnetDeployment,
    uniswap: UniswapDeployment,
    token: str,
    quote: str,
    price: Fraction,
    amounts: tuple[int, int],
) -> str:
    """A 0.3 % V3 pool of `token` against `quote` at `price` (quote base units per token base
    unit) with the deployer's liquidity 100 tick spacings either side; return the pool."""
    pool = create_v3_pool(chain, uniswap, token_a=token, token_b=quote, fee=FEE, b_per_a=price)
    spacing = TICK_SPACING[FEE]
    tick = v3_contract(chain, "pool", pool).functions.slot0().call()[1] // spacing * spacing
    mint_v3_position(
        chain,
        uniswap,
        token_a=token,
        token_b=quote,
        fee=FEE,
        tick_lower=tick - 100 * spacing,
        tick_upper=tick + 100 * spacing,
        amount_a=amounts[0],
        amount_b=amounts[1],
    )
    return pool
