"""Token discovery in the refresh cycle: scan, inspect, read, and keep spam out of totals.

Before each read, every wallet's `Transfer` logs since its last discovery block are scanned
(`fetchers.discovery`); a wallet seen for the first time gets an initial scan over the
configured number of blocks back from the head, its progress stored as it goes (`wallet.sync`
in the API). New candidate contracts are inspected once (metadata and spam signals) and stored;
every candidate of a wallet is then read with its holdings. The Uniswap pools the price source
found for any token are stored too, and handed back to it after a restart. After the read,
holdings of tokens
the user hid, or of spam tokens the user did not un-hide, lose their price: they stay listed
(with the reason, `storage.tokens.excluded_tokens`) but count in no total.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncEngine

from chainfolio.core.cache import AnswerCache, NoCache
from chainfolio.core.domain import ChecksumAddress, Holding
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.config import DiscoveryConfig, TokenConfig
from chainfolio.fetchers.discovery import Candidate, discover_tokens
from chainfolio.fetchers.metadata import TokenMetadata, as_token
from chainfolio.fetchers.portfolio import ChainSet
from chainfolio.fetchers.prices import KnownPools, address_key
from chainfolio.fetchers.spam import AIRDROP_RECIPIENTS, inspect_tokens
from chainfolio.storage import pools as pool_store
from chainfolio.storage import tokens as token_store
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.pools import TokenPools as StoredPools
from chainfolio.storage.tokens import StoredToken, SyncState, WalletSync, WalletToken

log = logging.getLogger(__name__)

REORG_DEPTH = 12
"""Blocks below the head scanned again when a wallet's scan had gone past the head."""

EXCLUDED = "excluded"
"""Holding.extra key: why a holding counts in no total (hidden or spam)."""


@dataclass(slots=True)
class DiscoveryPlan:
    """What a cycle reads beyond the configured tokens, and what it keeps out of totals."""

    tokens: dict[tuple[int, str], list[TokenConfig]] = field(default_factory=dict)
    """(chain id, wallet) -> its discovered tokens."""
    excluded: dict[uuid.UUID, dict[tuple[int, str], str]] = field(default_factory=dict)
    """User -> (chain id, contract) -> reason."""

    def visible(self, wallet: Wallet, holdings: Sequence[Holding]) -> list[Holding]:
        """The holdings with hidden and spam ones stripped of their price (so of any total)."""
        excluded = self.excluded.get(wallet.user_id, {})
        if not excluded:
            return list(holdings)
        return [
            replace(h, price=None, extra={**h.extra, EXCLUDED: excluded[(h.chain_id, h.contract)]})
            if (h.chain_id, h.contract) in excluded
            else h
            for h in holdings
        ]


class TokenDiscovery:
    """Runs discovery for a cycle's wallets (chains concurrently)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        chains: ChainSet,
        cache: AnswerCache | None = None,
        airdrop_threshold: int = AIRDROP_RECIPIENTS,
    ) -> None:
        self._engine = engine
        self._chains = chains
        self._cache = cache or NoCache()
        self.config: DiscoveryConfig = chains.config.discovery
        self.airdrop_threshold = airdrop_threshold
        self._pools_loaded: set[int] = set()

    async def plan(self, wallets: Sequence[Wallet]) -> DiscoveryPlan:
        """Scan the wallets' new blocks, then what to read and exclude this cycle."""
        await self._keep_pools({w.chain_id for w in wallets})
        if self.config.enabled and wallets:
            by_chain: dict[int, list[Wallet]] = defaultdict(list)
            for wallet in wallets:
                by_chain[wallet.chain_id].append(wallet)
            outcomes = await asyncio.gather(
                *(self._scan_chain(c, ws) for c, ws in by_chain.items()), return_exceptions=True
            )
            for chain_id, outcome in zip(by_chain, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    # The blocks stay unscanned (the sync's last block did not move): next cycle.
                    log.warning("token discovery on chain %d failed: %s", chain_id, outcome)
        return await self._load(wallets)

    async def _keep_pools(self, chain_ids: set[int]) -> None:
        """Store the pools the price source found since the last cycle; hand it those stored
        for chains it has not seen in this process (a restart asks no factory again)."""
        source = self._chains.uniswap
        if source is None:
            return
        found = [StoredPools(k.chain_id, k.token, k.pools, k.asked_at) for k in source.take_found()]
        new_chains = chain_ids - self._pools_loaded
        if not found and not new_chains:
            return
        async with self._engine.begin() as db:
            await pool_store.save_token_pools(db, found)
            stored = await pool_store.token_pools(db, chain_ids=new_chains) if new_chains else []
        source.remember(KnownPools(s.chain_id, s.token, s.pools, s.checked_at) for s in stored)
        self._pools_loaded |= new_chains

    async def _load(self, wallets: Sequence[Wallet]) -> DiscoveryPlan:
        plan = DiscoveryPlan()
        users = {w.user_id for w in wallets}
        async with self._engine.connect() as db:
            found = await token_store.wallet_tokens(db, wallet_ids=[w.id for w in wallets])
            choices = await token_store.visibility(db, user_ids=users)
            keys = {(w.chain_id, t.contract) for w in wallets for t, _ in found.get(w.id, [])}
            spam = await token_store.spam_tokens(db, keys=keys)
        for wallet in wallets:
            plan.tokens[(wallet.chain_id, wallet.address)] = [
                _as_token(meta) for _, meta in found.get(wallet.id, []) if meta is not None
            ]
        for user_id in users:
            chosen = choices.get(user_id, {})
            excluded = {key: f"spam: {why}" for key, why in spam.items() if key not in chosen}
            excluded |= {key: "hidden by you" for key, hidden in chosen.items() if hidden}
            plan.excluded[user_id] = excluded
        return plan

    async def _scan_chain(self, chain_id: int, wallets: Sequence[Wallet]) -> None:
        reader = self._chains.readers[chain_id]
        head = int(await reader.rpc.call("eth_blockNumber", []), 16)
        async with self._engine.connect() as db:
            syncs = await token_store.sync_states(db, wallet_ids=[w.id for w in wallets])
        # Wallets whose scans start at the same block share one scan (usually: all of them).
        groups: dict[tuple[int, int], list[Wallet]] = defaultdict(list)
        for wallet in wallets:
            sync = syncs.get(wallet.id)
            if sync is None or sync.state is not SyncState.SYNCED or head <= sync.first_block:
                start = max(0, head - self.config.initial_blocks + 1)
                groups[(start, start)].append(wallet)
            elif sync.last_block < head:
                groups[(sync.last_block + 1, sync.first_block)].append(wallet)
            elif sync.last_block > head:  # the chain went back (reorg, restart): redo the top
                start = max(sync.first_block + 1, head - REORG_DEPTH)
                groups[(start, sync.first_block)].append(wallet)
        for (start, first), members in groups.items():
            await self._scan_group(chain_id, members, start, first, head)

    async def _scan_group(
        self, chain_id: int, wallets: Sequence[Wallet], start: int, first: int, head: int
    ) -> None:
        reader = self._chains.readers[chain_id]
        initial = start == first

        async def progress(scanned: int, total: int) -> None:
            if not initial:  # a cycle's few new blocks: no progress to show
                return
            log.info(
                "token discovery on chain %d: %d of %d blocks scanned for %d new wallet(s)",
                chain_id,
                scanned,
                total,
                len(wallets),
            )
            rows = [
                WalletSync(w.id, SyncState.SCANNING, first, start - 1 + scanned, scanned, total)
                for w in wallets
            ]
            async with self._engine.begin() as db:
                await token_store.save_sync(db, rows)
            # Cached answers would hide the progress until the cycle ends.
            await self._cache.invalidate({w.user_id for w in wallets})

        try:
            scan = await discover_tokens(
                reader.rpc,
                wallets=[w.address for w in wallets],
                first_block=start,
                last_block=head,
                max_range=self.config.max_range_blocks,
                on_progress=progress,
            )
        except Exception as exc:
            if initial:
                total = head - start + 1
                rows = [
                    WalletSync(w.id, SyncState.FAILED, first, start - 1, 0, total, str(exc))
                    for w in wallets
                ]
                async with self._engine.begin() as db:
                    await token_store.save_sync(db, rows)
            raise
        by_address = {parse_address(w.address): w for w in wallets}
        known = reader.known_contracts()
        candidates = [c for c in scan.candidates if c.contract not in known]
        await self._inspect(chain_id, candidates)
        total = head - first + 1
        async with self._engine.begin() as db:
            await token_store.add_wallet_tokens(
                db,
                [
                    WalletToken(
                        by_address[c.wallet].id, chain_id, c.contract, c.first_block, c.tx_hash
                    )
                    for c in candidates
                ],
            )
            await token_store.save_sync(
                db, [WalletSync(w.id, SyncState.SYNCED, first, head, total, total) for w in wallets]
            )

    async def _inspect(self, chain_id: int, candidates: Sequence[Candidate]) -> None:
        """Metadata and spam verdict of contracts not seen before, stored once."""
        if not candidates:
            return
        async with self._engine.connect() as db:
            known = await token_store.known_metadata(
                db, chain_id=chain_id, contracts={c.contract for c in candidates}
            )
        new = [c for c in candidates if c.contract not in known]
        if not new:
            return
        reader = self._chains.readers[chain_id]
        verdicts = await inspect_tokens(reader, new, airdrop_threshold=self.airdrop_threshold)
        async with self._engine.begin() as db:
            await token_store.save_metadata(db, [_stored(m, spam) for m, spam in verdicts])


def _stored(meta: TokenMetadata, spam: str | None) -> StoredToken:
    return StoredToken(
        meta.chain_id, meta.address, meta.symbol, meta.name, meta.decimals, meta.unreadable, spam
    )


def _as_token(stored: StoredToken) -> TokenConfig:
    meta = TokenMetadata(
        stored.chain_id,
        ChecksumAddress(stored.contract),  # stored in its EIP-55 form
        stored.symbol,
        stored.name,
        stored.decimals,
        stored.unreadable,
    )
    return as_token(meta, price_key=address_key(stored.chain_id, stored.contract))
