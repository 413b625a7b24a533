"""Multicall3 ABI encoding and decoding, without a chain."""

from __future__ import annotations

import pytest
from eth_abi.abi import decode, encode
from hypothesis import given
from hypothesis import strategies as st

from chainfolio.fetchers.multicall import (
    AGGREGATE3,
    BALANCE_OF,
    Call,
    CallResult,
    MalformedResult,
    decode_aggregate3,
    decode_uint,
    encode_aggregate3,
    revert_reason,
    selector,
    with_address,
    with_addresses,
    with_uint,
)

TOKEN = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
WALLET = "0x67E9699ab78A01C4616396e36C91bD768e021b85"


def test_selectors_are_the_well_known_ones() -> None:
    assert AGGREGATE3.hex() == "82ad56cb"
    assert BALANCE_OF.hex() == "70a08231"
    assert selector("getEthBalance(address)").hex() == "4d2301cc"
    assert selector("latestRoundData()").hex() == "feaf968c"


def test_calldata_helpers_match_eth_abi() -> None:
    assert with_address(BALANCE_OF, WALLET) == BALANCE_OF + encode(["address"], [WALLET])
    supplied = selector("supplied(address,address)")
    assert with_addresses(supplied, WALLET, TOKEN) == supplied + encode(
        ["address", "address"], [WALLET, TOKEN]
    )
    assert with_uint(BALANCE_OF, 2**255 + 7) == BALANCE_OF + encode(["uint256"], [2**255 + 7])


def test_aggregate3_encoding_sets_allow_failure_on_every_call() -> None:
    calls = [Call(TOKEN, with_address(BALANCE_OF, WALLET)), Call(WALLET, b"")]
    data = encode_aggregate3(calls)
    assert data[:4] == AGGREGATE3
    (decoded,) = decode(["(address,bool,bytes)[]"], data[4:])
    assert [(a.lower(), f, bytes(d)) for a, f, d in decoded] == [
        (TOKEN.lower(), True, with_address(BALANCE_OF, WALLET)),
        (WALLET.lower(), True, b""),
    ]


_addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
_calls = st.lists(st.builds(Call, _addresses, st.binary(max_size=100)), max_size=12)


@given(_calls)
def test_aggregate3_encoding_is_byte_for_byte_eth_abi(calls: list[Call]) -> None:
    reference = AGGREGATE3 + encode(
        ["(address,bool,bytes)[]"], [[(c.target, True, c.data) for c in calls]]
    )
    assert encode_aggregate3(calls) == reference


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=100)), max_size=12))
def test_aggregate3_decoding_agrees_with_eth_abi(results: list[tuple[bool, bytes]]) -> None:
    assert decode_aggregate3(encode(["(bool,bytes)[]"], [results]), len(results)) == results


def test_aggregate3_results_round_trip() -> None:
    results = [(True, (10**30).to_bytes(32, "big")), (False, b"\x08\xc3\x79\xa0"), (True, b"")]
    data = encode(["(bool,bytes)[]"], [results])
    assert decode_aggregate3(data, 3) == results


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no data"),
        (b"\x00" * 31, "undecodable"),
        ((2**70).to_bytes(32, "big"), "undecodable"),
        (encode(["(bool,bytes)[]"], [[(True, b"ab"), (True, b"")]])[:-40], "out of bounds"),
        (encode(["uint256", "uint256", "uint256", "uint256"], [32, 2, 64, 64]), "out of bounds"),
        (encode(["(bool,bytes)[]"], [[(True, b"")]]), "1 results for 2 calls"),
    ],
)
def test_malformed_aggregate3_data_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(MalformedResult, match=message):
        decode_aggregate3(data, 2)


def test_a_success_flag_other_than_0_or_1_is_rejected() -> None:
    data = bytearray(encode(["(bool,bytes)[]"], [[(True, b"")]]))
    data[32 * 4 - 1] = 2  # the success word of the only result
    with pytest.raises(MalformedResult, match="success flag 2"):
        decode_aggregate3(bytes(data), 1)


def test_decode_uint_is_exact_and_strict() -> None:
    assert decode_uint(CallResult(True, (2**256 - 1).to_bytes(32, "big"))) == 2**256 - 1
    with pytest.raises(MalformedResult, match="no data"):
        decode_uint(CallResult(True, b""))
    with pytest.raises(MalformedResult, match="3 bytes"):
        decode_uint(CallResult(True, b"abc"))
    with pytest.raises(MalformedResult, match="reverted: nope"):
        decode_uint(CallResult(False, b"", "reverted: nope"))


def test_revert_reasons_are_readable() -> None:
    error = selector("Error(string)") + encode(["string"], ["balanceOf always reverts"])
    panic = selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert revert_reason(error) == "reverted: balanceOf always reverts"
    assert revert_reason(panic) == "reverted: panic 0x11"
    assert revert_reason(b"") == "reverted (no reason)"
    assert revert_reason(b"\xde\xad").startswith("reverted (data 0xdead")
