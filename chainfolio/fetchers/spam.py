"""Spam tokens, told apart by signals anyone can measure on chain.

- **lure**: the name or symbol carries a URL or a come-on ("claim", "visit", "reward", "airdrop"
  …) — scam tokens advertise a phishing site in the only text a wallet app shows;
- **mass airdrop**: the transaction that brought the token sent it to at least
  `airdrop_recipients` addresses (real tokens are bought or sent, not sprayed);
- **unreadable**: it answers none of symbol(), name(), decimals().

Brand names with a dot (Ether.fi, Sport.fun) are not URLs: only scheme, www., t.me/ or the
top-level domains scam tokens use count; no token of the shipped list trips a signal (tested).
A token with no price source is *unpriced*, not spam: it is kept, counted as unknown value and
listed with that reason. Both are left out of totals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chainfolio.fetchers.discovery import Candidate
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.metadata import TokenMetadata, read_metadata
from chainfolio.fetchers.rpc import RpcClient, RpcConnection, RpcError
from chainfolio.fetchers.transfers import TRANSFER_TOPIC

AIRDROP_RECIPIENTS = 100
"""Recipients of one transaction above which a token counts as sprayed (real spam: thousands)."""

_URL = re.compile(
    r"(https?://|www\.|t\.me/|\b[a-z0-9-]{2,}\.(com|io|org|net|xyz|app|site|online|"
    r"top|club|info|live|link|vip|cc|gg|to|me|us|world|zone)\b)",
    re.IGNORECASE,
)
_LURE = re.compile(
    r"\b(claim|visit|reward|rewards|airdrop|voucher|bonus|giveaway|free|redeem|eligible)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SpamSignals:
    """What was measured about one token."""

    metadata: TokenMetadata
    airdrop_recipients: int | None = None
    """Distinct recipients of the token in the transaction that first brought it (None: unread)."""


def spam_reason(signals: SpamSignals, *, airdrop_threshold: int = AIRDROP_RECIPIENTS) -> str | None:
    """Why the token is spam, or None when no signal says so."""
    meta = signals.metadata
    for label, text in (("name", meta.name), ("symbol", meta.symbol)):
        if text and _URL.search(text):
            return f"lure: {label} carries a URL ({text!r})"
        lure = _LURE.search(text) if text else None
        if lure is not None:
            return f"lure: {label} says {lure.group(0)!r} ({text!r})"
    recipients = signals.airdrop_recipients
    if recipients is not None and recipients >= airdrop_threshold:
        return f"mass airdrop: its first transfer here paid {recipients} addresses at once"
    if meta.unreadable and meta.symbol is None and meta.name is None:
        return f"unreadable: {meta.unreadable}"
    return None


async def airdrop_recipients(
    rpc: RpcClient, candidates: Sequence[Candidate]
) -> dict[tuple[str, str], int]:
    """Per (contract, tx hash): distinct recipients of that contract's Transfers in the tx."""
    wanted = sorted({(c.contract, c.tx_hash) for c in candidates})
    if not wanted:
        return {}

    async def work(connection: RpcConnection) -> dict[tuple[str, str], int]:
        hashes = sorted({tx for _, tx in wanted})
        receipts = await connection.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        by_hash = dict(zip(hashes, receipts, strict=True))
        counts: dict[tuple[str, str], int] = {}
        for contract, tx in wanted:
            receipt = by_hash[tx]
            if isinstance(receipt, RpcError) or not isinstance(receipt, dict):
                continue
            recipients = {
                entry["topics"][2]
                for entry in receipt.get("logs") or []
                if str(entry.get("address", "")).lower() == contract.lower()
                and len(entry.get("topics") or []) == 3
                and entry["topics"][0] == TRANSFER_TOPIC
            }
            counts[(contract, tx)] = len(recipients)
        return counts

    return await rpc.run(work)


async def inspect_tokens(
    reader: EvmChainReader,
    candidates: Sequence[Candidate],
    *,
    airdrop_threshold: int = AIRDROP_RECIPIENTS,
) -> list[tuple[TokenMetadata, str | None]]:
    """Metadata and spam verdict of each candidate contract (metadata in one batch, the
    first transfers' receipts in another)."""
    metadata = await read_metadata(reader, [c.contract for c in candidates])
    recipients = await airdrop_recipients(reader.rpc, candidates)
    first: dict[str, Candidate] = {}
    for candidate in sorted(candidates, key=lambda c: c.first_block):
        first.setdefault(candidate.contract, candidate)
    verdicts = []
    for contract, meta in metadata.items():
        seen = first[contract]
        signals = SpamSignals(meta, recipients.get((contract, seen.tx_hash)))
        verdicts.append((meta, spam_reason(signals, airdrop_threshold=airdrop_threshold)))
    return verdicts
