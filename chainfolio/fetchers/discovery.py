"""Transfer-log discovery: every contract that sent a token *to* a wallet is a candidate.

Token lists name the popular tokens; the long tail is found in the chain's `Transfer` logs
whose indexed `to` is a tracked wallet, from any contract. A candidate is stored per wallet
with the first block it was seen at and checked (balanceOf) from then on.

Providers cap `eth_getLogs`: a block range (Alchemy 2 K with no result cap, QuickNode and many
public nodes 10 K, some 5 K or fewer) or a result count (Infura 10,000 logs). A scan cuts its
range into pieces of at most `max_range` blocks and sends several pieces per JSON-RPC batch;
a piece the node refuses as too large ("range too large", "more than 10000 results", "response
size exceeded" …) is halved and both halves retried, down to one block, so no block is
skipped. Progress is reported after every batch (scanned and total blocks).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chainfolio.core.domain import ChecksumAddress
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.rpc import EndpointFailure, RpcClient, RpcConnection, RpcError
from chainfolio.fetchers.transfers import TRANSFER_TOPIC

log = logging.getLogger(__name__)

RANGES_PER_REQUEST = 10
"""Log queries per JSON-RPC batch: round trips drop tenfold; providers count calls, not HTTP."""
WALLETS_PER_FILTER = 200


Progress = Callable[[int, int], Awaitable[None]]
"""Called with (scanned blocks, total blocks) after each batch."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A contract that moved a token to `wallet`, first seen at `first_block`."""

    wallet: ChecksumAddress
    contract: ChecksumAddress
    first_block: int
    tx_hash: str
    """The transaction of that first transfer (spam checks look at who else it paid)."""


@dataclass(slots=True)
class DiscoveryScan:
    """What one scan of blocks `first_block`…`last_block` (inclusive) found."""

    first_block: int
    last_block: int
    candidates: list[Candidate] = field(default_factory=list)
    log_queries: int = 0
    halvings: int = 0
    scanned: list[tuple[int, int]] = field(default_factory=list)
    """The inclusive block ranges answered, in order of answer (tests check no gap)."""


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower()[2:]


async def discover_tokens(
    rpc: RpcClient,
    *,
    wallets: Sequence[str],
    first_block: int,
    last_block: int,
    max_range: int = 10_000,
    ranges_per_request: int = RANGES_PER_REQUEST,
    on_progress: Progress | None = None,
) -> DiscoveryScan:
    """Contracts that sent a token to any of `wallets` within the inclusive block range."""
    owners = sorted({parse_address(w) for w in wallets})
    if not owners or last_block < first_block:
        return DiscoveryScan(first_block, last_block)
    total = last_block - first_block + 1

    async def work(connection: RpcConnection) -> DiscoveryScan:
        scan = DiscoveryScan(first_block, last_block)  # afresh when a failover restarts it
        found: dict[tuple[ChecksumAddress, ChecksumAddress], tuple[int, str]] = {}
        done = 0
        pending = [
            (start, min(start + max_range - 1, last_block))
            for start in range(first_block, last_block + 1, max_range)
        ]
        groups = [
            owners[i : i + WALLETS_PER_FILTER] for i in range(0, len(owners), WALLETS_PER_FILTER)
        ]
        while pending:
            batch, pending = pending[:ranges_per_request], pending[ranges_per_request:]
            queries = [(r, g) for r in batch for g in groups]
            outcomes = await connection.batch([_query(r, g) for r, g in queries])
            scan.log_queries += len(queries)
            refused: list[tuple[int, int]] = []
            for ((start, end), _), outcome in zip(queries, outcomes, strict=True):
                if isinstance(outcome, RpcError):
                    if start < end and outcome.is_log_range_error:
                        if (start, end) not in refused:
                            refused.append((start, end))
                        continue
                    raise outcome
                if not isinstance(outcome, list):
                    raise EndpointFailure(f"{connection.url}: eth_getLogs answer not a list")
                _collect(outcome, found)
            for start, end in dict.fromkeys(batch):
                if (start, end) in refused:
                    continue
                scan.scanned.append((start, end))
                done += end - start + 1
            halves: list[tuple[int, int]] = []
            for start, end in refused:
                middle = (start + end) // 2
                halves += [(start, middle), (middle + 1, end)]
                scan.halvings += 1
            pending = halves + pending
            if on_progress is not None:
                await on_progress(done, total)
        scan.candidates = [
            Candidate(w, c, block, tx) for (w, c), (block, tx) in sorted(found.items())
        ]
        return scan

    result = await rpc.run(work)
    log.info(
        "discovery on %s: blocks %d-%d, %d candidates, %d log queries, %d halvings",
        rpc.chain,
        first_block,
        last_block,
        len(result.candidates),
        result.log_queries,
        result.halvings,
    )
    return result


def _query(blocks: tuple[int, int], wallets: Sequence[str]) -> tuple[str, list[Any]]:
    start, end = blocks
    topics: list[Any] = [TRANSFER_TOPIC, None, [_topic(w) for w in wallets]]
    return ("eth_getLogs", [{"fromBlock": hex(start), "toBlock": hex(end), "topics": topics}])


def _collect(
    logs: Sequence[dict[str, Any]],
    found: dict[tuple[ChecksumAddress, ChecksumAddress], tuple[int, str]],
) -> None:
    for entry in logs:
        topics = entry.get("topics") or []
        # ERC-20 Transfer has 3 topics; ERC-721's token id makes a fourth (not a balance).
        if entry.get("removed") or len(topics) != 3:
            continue
        key = (parse_address("0x" + topics[2][-40:]), parse_address(entry["address"]))
        first = (int(entry["blockNumber"], 16), str(entry["transactionHash"]))
        if key not in found or first < found[key]:
            found[key] = first
