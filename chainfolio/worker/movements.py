"""A transfer of a tracked wallet as P&L's asset movement and as a cash flow: its kind
(external, own, wrap, position), symbol, decimals and USD value at the refresh's prices; and
the opening movements of a wallet seen for the first time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from chainfolio.core.domain import NATIVE, Category, Price
from chainfolio.fetchers.config import ChainConfig, TokenConfig
from chainfolio.fetchers.portfolio import ChainHoldings
from chainfolio.fetchers.transfers import Transfer
from chainfolio.storage import flows as stored_flows
from chainfolio.storage.accounts import Wallet
from chainfolio.storage.movements import AssetMovement


def movement_kind(
    transfer: Transfer, counterparty: str, own: set[str], positions: set[str], wrappers: set[str]
) -> str:
    """Whether a transfer is external, between the user's wallets (own), with a vault or lending
    market (position), or native value paid into a tracked token (wrap)."""
    if counterparty in own:
        return "own"
    if counterparty in positions:
        return "position"
    if transfer.contract == NATIVE and counterparty in wrappers:
        return "wrap"
    return "external"


class FlowValuation:
    """Symbol, decimals and USD value of a transfer, from the refresh's own read."""

    def __init__(
        self, chain: ChainConfig, read: ChainHoldings, tokens: Sequence[TokenConfig]
    ) -> None:
        self._chain = chain
        self._tokens = {t.address: t for t in tokens}
        self._decimals: dict[str, int] = {}
        self._prices: dict[str, Price] = {}
        for held in read.holdings.values():
            for h in held:
                self._decimals.setdefault(h.contract, h.decimals)
                if h.price is not None:
                    self._prices.setdefault(h.extra.get("price_symbol", h.symbol), h.price)

    def _token(self, contract: str) -> tuple[str, int, str]:
        """Symbol, decimals and price key of a transferred token (or the native coin)."""
        chain = self._chain
        if contract == NATIVE:
            return chain.native_symbol, chain.native_decimals, chain.native_price_key
        token = self._tokens[contract]
        return token.symbol, self._decimals.get(contract, token.decimals or 0), token.price_key

    def flow(
        self, wallet: Wallet, transfer: Transfer, sign: int, moment: datetime
    ) -> tuple[stored_flows.CashFlow, tuple[str, datetime, Decimal]]:
        """The flow `transfer` is for `wallet` (sign +1 in, -1 out), valued at this refresh's
        price; and what re-valuing it at another price needs (price key, block time, units)."""
        symbol, decimals, key = self._token(transfer.contract)
        price = self._prices.get(key)
        amount = sign * transfer.amount
        units = Decimal(amount).scaleb(-decimals)
        value = None if price is None else units * price.usd
        flow = stored_flows.CashFlow(
            user_id=wallet.user_id,
            chain_id=transfer.chain_id,
            time=moment,
            symbol=symbol,
            contract=transfer.contract,
            amount=amount,
            decimals=decimals,
            value_usd=value,
            tx_hash=transfer.tx_hash,
            log_index=transfer.log_index,
            wallet_id=wallet.id,
            block_number=transfer.block_number,
        )
        return flow, (key, transfer.block_time, units)

    def movement(
        self, wallet: Wallet, transfer: Transfer, sign: int, kind: str, counterparty: str
    ) -> tuple[AssetMovement, tuple[str, datetime, Decimal]]:
        """The movement `transfer` is for `wallet`, dated by its block and valued at this
        refresh's price; and what re-valuing it at another price needs."""
        symbol, decimals, key = self._token(transfer.contract)
        price = self._prices.get(key)
        units = Decimal(transfer.amount).scaleb(-decimals)
        move = AssetMovement(
            user_id=wallet.user_id,
            wallet_id=wallet.id,
            chain_id=transfer.chain_id,
            block_number=transfer.block_number,
            time=transfer.block_time,
            tx_hash=transfer.tx_hash,
            log_index=transfer.log_index,
            contract=transfer.contract,
            symbol=symbol,
            asset=key,
            decimals=decimals,
            amount=sign * transfer.amount,
            price_usd=None if price is None else price.usd,
            value_usd=None if price is None else units * price.usd,
            kind=kind,
            counterparty=counterparty or None,
        )
        return move, (key, transfer.block_time, units)


def opening_movements(
    wallet: Wallet, read: ChainHoldings, block: int, now: datetime
) -> list[AssetMovement]:
    """What a wallet seen for the first time holds (loans aside), acquired now at this
    refresh's prices: the start of its cost-basis history."""
    movements = []
    for i, h in enumerate(read.holdings.get(wallet.address, [])):
        if not h.amount or h.category is Category.LOAN:
            continue
        value = None if h.price is None or h.balance is None else h.balance * h.price.usd
        movements.append(
            AssetMovement(
                user_id=wallet.user_id,
                wallet_id=wallet.id,
                chain_id=wallet.chain_id,
                block_number=block,
                time=now,
                tx_hash=None,
                log_index=i,  # one row per holding (a market's supply and loan share a contract)
                contract=h.contract,
                symbol=h.symbol,
                asset=h.extra.get("price_symbol", h.symbol),
                decimals=h.decimals,
                amount=h.amount,
                price_usd=None if h.price is None else h.price.usd,
                value_usd=value,
                kind="opening",
            )
        )
    return movements
