"""A Uniswap pool's answers as a price: V3 `slot0` or the `observe` TWAP (OracleLibrary's
mean tick), V2 reserves; exact, in quote units per token, with the quote side's depth. And
the chain's Uniswap settings the pricing reads: quote tokens, liquidity floor, V2 factory."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from fractions import Fraction

from chainfolio.fetchers.config import ChainConfig, TokenConfig, UniswapV2Config
from chainfolio.fetchers.multicall import CallResult, MalformedResult
from chainfolio.fetchers.positions import signed, sqrt_ratio_at_tick, words


def pool_quote(
    *,
    version: int,
    token: str,
    quote: str,
    decimals: tuple[int, int],
    results: Sequence[CallResult],
    twap: int,
) -> tuple[Decimal, Decimal, str] | str:
    """(token price in quote units, quote-side depth in whole units, how: "twap Ns", "spot"
    or "reserves") from a V3 pool's (slot0, observe, quote balance) or a V2 pair's
    (getReserves,) answers; or why they cannot be used. `decimals`: (token's, quote's)."""
    token_decimals, quote_decimals = decimals
    token_is_0 = int(token, 16) < int(quote, 16)
    try:
        if version == 3:
            sqrt_price = words(results[0], 1)[0]
            tick = twap_tick(results[1], twap)
            if tick is not None:
                sqrt_price, how = sqrt_ratio_at_tick(tick), f"twap {twap}s"
            else:
                how = "spot"
            (quote_raw,) = words(results[2], 1)
            raw = Fraction(sqrt_price * sqrt_price, 2**192)
        else:
            reserve0, reserve1 = words(results[0], 2)
            if not reserve0 or not reserve1:
                return "empty pair"
            quote_raw = reserve1 if token_is_0 else reserve0
            raw, how = Fraction(reserve1, reserve0), "reserves"
    except MalformedResult as exc:
        return str(exc)
    if raw == 0:
        return "zero price"
    per_token = raw if token_is_0 else 1 / raw  # quote base units per token base unit
    with localcontext() as exact:
        exact.prec = 200
        price = (Decimal(per_token.numerator) / Decimal(per_token.denominator)).scaleb(
            token_decimals - quote_decimals
        )
    return price, Decimal(quote_raw).scaleb(-quote_decimals), how


def v2_factory(chain: ChainConfig) -> str | None:
    """The chain's Uniswap V2 factory, if it has one."""
    return chain.uniswap_v2.factory if chain.uniswap_v2 is not None else None


def quote_tokens(chain: ChainConfig) -> list[TokenConfig]:
    """The chain's configured quote tokens (V3 list, else V2 list), those it lists."""
    wanted = (chain.uniswap_v3 or chain.uniswap_v2 or UniswapV2Config()).quote_tokens
    found = []
    for ref in wanted:
        try:
            found.append(chain.token(ref))
        except ValueError:
            continue
    return found


def liquidity_floor(chain: ChainConfig, version: int) -> Decimal:
    """The USD depth below which a pool of that version is not used."""
    config = chain.uniswap_v3 if version == 3 else chain.uniswap_v2
    return config.min_liquidity_usd if config is not None else Decimal(100_000)


def observe_args(seconds: int) -> bytes:
    """ABI for observe(uint32[] [seconds, 0])."""
    return (
        (32).to_bytes(32, "big") + (2).to_bytes(32, "big") + seconds.to_bytes(32, "big") + bytes(32)
    )


def twap_tick(result: CallResult, seconds: int) -> int | None:
    """OracleLibrary.consult's mean tick from observe([seconds, 0]); None when unavailable."""
    if seconds <= 0 or not result.success or len(result.data) < 32 * 4:
        return None
    try:
        # (int56[] tickCumulatives, uint160[] secondsPerLiquidity): first array's two entries.
        first = int.from_bytes(result.data[:32], "big")
        values = words(CallResult(True, result.data[first + 32 : first + 96]), 2)
    except MalformedResult:
        return None
    delta = signed(values[1]) - signed(values[0])
    tick = delta // seconds if delta >= 0 else -((-delta) // seconds)
    if delta < 0 and delta % seconds:
        tick -= 1
    return tick
