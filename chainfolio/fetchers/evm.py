"""Balances of many wallets on one EVM chain, read in a few Multicall3 batches at one block.

Why this is long: one `EvmChainReader` plans, batches and decodes every kind of holding of a
chain at one block, and the plan's call indices tie those steps together; DEX positions are
read beside it (`position_reader`).

Per wallet: the native coin (Multicall3 `getEthBalance`), every tracked token (`balanceOf`),
every ERC-4626 vault (`balanceOf` shares, then `convertToAssets`) and every lending market
position (supplied and borrowed). A call that fails yields a Holding with `amount=None` and
the reason in `error` — never a zero.

Beyond the configured tokens, a reader checks *sparse* tokens in the same batches: the chain's
listed tokens (token lists, for every wallet) and each wallet's discovered tokens. Only
non-zero balances of those become holdings; a listed token whose call fails is left out (no
code there, nothing held), a discovered one is kept with its error — the wallet received it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from chainfolio.core.domain import NATIVE, AssetKind, Category, ChecksumAddress, Holding
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.config import ChainConfig, LendingMarketConfig, TokenConfig, VaultConfig
from chainfolio.fetchers.multicall import (
    BALANCE_OF,
    CONVERT_TO_ASSETS,
    DECIMALS,
    GET_ETH_BALANCE,
    Call,
    CallResult,
    ChunkSize,
    MalformedResult,
    aggregate,
    decode_uint,
    selector,
    with_address,
    with_addresses,
    with_uint,
)
from chainfolio.fetchers.position_reader import PositionReader
from chainfolio.fetchers.rpc import RpcClient, RpcConnection


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChainRead:
    """Holdings of several wallets on one chain, all observed at `block_number`."""

    chain_id: int
    block_number: int
    observed_at: datetime
    holdings: dict[str, list[Holding]]
    rpc_url: str


class ChainReader(Protocol):
    """Reads wallets' holdings on one chain (the EVM implementation is `EvmChainReader`)."""

    chain: ChainConfig

    async def read(self, wallets: Sequence[str]) -> ChainRead:
        """Holdings of `wallets` at one block; raises ChainUnavailable when no URL works."""
        ...


@dataclass(slots=True)
class _Slot:
    """One holding to produce: which wallet, what, and where its call result sits."""

    wallet: ChecksumAddress
    asset: TokenConfig | VaultConfig | LendingMarketConfig | None
    call: int
    category: Category
    token: TokenConfig | None = None
    extra: dict[str, str] = field(default_factory=dict)
    sparse: bool = False
    """A listed or discovered token: kept only when its balance is non-zero (or unknown)."""
    listed: bool = False


class EvmChainReader:
    """The one EVM reader: every chain is this class plus a ChainConfig."""

    def __init__(
        self,
        chain: ChainConfig,
        rpc: RpcClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        listed: Sequence[TokenConfig] = (),
    ) -> None:
        self.chain = chain
        self.rpc = rpc
        self._clock = clock
        configured = {t.address for t in chain.tokens}
        self.listed = [t for t in listed if t.address not in configured]
        # ERC-721 balances are counts: no decimals() to ask for.
        self._decimals: dict[str, int] = {}
        for token in (*chain.tokens, *self.listed):
            if token.kind is AssetKind.ERC721:
                self._decimals[token.address] = 0
            elif token.decimals is not None:
                self._decimals[token.address] = token.decimals
        self.chunk_size = ChunkSize(chain.rpc.chunk_size)
        self.positions = PositionReader(chain)

    async def read(
        self,
        wallets: Sequence[str],
        *,
        block: int | None = None,
        discovered: Mapping[str, Sequence[TokenConfig]] | None = None,
    ) -> ChainRead:
        """Holdings of `wallets` at one block (the latest unless `block` is given), with each
        wallet's `discovered` tokens (non-zero balances only).

        Raises ChainUnavailable when no URL works. A historic `block` needs a node that serves
        that state (an archive node, or Hardhat); others answer with a missing-block error.
        """
        owners = list(dict.fromkeys(parse_address(w) for w in wallets))
        known = self.known_contracts()
        extra = {
            parse_address(w): [t for t in tokens if t.address not in known]
            for w, tokens in (discovered or {}).items()
        }

        async def work(connection: RpcConnection) -> ChainRead:
            return await self._read_on(connection, owners, block, extra)

        return await self.rpc.run(work)

    def known_contracts(self) -> set[str]:
        """Contracts this reader reads anyway: configured tokens, vaults and markets, listed
        tokens. Discovery leaves them out (a mint of vault shares is not a new token)."""
        known = {t.address for t in (*self.chain.tokens, *self.listed)}
        known.update(v.address for v in self.chain.vaults)
        known.update(m.address for m in self.chain.lending)
        return known

    async def call_at_latest(self, calls: Sequence[Call]) -> tuple[int, list[CallResult]]:
        """Run arbitrary read calls through Multicall3 at the latest block (prices use it)."""

        async def work(connection: RpcConnection) -> tuple[int, list[CallResult]]:
            block = await connection.block_number()
            return block, await self._aggregate(connection, calls, block)

        return await self.rpc.run(work)

    async def _aggregate(
        self, connection: RpcConnection, calls: Sequence[Call], block: int
    ) -> list[CallResult]:
        return await aggregate(
            connection,
            calls,
            multicall3=self.chain.multicall3,
            block=block,
            settings=self.chain.rpc,
            chunk_size=self.chunk_size,
        )

    async def _read_on(
        self,
        connection: RpcConnection,
        wallets: Sequence[ChecksumAddress],
        at: int | None = None,
        discovered: Mapping[ChecksumAddress, Sequence[TokenConfig]] | None = None,
    ) -> ChainRead:
        block = await connection.block_number() if at is None else at
        observed_at = self._clock()
        calls: list[Call] = []
        extra = discovered or {}
        for tokens in extra.values():
            for token in tokens:
                if token.decimals is not None:
                    self._decimals.setdefault(token.address, token.decimals)
        in_use = self._tokens_in_use() + [t.address for ts in extra.values() for t in ts]
        decimals_calls = {
            address: self._add(calls, Call(address, DECIMALS))
            for address in dict.fromkeys(in_use)
            if address not in self._decimals
        }
        slots = self._plan(calls, wallets, extra)
        position_plan = self.positions.plan(calls, wallets) if self.positions.enabled else None
        results = await self._aggregate(connection, calls, block)

        decimals_errors = self._learn_decimals(decimals_calls, results)

        async def more(more_calls: Sequence[Call]) -> list[CallResult]:
            return await self._aggregate(connection, more_calls, block)

        # Vault conversions and the position rounds both follow round one: side by side.
        vault_assets, positions = await asyncio.gather(
            self._vault_assets(connection, slots, results, block),
            self.positions.read(
                position_plan,
                results,
                more,
                decimals=self._decimals,
                block=block,
                observed_at=observed_at,
            )
            if position_plan is not None
            else _no_positions(),
        )
        holdings: dict[str, list[Holding]] = {w: [] for w in wallets}
        for slot in slots:
            holding = self._holding(
                slot,
                result=results[slot.call],
                vault_assets=vault_assets,
                decimals_errors=decimals_errors,
                block=block,
                observed_at=observed_at,
            )
            if slot.sparse and _not_held(holding, results[slot.call], listed=slot.listed):
                continue
            holdings[slot.wallet].append(holding)
        for wallet, position_holdings in positions.items():
            holdings[wallet].extend(position_holdings)
        return ChainRead(self.chain.chain_id, block, observed_at, holdings, connection.url)

    def unread(self, wallet: str, error: str) -> Holding:
        """The native coin of a wallet whose chain could not be read: amount unknown, why."""
        chain = self.chain
        return Holding(
            chain_id=chain.chain_id,
            wallet=parse_address(wallet),
            symbol=chain.native_symbol,
            contract=NATIVE,
            kind=AssetKind.NATIVE,
            category=Category.WALLET,
            decimals=chain.native_decimals,
            amount=None,
            error=error,
            stale=True,
            extra={"price_symbol": chain.native_price_key},
        )

    def _readable_tokens(self) -> list[TokenConfig]:
        return [t for t in self.chain.tokens if not t.spam]

    def _tokens_in_use(self) -> list[str]:
        """Addresses of every token whose decimals a holding needs, in config order."""
        used = [t.address for t in self._readable_tokens()]
        used += [self.chain.token(v.underlying).address for v in self.chain.vaults]
        for market in self.chain.lending:
            used += [self.chain.token(r).address for r in (*market.supplied, *market.borrowed)]
        return list(dict.fromkeys(used))

    @staticmethod
    def _add(calls: list[Call], call: Call) -> int:
        calls.append(call)
        return len(calls) - 1

    def _plan(
        self,
        calls: list[Call],
        wallets: Sequence[ChecksumAddress],
        discovered: Mapping[ChecksumAddress, Sequence[TokenConfig]],
    ) -> list[_Slot]:
        multicall3 = self.chain.multicall3
        slots: list[_Slot] = []
        for wallet in wallets:
            slots.append(
                _Slot(
                    wallet,
                    None,
                    self._add(calls, Call(multicall3, with_address(GET_ETH_BALANCE, wallet))),
                    Category.WALLET,
                )
            )
            for token in self._readable_tokens():
                call = self._add(calls, Call(token.address, with_address(BALANCE_OF, wallet)))
                slots.append(_Slot(wallet, token, call, token.effective_category, token))
            for listed, sparse in ((True, self.listed), (False, discovered.get(wallet, ()))):
                for token in sparse:
                    call = self._add(calls, Call(token.address, with_address(BALANCE_OF, wallet)))
                    category = token.effective_category
                    slots.append(
                        _Slot(wallet, token, call, category, token, sparse=True, listed=listed)
                    )
            for vault in self.chain.vaults:
                call = self._add(calls, Call(vault.address, with_address(BALANCE_OF, wallet)))
                slots.append(
                    _Slot(wallet, vault, call, vault.category, self.chain.token(vault.underlying))
                )
            for market in self.chain.lending:
                for refs, function, category in (
                    (market.supplied, market.supply_function, Category.DEPOSIT),
                    (market.borrowed, market.borrow_function, Category.LOAN),
                ):
                    for ref in refs:
                        token = self.chain.token(ref)
                        data = _lending_calldata(function, wallet, token.address)
                        call = self._add(calls, Call(market.address, data))
                        slots.append(
                            _Slot(wallet, market, call, category, token, {"market": market.name})
                        )
        return slots

    def _learn_decimals(
        self, decimals_calls: dict[str, int], results: Sequence[CallResult]
    ) -> dict[str, str]:
        errors: dict[str, str] = {}
        for address, call in decimals_calls.items():
            try:
                value = decode_uint(results[call])
            except MalformedResult as exc:
                errors[address] = f"decimals() failed: {exc}"
                continue
            if value > 255:
                errors[address] = f"decimals() returned {value}"
                continue
            self._decimals[address] = value
        return errors

    async def _vault_assets(
        self,
        connection: RpcConnection,
        slots: Sequence[_Slot],
        results: Sequence[CallResult],
        block: int,
    ) -> dict[int, CallResult]:
        """Second pass at the same block: convertToAssets(shares) of each non-zero vault balance."""
        wanted: dict[int, Call] = {}
        for slot in slots:
            if isinstance(slot.asset, VaultConfig):
                try:
                    shares = decode_uint(results[slot.call])
                except MalformedResult:
                    continue
                if shares:
                    wanted[slot.call] = Call(
                        slot.asset.address, with_uint(CONVERT_TO_ASSETS, shares)
                    )
        if not wanted:
            return {}
        converted = await self._aggregate(connection, list(wanted.values()), block)
        return dict(zip(wanted, converted, strict=True))

    def _holding(
        self,
        slot: _Slot,
        *,
        result: CallResult,
        vault_assets: dict[int, CallResult],
        decimals_errors: dict[str, str],
        block: int,
        observed_at: datetime,
    ) -> Holding:
        chain = self.chain
        token = slot.token
        asset = slot.asset
        amount: int | None
        error: str | None = None
        extra = dict(slot.extra)
        try:
            amount = decode_uint(result)
        except MalformedResult as exc:
            amount, error = None, str(exc)
        if isinstance(asset, VaultConfig):
            extra["shares"] = "" if amount is None else str(amount)
            if amount:
                try:
                    amount = decode_uint(vault_assets[slot.call])
                except MalformedResult as exc:
                    amount, error = None, f"convertToAssets failed: {exc}"
        decimals = chain.native_decimals if token is None else self._decimals.get(token.address)
        if token is not None and decimals is None:
            amount = None
            error = error or decimals_errors.get(token.address, "decimals unknown")
        if token is None:
            symbol, contract, kind = chain.native_symbol, NATIVE, AssetKind.NATIVE
            extra["price_symbol"] = chain.native_price_key
        else:
            extra["price_symbol"] = token.price_key
            if isinstance(asset, TokenConfig):
                symbol, contract, kind = token.symbol, token.address, token.kind
            else:
                assert asset is not None
                symbol = asset.symbol if isinstance(asset, VaultConfig) else token.symbol
                contract, kind = asset.address, AssetKind.POSITION
                extra["underlying"] = token.symbol
                extra["underlying_contract"] = token.address
        return Holding(
            chain_id=chain.chain_id,
            wallet=slot.wallet,
            symbol=symbol,
            contract=contract,
            kind=kind,
            category=slot.category,
            decimals=decimals if decimals is not None else 0,
            amount=amount,
            block_number=block,
            error=error,
            observed_at=observed_at,
            extra=extra,
        )


async def _no_positions() -> dict[ChecksumAddress, list[Holding]]:
    return {}


def _not_held(holding: Holding, result: CallResult, *, listed: bool) -> bool:
    """A listed or discovered token the wallet does not hold: a zero balance, or no contract
    there (empty answer: a list naming another chain's address, a creation a reorg undid). A
    listed token whose call fails is left out too; a discovered one is kept, unknown."""
    if holding.amount == 0 or (result.success and not result.data):
        return True
    return listed and holding.amount is None


def _lending_calldata(function: str, wallet: str, asset: str) -> bytes:
    """`fn(account)` or `fn(account, asset)` calldata for a lending market view."""
    if function.endswith("(address)"):
        return with_address(selector(function), wallet)
    return with_addresses(selector(function), wallet, asset)
