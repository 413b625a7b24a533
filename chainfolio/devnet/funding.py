"""What the devnet deploys and how much each wallet gets: the token and feed specs and the
deterministic funding formulas (the same chain, wallet and token always get the same amount)."""

from __future__ import annotations

from dataclasses import dataclass

NFT_NAME = "Chainfolio Punks"
NFT_SYMBOL = "CFPUNK"
VAULT_SEED_ASSETS = 10 * 10**18
"""WETH the deployer deposits first, at a 1:1 rate."""
VAULT_YIELD_ASSETS = 5 * 10**17
"""WETH accrued right after, so one share is worth 1.05 WETH for later depositors."""


@dataclass(frozen=True)
class TokenSpec:
    """An ERC-20 the devnet deploys; `typical` whole units scale the funded amounts."""

    symbol: str
    name: str
    decimals: int
    typical: int


@dataclass(frozen=True)
class FeedSpec:
    """A Chainlink feed the devnet deploys as Chainlink's `MockV3Aggregator`, with its initial
    answer. `description` names the mainnet feed it stands for; the mock's own `description()`
    is a fixed string, which nothing of ours reads."""

    key: str
    description: str
    decimals: int
    answer: int


STANDARD_TOKENS = (
    TokenSpec("USDC", "USD Coin", 6, 25_000),
    TokenSpec("USDT", "Tether USD", 6, 10_000),
    TokenSpec("WBTC", "Wrapped BTC", 8, 2),
    TokenSpec("DAI", "Dai Stablecoin", 18, 5_000),
    TokenSpec("WETH", "Wrapped Ether", 18, 20),
)


FEEDS = (
    FeedSpec("ETH", "ETH / USD", 8, 3_000_00000000),
    FeedSpec("BTC", "BTC / USD", 8, 65_000_00000000),
    FeedSpec("USDC", "USDC / USD", 8, 1_00000000),
    FeedSpec("DAI", "DAI / USD", 8, 99_980_000),
    FeedSpec("NFT_FLOOR", f"{NFT_SYMBOL} Floor Price / ETH", 18, 12_500_000_000_000_000_000),
)


FX_FEEDS = (
    FeedSpec("EUR", "EUR / USD", 8, 1_08000000),
    FeedSpec("GBP", "GBP / USD", 8, 1_27000000),
    FeedSpec("CHF", "CHF / USD", 8, 1_13000000),
    FeedSpec("JPY", "JPY / USD", 8, 670_000),
)
"""Display-currency rates (USD per unit, as Chainlink's mainnet FX feeds answer), deployed like
`FEEDS` as Chainlink's own `MockV3Aggregator` from the pinned npm `@chainlink/contracts`."""


def token_specs(extra_tokens: int = 0) -> list[TokenSpec]:
    """The standard tokens plus `extra_tokens` generic ones ("TK00"…, decimals 18/6/8)."""
    extras = [
        TokenSpec(f"TK{j:02d}", f"Devnet Token {j:02d}", (18, 6, 8)[j % 3], 1_000)
        for j in range(extra_tokens)
    ]
    return [*STANDARD_TOKENS, *extras]


def _pow10(exponent: int) -> int:
    # `10 ** n` with a variable n is typed Any (n could be negative); decimals never are.
    return int(10**exponent)


def token_amount(chain_id: int, wallet_index: int, token_index: int, spec: TokenSpec) -> int:
    """Base units of token `token_index` funded to wallet `wallet_index`; some are zero."""
    if (wallet_index + token_index) % 7 == 6:
        return 0
    mix = (wallet_index + 1) * 2_654_435_761 + (token_index + 1) * 40_503 + chain_id * 97
    mix %= 2**32
    unit, fraction_unit = _pow10(spec.decimals), _pow10(spec.decimals // 2)
    return spec.typical * unit * (mix % 1000 + 1) // 500 + mix % fraction_unit


def native_amount(chain_id: int, wallet_index: int) -> int:
    """Wei funded to wallet `wallet_index`."""
    return (1 + (wallet_index * 7 + chain_id) % 40) * 10**18 + wallet_index * 1_234_567_891 + 1


def nft_count(wallet_index: int) -> int:
    return (wallet_index + 1) % 3


def vault_deposit(wallet_index: int) -> int | None:
    if wallet_index % 4 != 0:
        return None
    return (wallet_index % 7 + 1) * 10**18 // 2 + wallet_index * 10**12


def lending_amounts(wallet_index: int) -> tuple[int, int] | None:
    """(USDC supplied, WETH borrowed) for lending users."""
    if wallet_index % 5 != 0:
        return None
    return (10_000 + 250 * wallet_index) * 10**6, 2 * 10**18 + wallet_index * 10**16
