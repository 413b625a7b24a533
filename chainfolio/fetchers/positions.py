"""DEX liquidity positions: Uniswap V3 position NFTs and Uniswap V2 LP tokens, in exact integers.

A V3 position becomes four holdings that share `extra["position"]`: its two legs as DEPOSIT
(the tokens a full withdrawal would return now) and its uncollected fees as REWARD (what
`collect` would pay). Amounts follow the pool's own math — TickMath, SqrtPriceMath rounding
down, Tick.getFeeGrowthInside with wrapping subtraction — so they equal what the position
manager's `decreaseLiquidity` and `collect` return, to the base unit.

Reading them for many wallets at once is `fetchers.position_reader`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chainfolio.core.domain import ChecksumAddress
from chainfolio.fetchers.multicall import (
    CallResult,
    MalformedResult,
    selector,
)

Q96 = 2**96
Q128 = 2**128
_U256 = 2**256
MIN_TICK, MAX_TICK = -887272, 887272

TOKEN_OF_OWNER_BY_INDEX = selector("tokenOfOwnerByIndex(address,uint256)")
POSITIONS = selector("positions(uint256)")
SLOT0 = selector("slot0()")
FEE_GROWTH_GLOBAL0 = selector("feeGrowthGlobal0X128()")
FEE_GROWTH_GLOBAL1 = selector("feeGrowthGlobal1X128()")
TICKS = selector("ticks(int24)")
TOTAL_SUPPLY = selector("totalSupply()")
TOKEN1 = selector("token1()")
K_LAST = selector("kLast()")
FEE_TO = selector("feeTo()")

_TICK_FACTORS = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)


def sqrt_ratio_at_tick(tick: int) -> int:
    """TickMath.getSqrtRatioAtTick: sqrt(1.0001^tick) * 2^96, exactly as the pool rounds it."""
    abs_tick = abs(tick)
    if abs_tick > MAX_TICK:
        raise ValueError(f"tick {tick} out of range")
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if abs_tick & 1 else Q128
    for bit, factor in _TICK_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = (_U256 - 1) // ratio
    return (ratio >> 32) + (1 if ratio % (1 << 32) else 0)


def amount0_delta(sqrt_a: int, sqrt_b: int, liquidity: int) -> int:
    """SqrtPriceMath.getAmount0Delta rounding down: token0 between two sqrt prices."""
    low, high = sorted((sqrt_a, sqrt_b))
    return (liquidity << 96) * (high - low) // high // low


def amount1_delta(sqrt_a: int, sqrt_b: int, liquidity: int) -> int:
    """SqrtPriceMath.getAmount1Delta rounding down: token1 between two sqrt prices."""
    low, high = sorted((sqrt_a, sqrt_b))
    return liquidity * (high - low) // Q96


def position_amounts(
    *, sqrt_price: int, tick: int, tick_lower: int, tick_upper: int, liquidity: int
) -> tuple[int, int]:
    """(amount0, amount1) that burning `liquidity` returns at the pool's current price."""
    sqrt_lower, sqrt_upper = sqrt_ratio_at_tick(tick_lower), sqrt_ratio_at_tick(tick_upper)
    if tick < tick_lower:
        return amount0_delta(sqrt_lower, sqrt_upper, liquidity), 0
    if tick < tick_upper:
        return (
            amount0_delta(sqrt_price, sqrt_upper, liquidity),
            amount1_delta(sqrt_lower, sqrt_price, liquidity),
        )
    return 0, amount1_delta(sqrt_lower, sqrt_upper, liquidity)


def fee_growth_inside(
    *,
    tick: int,
    tick_lower: int,
    tick_upper: int,
    glob: int,
    outside_lower: int,
    outside_upper: int,
) -> int:
    """Tick.getFeeGrowthInside for one token, with the pool's wrapping uint256 arithmetic."""
    below = outside_lower if tick >= tick_lower else (glob - outside_lower) % _U256
    above = outside_upper if tick < tick_upper else (glob - outside_upper) % _U256
    return (glob - below - above) % _U256


def fees_owed(*, owed: int, inside: int, inside_last: int, liquidity: int) -> int:
    """Tokens `collect` pays: recorded owed plus fees since the last update (uint128 wrap)."""
    return (owed + ((inside - inside_last) % _U256) * liquidity // Q128 % Q128) % Q128


def v3_pool_address(factory: str, token0: str, token1: str, fee: int, init_code_hash: str) -> str:
    """PoolAddress.computeAddress: the CREATE2 address of a V3 pool."""
    salt = keccak(
        bytes(12)
        + bytes.fromhex(token0[2:])
        + bytes(12)
        + bytes.fromhex(token1[2:])
        + fee.to_bytes(32, "big")
    )
    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + bytes.fromhex(init_code_hash[2:]))
    return to_checksum_address(raw[12:])


def words(result: CallResult, count: int) -> list[int]:
    """The first `count` 32-byte words of a successful call; MalformedResult otherwise."""
    if not result.success:
        raise MalformedResult(result.error or "call failed")
    if len(result.data) < 32 * count:
        raise MalformedResult(f"call returned {len(result.data)} bytes, want {32 * count}")
    return [int.from_bytes(result.data[32 * i : 32 * i + 32], "big") for i in range(count)]


def signed(word: int) -> int:
    """A two's-complement int256 word as a Python int (int24 ticks come sign-extended)."""
    return word - _U256 if word >= 2**255 else word


def with_int(function: bytes, value: int) -> bytes:
    """Calldata for a function taking one signed integer (ticks(int24))."""
    return function + (value % _U256).to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class V3Position:
    """One position NFT's state, decoded from `positions(tokenId)`."""

    token_id: int
    token0: str
    token1: str
    fee: int
    tick_lower: int
    tick_upper: int
    liquidity: int
    inside0_last: int
    inside1_last: int
    owed0: int
    owed1: int

    @classmethod
    def decode(cls, token_id: int, result: CallResult) -> V3Position:
        """From the 12 words of `positions(tokenId)`."""
        w = words(result, 12)
        address = [to_checksum_address(x.to_bytes(32, "big")[12:]) for x in (w[2], w[3])]
        return cls(
            token_id,
            address[0],
            address[1],
            w[4],
            signed(w[5]),
            signed(w[6]),
            w[7],
            w[8],
            w[9],
            w[10],
            w[11],
        )


@dataclass(frozen=True, slots=True)
class PositionValue:
    """What a V3 position holds now, per token: liquidity legs and uncollected fees."""

    amount0: int
    amount1: int
    fees0: int
    fees1: int
    in_range: bool
    pool: str


def value_position(
    position: V3Position,
    *,
    pool: str,
    sqrt_price: int,
    tick: int,
    global0: int,
    global1: int,
    lower: tuple[int, int],
    upper: tuple[int, int],
) -> PositionValue:
    """Legs and fees of a position from its pool's state; `lower`/`upper` are the bounds'
    (feeGrowthOutside0X128, feeGrowthOutside1X128)."""
    amount0, amount1 = position_amounts(
        sqrt_price=sqrt_price,
        tick=tick,
        tick_lower=position.tick_lower,
        tick_upper=position.tick_upper,
        liquidity=position.liquidity,
    )
    bounds = {"tick": tick, "tick_lower": position.tick_lower, "tick_upper": position.tick_upper}
    inside0 = fee_growth_inside(
        glob=global0, outside_lower=lower[0], outside_upper=upper[0], **bounds
    )
    inside1 = fee_growth_inside(
        glob=global1, outside_lower=lower[1], outside_upper=upper[1], **bounds
    )
    return PositionValue(
        amount0,
        amount1,
        fees_owed(
            owed=position.owed0,
            inside=inside0,
            inside_last=position.inside0_last,
            liquidity=position.liquidity,
        ),
        fees_owed(
            owed=position.owed1,
            inside=inside1,
            inside_last=position.inside1_last,
            liquidity=position.liquidity,
        ),
        position.tick_lower <= tick < position.tick_upper,
        pool,
    )


def v2_fee_liquidity(*, fee_on: bool, supply: int, reserves: tuple[int, int], k_last: int) -> int:
    """LP tokens UniswapV2Pair._mintFee mints to feeTo before a burn (0 when the fee is off)."""
    if not fee_on or not k_last:
        return 0
    root_k, root_k_last = math.isqrt(reserves[0] * reserves[1]), math.isqrt(k_last)
    if root_k <= root_k_last:
        return 0
    return supply * (root_k - root_k_last) // (root_k * 5 + root_k_last)


def address_word(result: CallResult) -> ChecksumAddress:
    """The address in the last 20 bytes of a one-word result."""
    (word,) = words(result, 1)
    return ChecksumAddress(to_checksum_address(word.to_bytes(32, "big")[12:]))
