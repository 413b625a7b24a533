"""Token discovery through the worker on Hardhat and PostgreSQL: a wallet holding 30 listed
and 5 unlisted tokens (plus spam) is found completely; spam is flagged and kept out of totals;
a user hides and un-hides a token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.bus.broadcast import Bus
from chainfolio.core.domain import Holding
from chainfolio.devnet import Devnet, DevnetDeployment, mint_token
from chainfolio.fetchers.config import TokenListsConfig
from chainfolio.fetchers.devnet_config import config_from_devnet
from chainfolio.fetchers.portfolio import open_chains
from chainfolio.resolvers.portfolio import summarize_holdings
from chainfolio.storage import tokens as token_store
from chainfolio.storage.accounts import add_wallet, ensure_user
from chainfolio.storage.holdings import current_holdings
from chainfolio.storage.tokens import ExcludedToken, SyncState
from chainfolio.worker.cycle import Worker
from tests.fetchers.direct import DirectRpc
from tests.fetchers.test_tokenlists import token_list
from tests.fetchers.tokens import OPENZEPPELIN, deploy_token, fresh_wallet, mint, token_call

pytestmark = pytest.mark.chain


def _clock() -> datetime:
    return datetime(2026, 11, 27, 10, 30, tzinfo=UTC)


def _erc20(deployment: DevnetDeployment, name: str, symbol: str) -> str:
    """An OpenZeppelin ERC-20 (18 decimals, the deployer mints)."""
    return deploy_token(deployment, OPENZEPPELIN, name, symbol)


async def _holdings(engine: AsyncEngine, user_id: uuid.UUID) -> dict[str, Holding]:
    async with engine.connect() as db:
        return {s.holding.contract: s.holding for s in await current_holdings(db, user_id=user_id)}


async def _excluded(engine: AsyncEngine, user_id: uuid.UUID) -> dict[str, ExcludedToken]:
    async with engine.connect() as db:
        return {e.contract: e for e in await token_store.excluded_tokens(db, user_id=user_id)}


async def _total(engine: AsyncEngine, user_id: uuid.UUID) -> Decimal:
    async with engine.connect() as db:
        return summarize_holdings(await current_holdings(db, user_id=user_id))[0]


def _exact(
    deployment: DevnetDeployment, wallet: str, held: dict[str, Holding], tokens: Sequence[str]
) -> None:
    with DirectRpc(deployment.rpc_url) as direct:
        for token in tokens:
            holding = held[token]
            onchain = direct.call_uint(
                token, "balanceOf(address)", ["address"], [wallet], holding.block_number or 0
            )
            assert holding.amount == onchain != 0, holding


async def test_listed_and_unlisted_tokens_are_found_spam_excluded_and_hiding_works(
    engine: AsyncEngine, restore_devnet: Devnet, tmp_path: Path
) -> None:
    deployment = restore_devnet.chain(1)
    wallet = fresh_wallet(30)
    listed = [_erc20(deployment, f"Listed {i}", f"WL{i:02d}") for i in range(30)]
    for i, token in enumerate(listed):
        mint(deployment, OPENZEPPELIN, token, wallet, 10**6 * (i + 1) + i)
    entries = [
        {"chainId": 1, "address": a, "symbol": f"WL{i:02d}", "name": "x", "decimals": 18}
        for i, a in enumerate(listed)
    ]
    list_file = tmp_path / "wallet.tokenlist.json"
    list_file.write_text(json.dumps(token_list(entries)))
    unlisted = [_erc20(deployment, f"Unlisted {i}", f"UL{i}") for i in range(5)]
    for i, token in enumerate(unlisted[:4]):  # sent by transfers, not minted to the wallet
        mint(deployment, OPENZEPPELIN, token, deployment.deployer, 10**15 + i)
        token_call(deployment, OPENZEPPELIN, token, "transfer", wallet, 10**15 + i)
    lure = _erc20(deployment, "Visit claim-usdt.xyz to claim", "CLAIM")
    mint(deployment, OPENZEPPELIN, lure, wallet, 10**18)
    # Sprayed in one transaction (the devnet token's mintBatch: OpenZeppelin has none).
    sprayed = deploy_token(deployment, "MintableERC20", "Totally Real", "REAL", 18)
    others = [to_checksum_address(f"0x{i:040x}") for i in range(1, 120)]
    token_call(deployment, "MintableERC20", sprayed, "mintBatch", [wallet, *others], [5] * 120)
    mint_token(deployment, symbol="USDC", to=wallet, amount=250 * 10**6)

    config = config_from_devnet([deployment]).model_copy(
        update={"token_lists": TokenListsConfig(shipped=False, sources=[str(list_file)])}
    )
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"discovery-{uuid.uuid4().hex[:6]}")
        wallet_row = await add_wallet(
            db, user_id=user_id, chain_id=1, address=wallet, label=None, max_wallets=10
        )
    async with open_chains(config) as chains, Bus("memory://") as bus:
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=_clock, chain_names=names)
        await worker.refresh()
        held = await _holdings(engine, user_id)
        # Everything: the 30 listed, the 4 unlisted received so far, both spam tokens, USDC.
        assert set(listed) | set(unlisted[:4]) | {lure, sprayed} <= set(held)
        assert unlisted[4] not in held
        _exact(deployment, wallet, held, [*listed, *unlisted[:4]])
        async with engine.connect() as db:
            sync = (await token_store.sync_states(db, wallet_ids=[wallet_row.id]))[wallet_row.id]
            excluded = {
                e.contract: e for e in await token_store.excluded_tokens(db, user_id=user_id)
            }
        assert sync.state is SyncState.SYNCED
        assert sync.scanned_blocks == sync.total_blocks > 0
        assert "lure" in excluded[lure].reason
        assert "mass airdrop" in excluded[sprayed].reason
        assert held[lure].price is None
        assert held[sprayed].price is None
        assert "unpriced" in excluded[unlisted[0]].reason

        # A live transfer of the fifth unlisted token: found by the next cycle's scan.
        token_call(deployment, OPENZEPPELIN, unlisted[4], "mint", deployment.deployer, 77)
        token_call(deployment, OPENZEPPELIN, unlisted[4], "transfer", wallet, 77)
        await worker.refresh()
        held = await _holdings(engine, user_id)
        assert held[unlisted[4]].amount == 77

        # Hiding a priced token takes it out of the total; un-hiding brings it back.
        usdc = deployment.tokens["USDC"].address
        total_before = await _total(engine, user_id)
        assert held[usdc].value_usd is not None
        assert held[usdc].value_usd > 0
        async with engine.begin() as db:
            await token_store.set_visibility(
                db, user_id=user_id, chain_id=1, contract=usdc, hidden=True
            )
        await worker.refresh()
        async with engine.connect() as db:
            stored = await current_holdings(db, user_id=user_id)
            excluded = {
                e.contract: e for e in await token_store.excluded_tokens(db, user_id=user_id)
            }
        hidden_total = summarize_holdings(stored)[0]
        assert total_before - hidden_total == held[usdc].value_usd
        assert excluded[usdc].reason == "hidden by you"
        async with engine.begin() as db:
            await token_store.set_visibility(
                db, user_id=user_id, chain_id=1, contract=usdc, hidden=False
            )
        await worker.refresh()
        async with engine.connect() as db:
            assert (
                summarize_holdings(await current_holdings(db, user_id=user_id))[0] == total_before
            )


async def test_a_scan_past_the_head_is_redone_from_just_below_it(
    engine: AsyncEngine, restore_devnet: Devnet
) -> None:
    deployment = restore_devnet.chain(1)
    wallet = fresh_wallet(31)
    async with engine.begin() as db:
        user_id = await ensure_user(db, subject=f"reorg-{uuid.uuid4().hex[:6]}")
        row = await add_wallet(
            db, user_id=user_id, chain_id=1, address=wallet, label=None, max_wallets=10
        )
    async with open_chains(config_from_devnet([deployment])) as chains, Bus("memory://") as bus:
        names = {c.chain_id: c.name for c in chains.config.chains}
        worker = Worker(engine=engine, bus=bus, chains=chains, clock=_clock, chain_names=names)
        await worker.refresh()
        async with engine.begin() as db:  # as if a longer fork had been scanned, then dropped
            sync = (await token_store.sync_states(db, wallet_ids=[row.id]))[row.id]
            await token_store.save_sync(db, [replace(sync, last_block=sync.last_block + 1_000)])
        token = _erc20(deployment, "After the reorg", "AFTR")
        mint(deployment, OPENZEPPELIN, token, wallet, 42)
        await worker.refresh()
        held = await _holdings(engine, user_id)
    assert held[token].amount == 42
