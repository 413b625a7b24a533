"""Users keyed by the exact (issuer, subject); the wallet cap under concurrent adds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.core.errors import Unprocessable
from chainfolio.storage import migrations
from chainfolio.storage.accounts import add_wallet, ensure_user, get_policy, list_wallets
from chainfolio.storage.database import create_engine
from tests.hardening.conftest import scratch_database


async def test_every_spelling_of_a_subject_is_its_own_user(engine: AsyncEngine) -> None:
    """No normalisation: case, braces, urn:uuid: and bare hex of one UUID are five users, and a
    subject spelling another user's id is not that user."""
    base = uuid.uuid4()
    spellings = [
        str(base),
        str(base).upper(),
        "{" + str(base) + "}",
        f"urn:uuid:{base}",
        base.hex,
    ]
    async with engine.begin() as db:
        ids = [await ensure_user(db, subject=s) for s in spellings]
        alice = await ensure_user(db, subject=f"alice-{base.hex[:6]}")
        impostor = await ensure_user(db, subject=str(alice))
        same_sub_other_issuer = await ensure_user(db, subject=str(base), issuer="https://idp.b")
        again = [await ensure_user(db, subject=s) for s in spellings]
    assert len(set(ids)) == len(spellings)
    assert again == ids
    assert impostor != alice
    assert same_sub_other_issuer not in ids


@pytest.fixture
async def legacy_engine(pg_server_url: str) -> AsyncIterator[AsyncEngine]:
    """A database of its own, to be migrated only to version 5 (users keyed by subject)."""
    async with scratch_database(pg_server_url) as url:
        engine = create_engine(url, pool_size=2)
        try:
            yield engine
        finally:
            await engine.dispose()


async def test_migration_keeps_existing_users(
    legacy_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:5])
        patch.setattr(migrations, "LATEST_VERSION", 5)
        await migrations.migrate(legacy_engine)
    old_uuid_user, old_named_user = uuid.uuid4(), uuid.uuid4()
    async with legacy_engine.begin() as db:
        await db.execute(
            text("INSERT INTO users (id, subject) VALUES (:a, :sa), (:b, 'bob')"),
            {"a": old_uuid_user, "sa": str(old_uuid_user), "b": old_named_user},
        )
    assert await migrations.migrate(legacy_engine) == list(range(6, migrations.LATEST_VERSION + 1))
    async with legacy_engine.begin() as db:
        # tokens without `iss` (as every token was read before) find their users
        assert await ensure_user(db, subject=str(old_uuid_user)) == old_uuid_user
        assert await ensure_user(db, subject="bob") == old_named_user
        # another spelling of the old UUID subject is someone else
        assert await ensure_user(db, subject=str(old_uuid_user).upper()) != old_uuid_user
        # the first issuer presenting the exact subject claims the row, once
        assert await ensure_user(db, subject="bob", issuer="https://idp.a") == old_named_user
        assert await ensure_user(db, subject="bob", issuer="https://idp.b") != old_named_user


async def test_concurrent_first_sights_of_one_subject_are_one_user(database_url: str) -> None:
    """Twenty requests of a new user at once (a client's first page load) all get its id: the
    insert race once lost one of them to a primary-key violation, a 500 (seen ~2 % of rounds).
    150 rounds make a regression show with probability > 0.95."""
    engine = create_engine(database_url, pool_size=20)
    try:
        for _ in range(150):
            subject = f"first-{uuid.uuid4().hex}"

            async def sight(subject: str = subject) -> uuid.UUID:
                async with engine.begin() as db:
                    return await ensure_user(db, subject=subject, issuer="https://idp.race")

            ids = await asyncio.gather(*(sight() for _ in range(20)))
            assert len(set(ids)) == 1
    finally:
        await engine.dispose()


async def test_wallet_cap_holds_under_concurrent_adds(engine: AsyncEngine) -> None:
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"cap-{uuid.uuid4().hex[:8]}")
        for i in range(8):
            await add_wallet(
                db,
                user_id=user_id,
                chain_id=1,
                address=f"0x{i:040x}",
                label=None,
                max_wallets=10,
            )

    async def add(i: int) -> str:
        try:
            async with engine.begin() as db:
                await add_wallet(
                    db,
                    user_id=user_id,
                    chain_id=1,
                    address=f"0x{100 + i:040x}",
                    label=None,
                    max_wallets=10,
                )
        except Unprocessable as exc:
            return exc.code
        return "added"

    outcomes = await asyncio.gather(*(add(i) for i in range(6)))
    assert sorted(outcomes) == ["LIMIT_EXCEEDED"] * 4 + ["added"] * 2
    async with engine.connect() as db:
        assert len(await list_wallets(db, user_id=user_id)) == 10


async def test_a_bad_stored_value_is_refused_as_itself(engine: AsyncEngine) -> None:
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"stored-{uuid.uuid4().hex[:8]}")
        await db.execute(
            text(
                "INSERT INTO allocation_settings (user_id, band, min_trade_usd) VALUES (:u, :b, :m)"
            ),
            {"u": user_id, "b": Decimal("0.05"), "m": Decimal("1e400")},
        )
    async with engine.connect() as db:
        with pytest.raises(Unprocessable) as refused:
            await get_policy(db, user_id=user_id)
    assert refused.value.code == "INVALID_STORED_VALUE"
    assert "minTradeUsd" in refused.value.message
