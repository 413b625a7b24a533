"""DEX positions through GraphQL and REST on holdings seeded in the DB: one row per position
with its legs, legs attributed to their assets, and rebalancing that reduces a position
instead of selling a leg. Figures are worked out by hand below."""

from __future__ import annotations

from decimal import Decimal

import httpx

from chainfolio.core.domain import AssetKind, Category, Holding, Price
from tests.api.conftest import PRICE_T, Auth
from tests.api.test_allocation import _graphql, _seed, _set_targets

WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
MANAGER = "0xC36442b4a4522E871399CD717aBDD847Ab11FE88"
POSITION = f"{MANAGER}#4242"


def _leg(
    symbol: str, token: str, leg: int, amount: int, decimals: int, usd: str, category: Category
) -> Holding:
    return Holding(
        chain_id=1,
        wallet="",
        symbol=symbol,
        contract=f"{POSITION}/{leg}",
        kind=AssetKind.POSITION,
        category=category,
        decimals=decimals,
        amount=amount,
        price=Price(symbol, Decimal(usd), "chainlink", PRICE_T),
        block_number=100,
        extra={
            "protocol": "uniswap-v3",
            "position": POSITION,
            "leg": str(leg),
            "pool": "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640",
            "in_range": "true",
            "underlying_contract": token,
        },
    )


def _portfolio() -> list[Holding]:
    """1 WETH held (2,000 USD) + a WETH/USDC position: 4 WETH and 8,000 USDC of liquidity,
    0.01 WETH and 20 USDC of fees. WETH at 2,000 USD: total 2,000 + 8,000 + 8,000 + 20 + 20."""
    return [
        Holding(
            1,
            "",
            "WETH",
            WETH,
            AssetKind.ERC20,
            Category.WALLET,
            18,
            10**18,
            Price("WETH", Decimal(2000), "chainlink", PRICE_T),
            100,
        ),
        _leg("WETH", WETH, 0, 4 * 10**18, 18, "2000", Category.DEPOSIT),
        _leg("USDC", USDC, 1, 8_000 * 10**6, 6, "1", Category.DEPOSIT),
        _leg("WETH", WETH, 0, 10**16, 18, "2000", Category.REWARD),
        _leg("USDC", USDC, 1, 20 * 10**6, 6, "1", Category.REWARD),
    ]


POSITIONS_QUERY = """{ portfolio { totalValue categories { category value }
    holdings { asset category position positionLeg }
    positions { id protocol chainId wallet pool inRange valueUsd
        legs { asset category amount valueUsd positionLeg } } } }"""


async def test_a_position_is_one_row_with_its_legs(
    client: httpx.AsyncClient, auth: Auth, engine: object
) -> None:
    subject = await _seed(engine, _portfolio())  # type: ignore[arg-type]
    data = (await _graphql(client, auth, subject, POSITIONS_QUERY))["data"]["portfolio"]
    assert Decimal(data["totalValue"]) == 18_040
    categories = {c["category"]: Decimal(c["value"]) for c in data["categories"]}
    assert categories == {"WALLET": 2_000, "DEPOSIT": 16_000, "REWARD": 40}
    (position,) = data["positions"]
    assert position["id"] == POSITION
    assert position["protocol"] == "uniswap-v3"
    assert position["inRange"] is True
    assert Decimal(position["valueUsd"]) == 16_040
    legs = {(leg["asset"], leg["category"]): leg for leg in position["legs"]}
    assert legs[("WETH", "DEPOSIT")]["amount"] == str(4 * 10**18)
    assert legs[("USDC", "REWARD")]["positionLeg"] == 1
    assert sum(1 for h in data["holdings"] if h["position"] == POSITION) == 4


async def test_legs_count_toward_their_assets(
    client: httpx.AsyncClient, auth: Auth, engine: object
) -> None:
    subject = await _seed(engine, _portfolio())  # type: ignore[arg-type]
    query = "{ allocation { byAsset { key valueUsd } byCategory { key valueUsd } } }"
    data = (await _graphql(client, auth, subject, query))["data"]["allocation"]
    by_asset = {s["key"]: Decimal(s["valueUsd"]) for s in data["byAsset"]}
    assert by_asset == {"WETH": 2_000 + 8_000 + 20, "USDC": 8_000 + 20}


async def test_rebalancing_reduces_the_position_instead_of_selling_a_leg(
    client: httpx.AsyncClient, auth: Auth, engine: object
) -> None:
    subject = await _seed(engine, _portfolio())  # type: ignore[arg-type]
    await _set_targets(
        client,
        auth,
        subject,
        {"targets": [{"key": "WETH", "weight": 20}, {"key": "USDC", "weight": 80}], "band": 1},
    )
    query = "{ rebalance { trades { side asset chainId valueUsd amount position } } }"
    trades = (await _graphql(client, auth, subject, query))["data"]["rebalance"]["trades"]
    # WETH 10,020 of 18,040 (55.5 %) -> 20 % = 3,608: sell 6,412 of WETH. Only 2,000 is held
    # as tokens; the other 4,412 comes out of the position (its WETH is worth 8,020).
    assert trades == [
        {
            "side": "SELL",
            "asset": "WETH",
            "chainId": 1,
            "valueUsd": "2000.00",
            "amount": "1.000000000000000000",
            "position": None,
        },
        {
            "side": "REDUCE",
            "asset": "WETH",
            "chainId": 1,
            "valueUsd": "4412.00",
            "amount": "2.206000000000000000",
            "position": POSITION,
        },
        {
            "side": "BUY",
            "asset": "USDC",
            "chainId": 1,
            "valueUsd": "6412.00",
            "amount": "6412.000000",
            "position": None,
        },
    ]
    rest = (await client.get("/v1/portfolio/rebalance", headers=auth(subject))).json()["data"]
    assert [(t["side"], t["position"]) for t in rest["trades"]] == [
        ("SELL", None),
        ("REDUCE", POSITION),
        ("BUY", None),
    ]
