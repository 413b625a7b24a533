"""Spam signals: lures in names, sprayed airdrops, unreadable contracts — and no false alarms
on the shipped token list."""

from __future__ import annotations

import pytest

from chainfolio.core.domain import ChecksumAddress
from chainfolio.fetchers.metadata import TokenMetadata
from chainfolio.fetchers.spam import SpamSignals, spam_reason
from chainfolio.fetchers.tokenlists import shipped_tokens

TOKEN = ChecksumAddress("0x6B175474E89094C44Da98b954EedeAC495271d0F")


def _meta(symbol: str | None, name: str | None, unreadable: str | None = None) -> TokenMetadata:
    return TokenMetadata(1, TOKEN, symbol, name, None if unreadable else 18, unreadable)


@pytest.mark.parametrize(
    ("symbol", "name", "signal"),
    [
        ("USDC", "Visit usdc-bonus.com to redeem", "URL"),
        ("$ claim", "Uniswap", "'claim'"),
        ("ETH", "https://eth-gift.net", "URL"),
        ("REWARD", "t.me/freetokens", "URL"),
        ("AIR", "Airdrop voucher", "'Airdrop'"),
    ],
)
def test_lures_in_names_are_spam(symbol: str, name: str, signal: str) -> None:
    reason = spam_reason(SpamSignals(_meta(symbol, name)))
    assert reason is not None
    assert reason.startswith("lure")
    assert signal in reason


def test_a_sprayed_airdrop_is_spam_from_the_threshold_on() -> None:
    meta = _meta("REAL", "Real Token")
    assert spam_reason(SpamSignals(meta, airdrop_recipients=99)) is None
    reason = spam_reason(SpamSignals(meta, airdrop_recipients=100))
    assert reason == "mass airdrop: its first transfer here paid 100 addresses at once"
    assert spam_reason(SpamSignals(meta, airdrop_recipients=3), airdrop_threshold=3) is not None


def test_a_contract_answering_nothing_is_spam_but_a_missing_decimals_alone_is_not() -> None:
    assert (
        spam_reason(SpamSignals(_meta(None, None, "not an ERC-20"))) == "unreadable: not an ERC-20"
    )
    assert spam_reason(SpamSignals(_meta("NODEC", "No Decimals", "decimals() reverted"))) is None


def test_no_token_of_the_shipped_list_trips_a_signal() -> None:
    flagged = [
        (t.chain_id, t.symbol, t.name)
        for t in shipped_tokens()
        if spam_reason(SpamSignals(TokenMetadata(t.chain_id, t.address, t.symbol, t.name, 18)))
    ]
    assert flagged == []
