"""An app on the session database, driven in-process over ASGI (real HTTP semantics)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from chainfolio.api.app import create_app
from chainfolio.api.auth import issue_token
from chainfolio.core.domain import AssetKind, Category, Holding, Price
from chainfolio.core.settings import Settings
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.holdings import replace_wallet_holdings
from chainfolio.storage.timeseries import Snapshot, write_snapshots
from tests.worker.test_flows import Clock  # the clock a test moves by hand

SECRET = "test-secret-that-is-long-enough-for-hs256!"


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=SecretStr(database_url),
        jwt_secret=SecretStr(SECRET),
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


Auth = Callable[[str], dict[str, str]]


@pytest.fixture(scope="session")
def auth(settings: Settings) -> Auth:
    def headers(subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(settings, subject=subject)}"}

    return headers


NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PRICE_T = NOW - timedelta(minutes=5)


def _holding(
    chain_id: int,
    wallet: str,
    symbol: str,
    amount: int,
    decimals: int,
    usd: str,
    category: Category = Category.WALLET,
    contract: str = "native",
) -> Holding:
    kind = AssetKind.NATIVE if contract == "native" else AssetKind.ERC20
    return Holding(
        chain_id=chain_id,
        wallet=wallet,
        symbol=symbol,
        contract=contract,
        kind=kind,
        category=category,
        decimals=decimals,
        amount=amount,
        price=Price(symbol, Decimal(usd), "chainlink", PRICE_T),
        block_number=100,
    )


SeedUser = Callable[[], Awaitable[str]]


@pytest.fixture
def api_clock(app: Starlette) -> Iterator[Clock]:
    """The session app's clock, stopped for this test at the time it starts.

    `seeded_user` lays its snapshots out from this clock's hour: on the wall clock, an hour
    turning between the seeding and a request moved `change24h` to the next snapshot (and
    ended cached answers early). Apps a test builds itself take this clock too."""
    services = app.state.services
    wall = services.clock
    clock = Clock(datetime.now(UTC))
    services.clock = clock
    yield clock
    services.clock = wall


@pytest.fixture
def seeded_user(engine: AsyncEngine, api_clock: Clock) -> SeedUser:
    """Creates a user holding 10 ETH + 50,000 USDC on ethereum and 2 ETH on arbitrum, with a
    loan of 1,000 USDC, and hourly snapshots for the 48 hours before `api_clock`'s hour.
    Returns the subject."""

    async def seed() -> str:
        # this hour by the test's clock, neither at import nor by the wall clock: an hour
        # turning between seeding and a request would compare change24h with another snapshot
        now = api_clock.now.replace(minute=0, second=0, microsecond=0)
        subject = f"user-{uuid.uuid4().hex[:8]}"
        async with engine.begin() as db:
            user_id = await ensure_user(db, subject=subject)
            w1 = await add_wallet(
                db,
                user_id=user_id,
                chain_id=1,
                address="0x" + "11" * 20,
                label="main",
                max_wallets=10,
            )
            w2 = await add_wallet(
                db,
                user_id=user_id,
                chain_id=42161,
                address="0x" + "22" * 20,
                label=None,
                max_wallets=10,
            )
            usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
            await replace_wallet_holdings(
                db,
                user_id=user_id,
                wallet_id=w1.id,
                chain="ethereum",
                observed_at=now,
                holdings=[
                    _holding(1, w1.address, "ETH", 10 * 10**18, 18, "2000"),
                    _holding(1, w1.address, "USDC", 50_000 * 10**6, 6, "1", contract=usdc),
                    _holding(
                        1,
                        w1.address,
                        "USDC",
                        1_000 * 10**6,
                        6,
                        "1",
                        category=Category.LOAN,
                        contract=usdc,
                    ),
                ],
            )
            await replace_wallet_holdings(
                db,
                user_id=user_id,
                wallet_id=w2.id,
                chain="arbitrum",
                observed_at=now,
                holdings=[_holding(42161, w2.address, "ETH", 2 * 10**18, 18, "2000")],
            )
            await write_snapshots(
                db,
                [
                    Snapshot(
                        user_id,
                        now - timedelta(hours=h),
                        Decimal(70_000 - 10 * h),
                        {"ethereum": Decimal(50_000)},
                        {"ETH": Decimal(20_000)},
                        {"WALLET": Decimal(70_000)},
                    )
                    for h in range(1, 49)
                ],
            )
        return subject

    return seed
