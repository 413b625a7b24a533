"""Transfers in and out of tracked wallets: ERC-20/ERC-721 `Transfer` logs and native value.

`scan_transfers` reads one chain's block range on one node: `eth_getLogs` filtered by the
tracked token contracts and by the wallets as indexed `from` or `to` topic (block ranges and
wallet lists in bounded chunks; a range the node refuses as too large is halved), plus every
block with full transaction objects for native value sent to or from a wallet (a reverted
transaction moves nothing and is dropped after a receipt check).

Limits, on purpose: internal transactions (native value moved by a contract call, e.g. a
WETH unwrap or a multisig payout) are not seen — that needs trace APIs most nodes do not
serve; gas fees are costs, not transfers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chainfolio.core.domain import NATIVE
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.rpc import (
    EndpointFailure,
    RpcClient,
    RpcConnection,
    RpcError,
    parse_quantity,
)

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
"""keccak256("Transfer(address,address,uint256)"): ERC-20 and ERC-721 share it."""


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """How much one scan asks of a node at once."""

    log_chunk_blocks: int = 2_000
    wallets_per_filter: int = 200
    blocks_per_batch: int = 20
    native: bool = True


@dataclass(frozen=True, slots=True)
class Transfer:
    """Value moved from `sender` to `recipient` in one log (or one transaction for native)."""

    chain_id: int
    block_number: int
    block_time: datetime
    tx_hash: str
    log_index: int
    """-1 for a transaction's native value."""
    contract: str
    """The token contract (EIP-55), or `NATIVE`."""
    sender: str
    recipient: str
    """Lower-case hex addresses ("" for a contract creation's new address)."""
    amount: int
    """Base units; 1 for an ERC-721 token."""


@dataclass(frozen=True, slots=True)
class TransferScan:
    """The transfers of blocks `first_block`…`last_block` (inclusive) that touch the wallets."""

    chain_id: int
    first_block: int
    last_block: int
    transfers: list[Transfer]


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower()[2:]


def _address_of(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def block_hashes(rpc: RpcClient, numbers: Collection[int]) -> dict[int, str | None]:
    """The hash of each block number (None when the node has no such block)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}

    async def work(connection: RpcConnection) -> dict[int, str | None]:
        outcomes = await connection.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in wanted]
        )
        hashes: dict[int, str | None] = {}
        for number, outcome in zip(wanted, outcomes, strict=True):
            if isinstance(outcome, RpcError) or not isinstance(outcome, dict):
                hashes[number] = None
            else:
                hashes[number] = str(outcome.get("hash"))
        return hashes

    return await rpc.run(work)


async def scan_transfers(
    rpc: RpcClient,
    *,
    chain_id: int,
    tokens: Sequence[str],
    wallets: Sequence[str],
    first_block: int,
    last_block: int,
    limits: ScanLimits | None = None,
) -> TransferScan:
    """Transfers of `tokens` (and native value) from or to `wallets` in the inclusive range."""
    opts = limits or ScanLimits()
    owners = sorted({parse_address(w).lower() for w in wallets})
    if not owners or last_block < first_block:
        return TransferScan(chain_id, first_block, last_block, [])

    async def work(connection: RpcConnection) -> TransferScan:
        times: dict[int, datetime] = {}
        transfers: list[Transfer] = []
        if opts.native:
            transfers += await _native(
                connection,
                chain_id=chain_id,
                owners=owners,
                first=first_block,
                last=last_block,
                times=times,
                opts=opts,
            )
        if tokens:
            logs = await _logs(
                connection,
                tokens=tokens,
                owners=owners,
                first=first_block,
                last=last_block,
                opts=opts,
            )
            await _learn_times(connection, {int(log["blockNumber"], 16) for log in logs}, times)
            transfers += [_log_transfer(chain_id, log, times) for log in logs]
        transfers.sort(key=lambda t: (t.block_number, t.log_index, t.tx_hash))
        return TransferScan(chain_id, first_block, last_block, transfers)

    return await rpc.run(work)


async def _native(
    connection: RpcConnection,
    *,
    chain_id: int,
    owners: Sequence[str],
    first: int,
    last: int,
    times: dict[int, datetime],
    opts: ScanLimits,
) -> list[Transfer]:
    tracked = set(owners)
    found: list[Transfer] = []
    for start in range(first, last + 1, opts.blocks_per_batch):
        numbers = range(start, min(start + opts.blocks_per_batch, last + 1))
        blocks = await connection.batch([("eth_getBlockByNumber", [hex(n), True]) for n in numbers])
        for number, block in zip(numbers, blocks, strict=True):
            if isinstance(block, RpcError):
                raise block
            if not isinstance(block, dict):
                raise EndpointFailure(f"{connection.url}: block {number} is missing")
            moment = datetime.fromtimestamp(parse_quantity(block["timestamp"], connection.url), UTC)
            times[number] = moment
            for tx in block.get("transactions") or []:
                value = parse_quantity(tx.get("value", "0x0"), connection.url)
                sender = str(tx.get("from", "")).lower()
                recipient = str(tx.get("to") or "").lower()
                if value and (sender in tracked or recipient in tracked):
                    found.append(
                        Transfer(
                            chain_id,
                            number,
                            moment,
                            str(tx["hash"]),
                            -1,
                            NATIVE,
                            sender,
                            recipient,
                            value,
                        )
                    )
    if not found:
        return found
    receipts = await connection.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in found])
    kept = []
    for transfer, receipt in zip(found, receipts, strict=True):
        if isinstance(receipt, RpcError):
            raise receipt
        status = receipt.get("status") if isinstance(receipt, dict) else None
        if status is None or parse_quantity(status, connection.url) == 1:  # pre-Byzantium: none
            kept.append(transfer)
    return kept


async def _logs(
    connection: RpcConnection,
    *,
    tokens: Sequence[str],
    owners: Sequence[str],
    first: int,
    last: int,
    opts: ScanLimits,
) -> list[dict[str, Any]]:
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    addresses = [parse_address(t) for t in tokens]
    step = opts.log_chunk_blocks
    start = first
    while start <= last:
        end = min(start + step - 1, last)
        try:
            for group in _chunks(owners, opts.wallets_per_filter):
                topics = [_topic(w) for w in group]
                for position in (1, 2):  # as sender, as recipient
                    query: list[Any] = [TRANSFER_TOPIC, None, None]
                    query[position] = topics
                    result = await connection.call(
                        "eth_getLogs",
                        [
                            {
                                "fromBlock": hex(start),
                                "toBlock": hex(end),
                                "address": addresses,
                                "topics": query[: position + 1],
                            }
                        ],
                    )
                    if not isinstance(result, list):
                        raise EndpointFailure(f"{connection.url}: eth_getLogs answer not a list")
                    for log in result:
                        if log.get("removed"):
                            continue
                        seen[(str(log["transactionHash"]), int(log["logIndex"], 16))] = log
        except RpcError as exc:
            if step > 1 and exc.is_log_range_error:
                step = max(1, step // 2)
                continue
            raise
        start = end + 1
    return list(seen.values())


async def _learn_times(
    connection: RpcConnection, numbers: Collection[int], times: dict[int, datetime]
) -> None:
    wanted = sorted(n for n in numbers if n not in times)
    if not wanted:
        return
    blocks = await connection.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
    for number, block in zip(wanted, blocks, strict=True):
        if isinstance(block, RpcError):
            raise block
        if not isinstance(block, dict):
            raise EndpointFailure(f"{connection.url}: block {number} is missing")
        times[number] = datetime.fromtimestamp(
            parse_quantity(block["timestamp"], connection.url), UTC
        )


def _log_transfer(chain_id: int, log: Mapping[str, Any], times: Mapping[int, datetime]) -> Transfer:
    topics = log["topics"]
    number = int(log["blockNumber"], 16)
    data = str(log.get("data") or "0x")
    # ERC-721 indexes the token id as a fourth topic: one token moves.
    amount = 1 if len(topics) >= 4 else int(data[2:66] or "0", 16)
    return Transfer(
        chain_id,
        number,
        times[number],
        str(log["transactionHash"]),
        int(log["logIndex"], 16),
        parse_address(log["address"]),
        _address_of(topics[1]),
        _address_of(topics[2]),
        amount,
    )
