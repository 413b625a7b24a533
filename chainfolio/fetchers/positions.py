"""DEX liquidity positions: Uniswap V3 position NFTs and Uniswap V2 LP tokens, in exact integers.

A V3 position becomes four holdings that share `extra["position"]`: its two legs as DEPOSIT
(the tokens a full withdrawal would return now) and its uncollected fees as REWARD (what
`collect` would pay). Amounts follow the pool's own math — TickMath, SqrtPriceMath rounding
down, Tick.getFeeGrowthInside with wrapping subtraction — so they equal what the position
manager's `decreaseLiquidity` and `collect` return, to the base unit.

Reads are part of the chain's block-pinned Multicall3 read, in at most three rounds:

1. (with the balances) `balanceOf(owner)` on the position manager and, speculatively,
   `tokenOfOwnerByIndex(owner, i)` for the first indices (as many as the wallet had last time,
   at least `positions_guess`; a call past the end just fails); V2 pairs' `totalSupply`,
   `getReserves`, `token0`, `token1`, `kLast`, the factory's `feeTo` and each LP balance.
2. `positions(tokenId)` of every NFT (plus any index the guess missed — then a fourth round).
3. Each pool's `slot0` and fee growth, and `ticks(t)` of every position bound.

Pool addresses are computed (CREATE2 from the factory and init code hash), not asked for.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chainfolio.core.domain import AssetKind, Category, ChecksumAddress, Holding
from chainfolio.fetchers.config import ChainConfig, TokenConfig
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    GET_RESERVES,
    TOKEN0,
    Call,
    CallResult,
    MalformedResult,
    selector,
    with_address,
    with_uint,
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


def _address_word(result: CallResult) -> ChecksumAddress:
    (word,) = words(result, 1)
    return ChecksumAddress(to_checksum_address(word.to_bytes(32, "big")[12:]))


Aggregate = Callable[[Sequence[Call]], Awaitable[list[CallResult]]]
"""Runs calls through Multicall3 at the read's block."""


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


@dataclass(slots=True)
class PositionPlan:
    """Round-one calls of a chain read that concern positions, by index into its calls."""

    v3_balances: dict[ChecksumAddress, int] = field(default_factory=dict)
    v3_indices: dict[ChecksumAddress, list[int]] = field(default_factory=dict)
    v2_pairs: dict[str, dict[str, int]] = field(default_factory=dict)
    v2_balances: dict[tuple[ChecksumAddress, str], int] = field(default_factory=dict)
    fee_to: int | None = None


@dataclass(frozen=True, slots=True)
class _Leg:
    """One holding to produce for a position."""

    wallet: ChecksumAddress
    token: str
    category: Category
    amount: int | None
    contract: str
    extra: dict[str, str]
    error: str | None = None


class PositionReader:
    """Reads one chain's Uniswap V3 NFTs and V2 LP tokens for many wallets (see module doc)."""

    def __init__(self, chain: ChainConfig) -> None:
        self.chain = chain
        self._seen_counts: dict[ChecksumAddress, int] = {}

    @property
    def enabled(self) -> bool:
        """Whether the chain has anything of this kind to read."""
        v3, v2 = self.chain.uniswap_v3, self.chain.uniswap_v2
        return bool((v3 and v3.position_manager) or (v2 and v2.lp_pairs))

    def plan(self, calls: list[Call], wallets: Sequence[ChecksumAddress]) -> PositionPlan:
        """Append round-one calls to `calls`."""
        plan = PositionPlan()

        def add(call: Call) -> int:
            calls.append(call)
            return len(calls) - 1

        v3 = self.chain.uniswap_v3
        if v3 is not None and v3.position_manager is not None:
            manager = v3.position_manager
            for wallet in wallets:
                plan.v3_balances[wallet] = add(Call(manager, with_address(BALANCE_OF, wallet)))
                # The count seen last time; before the first read, a guess.
                guess = self._seen_counts.get(wallet, v3.positions_guess)
                plan.v3_indices[wallet] = [
                    add(Call(manager, _index_call(wallet, i))) for i in range(guess)
                ]
        v2 = self.chain.uniswap_v2
        if v2 is not None and v2.lp_pairs:
            if v2.factory is not None:
                plan.fee_to = add(Call(v2.factory, FEE_TO))
            for pair in v2.lp_pairs:
                plan.v2_pairs[pair] = {
                    name: add(Call(pair, function))
                    for name, function in (
                        ("supply", TOTAL_SUPPLY),
                        ("reserves", GET_RESERVES),
                        ("token0", TOKEN0),
                        ("token1", TOKEN1),
                        ("k_last", K_LAST),
                    )
                }
                for wallet in wallets:
                    plan.v2_balances[(wallet, pair)] = add(
                        Call(pair, with_address(BALANCE_OF, wallet))
                    )
        return plan

    async def read(
        self,
        plan: PositionPlan,
        results: Sequence[CallResult],
        aggregate: Aggregate,
        *,
        decimals: Mapping[str, int],
        block: int,
        observed_at: datetime,
    ) -> dict[ChecksumAddress, list[Holding]]:
        """Finish the read (rounds two and three) and return each wallet's position holdings."""
        legs = self._v2_legs(plan, results)
        legs += await self._v3_legs(plan, results, aggregate)
        holdings: dict[ChecksumAddress, list[Holding]] = {}
        for leg in legs:
            holdings.setdefault(leg.wallet, []).append(
                self._holding(leg, decimals, block, observed_at)
            )
        return holdings

    # --- Uniswap V3 ------------------------------------------------------------------------

    async def _v3_legs(
        self, plan: PositionPlan, results: Sequence[CallResult], aggregate: Aggregate
    ) -> list[_Leg]:
        v3 = self.chain.uniswap_v3
        if v3 is None or v3.position_manager is None:
            return []
        manager = v3.position_manager
        legs: list[_Leg] = []
        owned: dict[ChecksumAddress, list[int | None]] = {}
        missing: list[tuple[ChecksumAddress, int]] = []
        for wallet, call in plan.v3_balances.items():
            try:
                (count,) = words(results[call], 1)
            except MalformedResult as exc:
                legs.append(self._unknown(wallet, manager, f"balanceOf failed: {exc}"))
                continue
            self._seen_counts[wallet] = count
            guessed = plan.v3_indices[wallet]
            ids: list[int | None] = []
            for index in range(count):
                if index < len(guessed):
                    try:
                        (token_id,) = words(results[guessed[index]], 1)
                        ids.append(token_id)
                        continue
                    except MalformedResult:
                        pass
                ids.append(None)
                missing.append((wallet, index))
            owned[wallet] = ids
        # Round two: positions of known ids, plus indices the guess did not cover.
        known = [(w, i) for w, ids in owned.items() for i in ids if i is not None]
        calls = [Call(manager, with_uint(POSITIONS, token_id)) for _, token_id in known]
        calls += [Call(manager, _index_call(w, index)) for w, index in missing]
        round2 = await aggregate(calls) if calls else []
        found = list(zip(known, round2[: len(known)], strict=True))
        late: list[tuple[ChecksumAddress, int]] = []
        for (wallet, _), result in zip(missing, round2[len(known) :], strict=True):
            try:
                (token_id,) = words(result, 1)
            except MalformedResult as exc:
                legs.append(self._unknown(wallet, manager, f"tokenOfOwnerByIndex failed: {exc}"))
                continue
            late.append((wallet, token_id))
        if late:
            extra = await aggregate([Call(manager, with_uint(POSITIONS, t)) for _, t in late])
            found += list(zip(late, extra, strict=True))
        positions: list[tuple[ChecksumAddress, V3Position]] = []
        for (wallet, token_id), result in found:
            try:
                positions.append((wallet, V3Position.decode(token_id, result)))
            except MalformedResult as exc:
                legs.append(self._unknown(wallet, manager, f"positions({token_id}) failed: {exc}"))
        if positions:
            legs += await self._v3_values(positions, aggregate)
        return legs

    async def _v3_values(
        self, positions: Sequence[tuple[ChecksumAddress, V3Position]], aggregate: Aggregate
    ) -> list[_Leg]:
        v3 = self.chain.uniswap_v3
        assert v3 is not None
        pools = {
            p.token_id: v3_pool_address(
                v3.factory, p.token0, p.token1, p.fee, v3.pool_init_code_hash
            )
            for _, p in positions
        }
        # Round three: each pool's state once, each bound's fee growth once.
        calls: list[Call] = []
        index: dict[tuple[str, str | int], int] = {}

        def ask(pool: str, what: str | int, call: Call) -> None:
            if (pool, what) not in index:
                index[(pool, what)] = len(calls)
                calls.append(call)

        for _, p in positions:
            pool = pools[p.token_id]
            ask(pool, "slot0", Call(pool, SLOT0))
            ask(pool, "global0", Call(pool, FEE_GROWTH_GLOBAL0))
            ask(pool, "global1", Call(pool, FEE_GROWTH_GLOBAL1))
            for tick in (p.tick_lower, p.tick_upper):
                ask(pool, tick, Call(pool, with_int(TICKS, tick)))
        results = await aggregate(calls)
        legs: list[_Leg] = []
        assert v3.position_manager is not None
        for wallet, p in positions:
            pool = pools[p.token_id]
            contract = f"{v3.position_manager}#{p.token_id}"
            try:
                slot0 = words(results[index[(pool, "slot0")]], 2)
                (global0,) = words(results[index[(pool, "global0")]], 1)
                (global1,) = words(results[index[(pool, "global1")]], 1)
                lower = words(results[index[(pool, p.tick_lower)]], 4)
                upper = words(results[index[(pool, p.tick_upper)]], 4)
            except MalformedResult as exc:
                error = f"pool {pool} unreadable: {exc}"
                legs += [
                    _Leg(wallet, token, category, None, f"{contract}/{i}", {}, error)
                    for i, token in enumerate((p.token0, p.token1))
                    for category in (Category.DEPOSIT, Category.REWARD)
                ]
                continue
            value = value_position(
                p,
                pool=pool,
                sqrt_price=slot0[0],
                tick=signed(slot0[1]),
                global0=global0,
                global1=global1,
                lower=(lower[2], lower[3]),
                upper=(upper[2], upper[3]),
            )
            if not (p.liquidity or value.fees0 or value.fees1):
                continue  # a closed position (all withdrawn and collected) holds nothing
            extra = {
                "protocol": "uniswap-v3",
                "position": contract,
                "token_id": str(p.token_id),
                "pool": pool,
                "fee": str(p.fee),
                "tick_lower": str(p.tick_lower),
                "tick_upper": str(p.tick_upper),
                "tick": str(signed(slot0[1])),
                "liquidity": str(p.liquidity),
                "in_range": "true" if value.in_range else "false",
            }
            for i, token, amount, fees in (
                (0, p.token0, value.amount0, value.fees0),
                (1, p.token1, value.amount1, value.fees1),
            ):
                leg = {**extra, "leg": str(i)}
                legs.append(_Leg(wallet, token, Category.DEPOSIT, amount, f"{contract}/{i}", leg))
                legs.append(_Leg(wallet, token, Category.REWARD, fees, f"{contract}/{i}", leg))
        return legs

    # --- Uniswap V2 ------------------------------------------------------------------------

    def _v2_legs(self, plan: PositionPlan, results: Sequence[CallResult]) -> list[_Leg]:
        fee_to: str | None = None
        if plan.fee_to is not None:
            try:
                fee_to = _address_word(results[plan.fee_to])
            except MalformedResult:
                fee_to = None
        legs: list[_Leg] = []
        for pair, calls in plan.v2_pairs.items():
            try:
                (supply,) = words(results[calls["supply"]], 1)
                reserve0, reserve1 = words(results[calls["reserves"]], 2)
                tokens = (
                    _address_word(results[calls["token0"]]),
                    _address_word(results[calls["token1"]]),
                )
                (k_last,) = words(results[calls["k_last"]], 1) if fee_to else (0,)
                problem = None
            except MalformedResult as exc:
                problem = f"pair {pair} unreadable: {exc}"
            for (wallet, lp_pair), call in plan.v2_balances.items():
                if lp_pair != pair:
                    continue
                if problem is not None:
                    legs.append(self._unknown(wallet, pair, problem))
                    continue
                try:
                    (balance,) = words(results[call], 1)
                except MalformedResult as exc:
                    legs.append(self._unknown(wallet, pair, f"balanceOf failed: {exc}"))
                    continue
                if not balance:
                    continue
                supply_now = supply + _v2_fee_liquidity(
                    fee_on=bool(fee_to and int(fee_to, 16)),
                    supply=supply,
                    reserves=(reserve0, reserve1),
                    k_last=k_last,
                )
                extra = {
                    "protocol": "uniswap-v2",
                    "position": pair,
                    "pool": pair,
                    "lp_balance": str(balance),
                    "lp_supply": str(supply_now),
                }
                for i, (token, reserve) in enumerate(
                    zip(tokens, (reserve0, reserve1), strict=True)
                ):
                    legs.append(
                        _Leg(
                            wallet,
                            token,
                            Category.DEPOSIT,
                            balance * reserve // supply_now,
                            f"{pair}/{i}",
                            {**extra, "leg": str(i)},
                        )
                    )
        return legs

    # --- holdings --------------------------------------------------------------------------

    def _unknown(self, wallet: ChecksumAddress, contract: str, error: str) -> _Leg:
        return _Leg(wallet, "", Category.DEPOSIT, None, contract, {}, error)

    def _token(self, address: str) -> TokenConfig | None:
        try:
            return self.chain.token(address)
        except ValueError:
            return None

    def _holding(
        self, leg: _Leg, decimals: Mapping[str, int], block: int, observed_at: datetime
    ) -> Holding:
        token = self._token(leg.token) if leg.token else None
        amount, error = leg.amount, leg.error
        extra = dict(leg.extra)
        if leg.token:
            extra["underlying_contract"] = leg.token
        token_decimals = decimals.get(token.address) if token is not None else None
        if token is None and leg.token:
            amount, error = None, error or f"token {leg.token} is not in the chain's tokens list"
        elif token is not None and token_decimals is None:
            amount, error = None, error or "decimals unknown"
        if token is not None:
            extra["price_symbol"] = token.price_key
            extra["underlying"] = token.symbol
        return Holding(
            chain_id=self.chain.chain_id,
            wallet=leg.wallet,
            symbol=token.symbol if token is not None else (leg.token or "?"),
            contract=leg.contract,
            kind=AssetKind.POSITION,
            category=leg.category,
            decimals=token_decimals or 0,
            amount=amount,
            block_number=block,
            error=error,
            observed_at=observed_at,
            extra=extra,
        )


def _index_call(wallet: str, index: int) -> bytes:
    return with_address(TOKEN_OF_OWNER_BY_INDEX, wallet) + index.to_bytes(32, "big")


def _v2_fee_liquidity(*, fee_on: bool, supply: int, reserves: tuple[int, int], k_last: int) -> int:
    """LP tokens UniswapV2Pair._mintFee mints to feeTo before a burn (0 when the fee is off)."""
    if not fee_on or not k_last:
        return 0
    root_k, root_k_last = math.isqrt(reserves[0] * reserves[1]), math.isqrt(k_last)
    if root_k <= root_k_last:
        return 0
    return supply * (root_k - root_k_last) // (root_k * 5 + root_k_last)
