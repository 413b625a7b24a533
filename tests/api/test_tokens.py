"""GraphQL of token discovery: wallet.sync progress, setTokenVisibility, excludedTokens."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from chainfolio.storage import tokens as token_store
from chainfolio.storage.accounts import user_id_for
from chainfolio.storage.tokens import SyncState, WalletSync
from tests.api.conftest import Auth
from tests.api.test_graphql import gql

WALLET = "0x00000000219ab540356cBB839Cbe05303d7705Fa"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


async def test_wallet_sync_reports_the_scan_progress(
    app: Starlette, client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject = f"sync-{uuid.uuid4().hex[:6]}"
    added = await gql(
        client, auth(subject), f'mutation {{ addWallet(chainId: 1, address: "{WALLET}") {{ id }} }}'
    )
    wallet_id = added["data"]["addWallet"]["id"]  # type: ignore[index]
    query = "{ wallets { id sync { state scannedBlocks totalBlocks lastBlock } } }"
    body = await gql(client, auth(subject), query)
    assert body["data"]["wallets"][0]["sync"] == {  # type: ignore[index]
        "state": "pending",
        "scannedBlocks": 0,
        "totalBlocks": 0,
        "lastBlock": None,
    }
    scanning = WalletSync(uuid.UUID(wallet_id), SyncState.SCANNING, 100, 40_099, 40_000, 1_000_000)
    async with engine.begin() as db:
        await token_store.save_sync(db, [scanning])
    await app.state.services.cache.invalidate([user_id_for(subject)])  # as the worker does
    body = await gql(client, auth(subject), query)
    assert body["data"]["wallets"][0]["sync"] == {  # type: ignore[index]
        "state": "scanning",
        "scannedBlocks": 40_000,
        "totalBlocks": 1_000_000,
        "lastBlock": 40_099,
    }


async def test_set_token_visibility_is_stored_per_user_and_checks_its_input(
    client: httpx.AsyncClient, auth: Auth, engine: AsyncEngine
) -> None:
    subject = f"hide-{uuid.uuid4().hex[:6]}"
    mutation = """mutation($c: Int!, $a: String!, $h: Boolean!) {
        setTokenVisibility(chainId: $c, contract: $a, hidden: $h) { chainId contract hidden } }"""
    body = await gql(client, auth(subject), mutation, {"c": 1, "a": USDC.lower(), "h": True})
    assert body["data"]["setTokenVisibility"] == {  # type: ignore[index]
        "chainId": 1,
        "contract": USDC,
        "hidden": True,
    }
    async with engine.connect() as db:
        choices = await token_store.visibility(db, user_ids=[user_id_for(subject)])
    assert choices == {user_id_for(subject): {(1, USDC): True}}

    bad_chain = await gql(client, auth(subject), mutation, {"c": 999, "a": USDC, "h": True})
    assert bad_chain["errors"][0]["extensions"]["code"] == "UNKNOWN_CHAIN"  # type: ignore[index]
    bad_address = await gql(client, auth(subject), mutation, {"c": 1, "a": "0x12", "h": True})
    assert bad_address["errors"][0]["extensions"]["code"] == "INVALID_ADDRESS"  # type: ignore[index]
    body = await gql(client, auth(subject), "{ excludedTokens { contract reason } }")
    assert body["data"]["excludedTokens"] == []  # type: ignore[index]  # nothing held yet
