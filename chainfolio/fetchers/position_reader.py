"""Reading DEX liquidity positions for many wallets, as part of a chain's block-pinned Multicall3
read, in at most three rounds (the math that values them is `fetchers.positions`):

1. (with the balances) `balanceOf(owner)` on the position manager and, speculatively,
   `tokenOfOwnerByIndex(owner, i)` for the first indices (as many as the wallet had last time,
   at least `positions_guess`; a call past the end just fails); V2 pairs' `totalSupply`,
   `getReserves`, `token0`, `token1`, `kLast`, the factory's `feeTo` and each LP balance.
2. `positions(tokenId)` of every NFT (plus any index the guess missed — then a fourth round).
3. Each pool's `slot0` and fee growth, and `ticks(t)` of every position bound.

Pool addresses are computed (CREATE2 from the factory and init code hash), not asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chainfolio.core.domain import AssetKind, Category, ChecksumAddress, Holding
from chainfolio.fetchers.config import ChainConfig, TokenConfig
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    GET_RESERVES,
    TOKEN0,
    Call,
    CallResult,
    MalformedResult,
    with_address,
    with_uint,
)
from chainfolio.fetchers.positions import (
    FEE_GROWTH_GLOBAL0,
    FEE_GROWTH_GLOBAL1,
    FEE_TO,
    K_LAST,
    POSITIONS,
    SLOT0,
    TICKS,
    TOKEN1,
    TOKEN_OF_OWNER_BY_INDEX,
    TOTAL_SUPPLY,
    V3Position,
    address_word,
    signed,
    v2_fee_liquidity,
    v3_pool_address,
    value_position,
    with_int,
    words,
)

Aggregate = Callable[[Sequence[Call]], Awaitable[list[CallResult]]]
"""Runs calls through Multicall3 at the read's block."""


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
                fee_to = address_word(results[plan.fee_to])
            except MalformedResult:
                fee_to = None
        legs: list[_Leg] = []
        for pair, calls in plan.v2_pairs.items():
            try:
                (supply,) = words(results[calls["supply"]], 1)
                reserve0, reserve1 = words(results[calls["reserves"]], 2)
                tokens = (
                    address_word(results[calls["token0"]]),
                    address_word(results[calls["token1"]]),
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
                supply_now = supply + v2_fee_liquidity(
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
