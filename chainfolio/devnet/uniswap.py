"""The real Uniswap V2 and V3 contracts on a devnet chain, from their published npm artifacts.

`@uniswap/v2-core` (UniswapV2Factory, pairs), `@uniswap/v3-core` (UniswapV3Factory, pools) and
`@uniswap/v3-periphery` (NonfungiblePositionManager, SwapRouter) are pinned in the devnet's
package-lock.json and installed with Hardhat; their ABI and bytecode are read from
`node_modules`, never recompiled. The pools the factory creates therefore have the same init
code hash as on mainnet (0xe34f…8b54), which the position manager relies on.

The position manager is deployed with the zero address as its token descriptor: only
`tokenURI` uses it (it would revert), and no reader of ours asks for it. The devnet WETH (a
MintableERC20) stands in for WETH9: only ETH-paying calls would need a real WETH9.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

from eth_typing import ABI
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from chainfolio.devnet.actions import transact, web3_for
from chainfolio.devnet.compiled import Artifact, load_artifact
from chainfolio.devnet.deploy import DevnetDeployment
from chainfolio.devnet.node import DevnetError, ensure_installed

V3_FACTORY = "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json"
V3_POOL = "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json"
POSITION_MANAGER = (
    "@uniswap/v3-periphery/artifacts/contracts/"
    "NonfungiblePositionManager.sol/NonfungiblePositionManager.json"
)
SWAP_ROUTER = "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json"
V2_FACTORY = "@uniswap/v2-core/build/UniswapV2Factory.json"
V2_PAIR = "@uniswap/v2-core/build/UniswapV2Pair.json"

TICK_SPACING = {500: 10, 3000: 60, 10000: 200}
"""The fee tiers a fresh UniswapV3Factory enables, and their tick spacings."""
MIN_TICK, MAX_TICK = -887272, 887272
_MAX_UINT128 = 2**128 - 1
_ZERO = "0x0000000000000000000000000000000000000000"


@functools.cache
def npm_artifact(path: str) -> Artifact:
    """ABI and bytecode of a published contract, from the devnet's node_modules."""
    file = ensure_installed() / "node_modules" / path
    if not file.exists():
        raise DevnetError(f"{path} is not installed (is it pinned in the devnet package.json?)")
    data = json.loads(file.read_text())
    package = path.split("/", maxsplit=1)[0] + "/" + path.split("/")[1]
    version = json.loads(
        (ensure_installed() / "node_modules" / package / "package.json").read_text()
    )
    bytecode = data["bytecode"]
    deployed = data.get("deployedBytecode", "")
    if isinstance(data.get("evm"), dict):  # v2-core's waffle build: {"evm": {"bytecode": …}}
        bytecode = data["evm"]["bytecode"]["object"]
        deployed = data["evm"]["deployedBytecode"]["object"]
    if data.get("linkReferences"):
        raise DevnetError(f"{path} needs linked libraries")
    return Artifact(
        name=data.get("contractName", file.stem),
        abi=data["abi"],
        bytecode=bytecode if bytecode.startswith("0x") else "0x" + bytecode,
        deployed_bytecode=deployed if deployed.startswith("0x") else "0x" + deployed,
        compiler_version=f"npm:{package}@{version['version']}",
    )


@dataclass(frozen=True)
class UniswapDeployment:
    """Uniswap contracts deployed on one devnet chain."""

    chain_id: int
    v3_factory: str
    position_manager: str
    swap_router: str
    v2_factory: str
    weth: str
    pool_init_code_hash: str


def _contract(w3: Web3, path: str, address: str) -> Contract:
    abi = cast(ABI, npm_artifact(path).abi)
    return w3.eth.contract(address=to_checksum_address(address), abi=abi)


def _deploy(deployment: DevnetDeployment, path: str, *args: Any) -> str:
    w3 = web3_for(deployment)
    artifact = npm_artifact(path)
    factory = w3.eth.contract(abi=cast(ABI, artifact.abi), bytecode=artifact.bytecode)
    sender = deployment.deployer or w3.eth.accounts[0]
    tx_hash = factory.constructor(*args).transact({"from": to_checksum_address(sender)})
    address = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["contractAddress"]
    if address is None:
        raise DevnetError(f"deploying {path} created no contract")
    return str(address)


def deploy_uniswap(deployment: DevnetDeployment) -> UniswapDeployment:
    """Deploy the V3 factory, position manager and swap router, and the V2 factory."""
    deployer = deployment.deployer or web3_for(deployment).eth.accounts[0]
    weth = deployment.tokens["WETH"].address
    v3_factory = _deploy(deployment, V3_FACTORY)
    manager = _deploy(deployment, POSITION_MANAGER, v3_factory, weth, _ZERO)
    router = _deploy(deployment, SWAP_ROUTER, v3_factory, weth)
    v2_factory = _deploy(deployment, V2_FACTORY, deployer)
    init_code_hash = Web3.keccak(hexstr=npm_artifact(V3_POOL).bytecode).to_0x_hex()
    return UniswapDeployment(
        deployment.chain_id, v3_factory, manager, router, v2_factory, weth, init_code_hash
    )


def sorted_tokens(token_a: str, token_b: str) -> tuple[str, str]:
    """(token0, token1): Uniswap orders a pair's tokens by address."""
    a, b = to_checksum_address(token_a), to_checksum_address(token_b)
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


def sqrt_price_x96(price: Fraction) -> int:
    """sqrtPriceX96 of a raw price (token1 base units per token0 base unit), rounded down."""
    return math.isqrt(price.numerator * 2**192 // price.denominator)


def raw_price(token_a: str, token_b: str, b_per_a: Fraction) -> Fraction:
    """The pool's raw price (token1 per token0) for a price of token_b per token_a."""
    token0, _ = sorted_tokens(token_a, token_b)
    return b_per_a if token0 == to_checksum_address(token_a) else 1 / b_per_a


def nearest_tick(price: Fraction, spacing: int) -> int:
    """A usable tick (multiple of `spacing`) nearest to a raw price."""
    tick = round(math.log(float(price)) / math.log(1.0001))
    return max(
        MIN_TICK // spacing * spacing + spacing, min(MAX_TICK, round(tick / spacing) * spacing)
    )


def _send(
    deployment: DevnetDeployment, sender: str, contract: Contract, fn: str, *args: Any
) -> str:
    data = contract.encode_abi(fn, args=list(args))
    return transact(deployment, sender=sender, to=contract.address, data=data)


def _owner(deployment: DevnetDeployment, owner: str | None) -> str:
    return owner or deployment.deployer or web3_for(deployment).eth.accounts[0]


def fund_and_approve(
    deployment: DevnetDeployment, *, owner: str, token: str, amount: int, spender: str
) -> None:
    """Mint `amount` of a devnet MintableERC20 to `owner` and let `spender` take it."""
    w3 = web3_for(deployment)
    erc20 = w3.eth.contract(
        address=to_checksum_address(token), abi=cast(ABI, load_artifact("MintableERC20").abi)
    )
    deployer = deployment.deployer or w3.eth.accounts[0]
    if amount:
        _send(deployment, deployer, erc20, "mint", to_checksum_address(owner), amount)
    _send(deployment, owner, erc20, "approve", to_checksum_address(spender), 2**256 - 1)


def create_v3_pool(
    deployment: DevnetDeployment,
    uniswap: UniswapDeployment,
    *,
    token_a: str,
    token_b: str,
    fee: int,
    b_per_a: Fraction,
) -> str:
    """Create and initialise the pool at a price of `b_per_a` (base units); return its address."""
    w3 = web3_for(deployment)
    token0, token1 = sorted_tokens(token_a, token_b)
    sqrt_price = sqrt_price_x96(raw_price(token_a, token_b, b_per_a))
    manager = _contract(w3, POSITION_MANAGER, uniswap.position_manager)
    _send(
        deployment,
        _owner(deployment, None),
        manager,
        "createAndInitializePoolIfNecessary",
        token0,
        token1,
        fee,
        sqrt_price,
    )
    factory = _contract(w3, V3_FACTORY, uniswap.v3_factory)
    return str(factory.functions.getPool(token0, token1, fee).call())


def mint_v3_position(
    deployment: DevnetDeployment,
    uniswap: UniswapDeployment,
    *,
    owner: str | None = None,
    token_a: str,
    token_b: str,
    fee: int,
    tick_lower: int,
    tick_upper: int,
    amount_a: int,
    amount_b: int,
    funded: bool = False,
) -> int:
    """Mint a position NFT to `owner` (default: the deployer) from up to these amounts.

    The amounts are minted to the owner and approved first, unless `funded`."""
    w3 = web3_for(deployment)
    who = _owner(deployment, owner)
    manager = _contract(w3, POSITION_MANAGER, uniswap.position_manager)
    for token, amount in ((token_a, amount_a), (token_b, amount_b)):
        if not funded:
            fund_and_approve(
                deployment, owner=who, token=token, amount=amount, spender=manager.address
            )
    token0, token1 = sorted_tokens(token_a, token_b)
    amount0, amount1 = (
        (amount_a, amount_b) if token0 == to_checksum_address(token_a) else (amount_b, amount_a)
    )
    params = (token0, token1, fee, tick_lower, tick_upper, amount0, amount1, 0, 0, who, 2**40)
    tx_hash = _send(deployment, who, manager, "mint", params)
    receipt = w3.eth.get_transaction_receipt(cast(Any, tx_hash))
    events = manager.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    if not events:
        raise DevnetError("mint emitted no IncreaseLiquidity event")
    return int(events[0]["args"]["tokenId"])


def swap_v3(
    deployment: DevnetDeployment,
    uniswap: UniswapDeployment,
    *,
    sender: str | None = None,
    token_in: str,
    token_out: str,
    fee: int,
    amount_in: int,
) -> str:
    """Swap exactly `amount_in` of `token_in` through one pool (minted to the sender first)."""
    w3 = web3_for(deployment)
    who = _owner(deployment, sender)
    router = _contract(w3, SWAP_ROUTER, uniswap.swap_router)
    fund_and_approve(
        deployment, owner=who, token=token_in, amount=amount_in, spender=router.address
    )
    params = (
        to_checksum_address(token_in),
        to_checksum_address(token_out),
        fee,
        who,
        2**40,
        amount_in,
        0,
        0,
    )
    return _send(deployment, who, router, "exactInputSingle", params)


def create_v2_pair(
    deployment: DevnetDeployment,
    uniswap: UniswapDeployment,
    *,
    token_a: str,
    token_b: str,
    amount_a: int,
    amount_b: int,
    to: str | None = None,
) -> str:
    """Create the pair (if needed), add liquidity for `to` (default: deployer); return it."""
    w3 = web3_for(deployment)
    deployer = _owner(deployment, None)
    factory = _contract(w3, V2_FACTORY, uniswap.v2_factory)
    a, b = to_checksum_address(token_a), to_checksum_address(token_b)
    pair = str(factory.functions.getPair(a, b).call())
    if int(pair, 16) == 0:
        _send(deployment, deployer, factory, "createPair", a, b)
        pair = str(factory.functions.getPair(a, b).call())
    erc20 = cast(ABI, load_artifact("MintableERC20").abi)
    for token, amount in ((a, amount_a), (b, amount_b)):
        _send(deployment, deployer, w3.eth.contract(address=token, abi=erc20), "mint", pair, amount)
    _send(deployment, deployer, _contract(w3, V2_PAIR, pair), "mint", _owner(deployment, to))
    return pair


def v3_contract(deployment: DevnetDeployment, which: str, address: str) -> Contract:
    """A web3.py contract for a Uniswap artifact: "pool", "manager", "factory" or "pair"."""
    paths = {
        "pool": V3_POOL,
        "manager": POSITION_MANAGER,
        "factory": V3_FACTORY,
        "router": SWAP_ROUTER,
        "pair": V2_PAIR,
        "v2factory": V2_FACTORY,
    }
    return _contract(web3_for(deployment), paths[which], address)


MAX_COLLECT = _MAX_UINT128
"""amount0Max/amount1Max that collects everything owed."""


@dataclass(frozen=True)
class SeededPositions:
    """A WETH/USDC V3 pool at the ETH feed's price with positions in and out of range."""

    uniswap: UniswapDeployment
    pool: str
    fee: int
    tick: int
    """The usable tick nearest the initial price; position bounds are relative to it."""
    positions: dict[int, str]
    """Token id -> owner (the deployer's deep full-width position included)."""
    in_range: frozenset[int]


def seed_positions(
    deployment: DevnetDeployment, *, owners: tuple[str, str], fee: int = 3000
) -> SeededPositions:
    """Deploy Uniswap and a WETH/USDC pool; the deployer provides depth, `owners[0]` gets one
    position in range and one above it, `owners[1]` one below and one narrow in range; two
    swaps leave fees to collect."""
    uniswap = deploy_uniswap(deployment)
    weth, usdc = deployment.tokens["WETH"], deployment.tokens["USDC"]
    usd = Fraction(deployment.feed_answers.get("ETH", 3_000 * 10**8), 10**8)
    price = usd * 10**usdc.decimals / 10**weth.decimals
    pool = create_v3_pool(
        deployment, uniswap, token_a=weth.address, token_b=usdc.address, fee=fee, b_per_a=price
    )
    spacing = TICK_SPACING[fee]
    tick = nearest_tick(raw_price(weth.address, usdc.address, price), spacing)
    eth, dollars = 10**weth.decimals, 10**usdc.decimals
    plan = (
        (_owner(deployment, None), -200, 200, 100 * eth, int(300_000 * usd) * dollars // 3_000),
        (owners[0], -10, 10, 2 * eth, 6_000 * dollars),
        (owners[0], 20, 40, 2 * eth, 6_000 * dollars),
        (owners[1], -40, -20, 2 * eth, 6_000 * dollars),
        (owners[1], -5, 15, eth // 3, 1_234 * dollars),
    )
    positions: dict[int, str] = {}
    in_range: set[int] = set()
    for owner, lower, upper, amount_weth, amount_usdc in plan:
        token_id = mint_v3_position(
            deployment,
            uniswap,
            owner=owner,
            token_a=weth.address,
            token_b=usdc.address,
            fee=fee,
            tick_lower=tick + lower * spacing,
            tick_upper=tick + upper * spacing,
            amount_a=amount_weth,
            amount_b=amount_usdc,
        )
        positions[token_id] = owner
        if lower <= 0 < upper:
            in_range.add(token_id)
    # A round trip through the pool: fees for every position in range.
    for token_in, token_out, amount in (
        (weth.address, usdc.address, 3 * eth),
        (usdc.address, weth.address, 7_000 * dollars),
    ):
        swap_v3(
            deployment, uniswap, token_in=token_in, token_out=token_out, fee=fee, amount_in=amount
        )
    return SeededPositions(uniswap, pool, fee, tick, positions, frozenset(in_range))
