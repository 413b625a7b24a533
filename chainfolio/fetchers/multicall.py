"""Multicall3 `aggregate3`: many read calls in few `eth_call`s, all at one block.

Calls are cut into chunks (about 400 each); several chunks travel in one JSON-RPC batch
request; a chunk the node refuses for gas, payload or response size is halved and retried.
Every call is sent with `allowFailure = true`, so one broken token never hides the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector

from chainfolio.fetchers.config import RpcSettings
from chainfolio.fetchers.rpc import EndpointFailure, RpcConnection, RpcError, parse_data


@cache
def selector(signature: str) -> bytes:
    """The 4-byte function selector of a canonical signature such as `balanceOf(address)`."""
    return function_signature_to_4byte_selector(signature)


AGGREGATE3 = selector("aggregate3((address,bool,bytes)[])")
GET_ETH_BALANCE = selector("getEthBalance(address)")
BALANCE_OF = selector("balanceOf(address)")
DECIMALS = selector("decimals()")
CONVERT_TO_ASSETS = selector("convertToAssets(uint256)")
LATEST_ROUND_DATA = selector("latestRoundData()")
GET_RESERVES = selector("getReserves()")
TOKEN0 = selector("token0()")

T = TypeVar("T")

_ERROR_STRING = selector("Error(string)")
_ADDRESS_PAD = bytes(12)
_TRUE = (1).to_bytes(32, "big")
_BYTES_AT_0X60 = (0x60).to_bytes(32, "big")
_ARRAY_AT_0X20 = (0x20).to_bytes(32, "big")
_PANIC = selector("Panic(uint256)")


@dataclass(frozen=True, slots=True)
class Call:
    """One read call: a contract and its calldata."""

    target: str
    data: bytes


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one call returned; `error` says why when it did not succeed."""

    success: bool
    data: bytes
    error: str | None = None


def with_address(function: bytes, address: str) -> bytes:
    """Calldata for a function taking one address (balanceOf, getEthBalance…)."""
    return function + bytes(12) + bytes.fromhex(address[2:])


def with_addresses(function: bytes, *addresses: str) -> bytes:
    """Calldata for a function taking only address arguments."""
    return function + b"".join(bytes(12) + bytes.fromhex(a[2:]) for a in addresses)


def with_uint(function: bytes, value: int) -> bytes:
    """Calldata for a function taking one uint256."""
    return function + value.to_bytes(32, "big")


def encode_aggregate3(calls: Sequence[Call]) -> bytes:
    """ABI-encode an `aggregate3` call with allowFailure set on every call.

    Written out by hand because it is the hot path (tens of thousands of calls per refresh);
    tests check it byte for byte against eth_abi.
    """
    heads: list[bytes] = []
    bodies: list[bytes] = []
    offset = 32 * len(calls)
    for call in calls:
        size = len(call.data)
        padding = -size % 32
        body = b"".join(
            (
                _ADDRESS_PAD,
                bytes.fromhex(call.target[2:]),
                _TRUE,
                _BYTES_AT_0X60,
                size.to_bytes(32, "big"),
                call.data,
                bytes(padding),
            )
        )
        heads.append(offset.to_bytes(32, "big"))
        bodies.append(body)
        offset += len(body)
    return b"".join((AGGREGATE3, _ARRAY_AT_0X20, len(calls).to_bytes(32, "big"), *heads, *bodies))


class MalformedResult(ValueError):
    """Return data that does not decode as the expected ABI type."""


def decode_aggregate3(data: bytes, expected: int) -> list[tuple[bool, bytes]]:
    """Decode `aggregate3`'s `(bool success, bytes returnData)[]`, checking every offset."""
    if not data:
        raise MalformedResult("multicall returned no data (is Multicall3 deployed there?)")
    view = memoryview(data)
    start = _word(view, 0) + 32
    count = _word(view, start - 32)
    if count != expected:
        raise MalformedResult(f"multicall returned {count} results for {expected} calls")
    results: list[tuple[bool, bytes]] = []
    for index in range(count):
        element = start + _word(view, start + 32 * index)
        success = _word(view, element)
        if success > 1:
            raise MalformedResult(f"multicall result {index}: success flag {success}")
        payload = element + _word(view, element + 32)
        size = _word(view, payload)
        if payload + 32 + size > len(data):
            raise MalformedResult(f"multicall result {index}: return data out of bounds")
        results.append((success == 1, bytes(view[payload + 32 : payload + 32 + size])))
    return results


def _word(view: memoryview, at: int) -> int:
    """The 32-byte big-endian word at `at`, bounds-checked (and kept small as an offset)."""
    if at < 0 or at + 32 > len(view):
        raise MalformedResult(f"multicall returned undecodable data (word at {at} out of bounds)")
    value = int.from_bytes(view[at : at + 32], "big")
    if value >= 2**64:
        raise MalformedResult(f"multicall returned undecodable data (offset {value:#x})")
    return value


def decode_uint(result: CallResult) -> int:
    """The first word of a successful call as uint256; MalformedResult otherwise."""
    if not result.success:
        raise MalformedResult(result.error or "call failed")
    if len(result.data) < 32:
        if not result.data:
            raise MalformedResult("call returned no data (not a contract, or no such function)")
        raise MalformedResult(f"call returned {len(result.data)} bytes, want a 32-byte word")
    return int.from_bytes(result.data[:32], "big")


def revert_reason(data: bytes) -> str:
    """A readable reason for a reverted call."""
    if data.startswith(_ERROR_STRING):
        try:
            (message,) = decode(["string"], data[4:])
        except (DecodingError, ValueError, OverflowError):
            return "reverted (undecodable reason)"
        return f"reverted: {message}"
    if data.startswith(_PANIC) and len(data) >= 36:
        return f"reverted: panic 0x{int.from_bytes(data[4:36], 'big'):02x}"
    if not data:
        return "reverted (no reason)"
    return f"reverted (data 0x{data[:36].hex()})"


class ChunkSize:
    """The chunk size a chain currently tolerates.

    It halves when a node refuses a chunk, and doubles back towards the configured size after
    `recover_after` clean reads in a row: a limit met once (a busy node, one strict URL behind
    a load balancer) should not slow every later refresh for the life of the process.
    """

    def __init__(self, initial: int, *, recover_after: int = 20) -> None:
        self.initial = initial
        self.value = initial
        self.recover_after = recover_after
        self._clean = 0

    def shrink_to(self, size: int) -> None:
        """Use a smaller size from now on (a node refused a chunk)."""
        self.value = max(1, min(self.value, size))
        self._clean = 0

    def read_cleanly(self) -> None:
        """Count a read with no refused chunk; grow back once enough of them happened."""
        if self.value >= self.initial:
            return
        self._clean += 1
        if self._clean >= self.recover_after:
            self.value = min(self.initial, self.value * 2)
            self._clean = 0


async def aggregate(
    connection: RpcConnection,
    calls: Sequence[Call],
    *,
    multicall3: str,
    block: int,
    settings: RpcSettings,
    chunk_size: ChunkSize | None = None,
) -> list[CallResult]:
    """Run `calls` through Multicall3 at `block`; one CallResult per call, in order."""
    size = chunk_size or ChunkSize(settings.chunk_size)
    shrunk = False
    results: list[CallResult | None] = [None] * len(calls)
    pending = [
        (start, min(start + size.value, len(calls))) for start in range(0, len(calls), size.value)
    ]
    block_tag = hex(block)
    gate = asyncio.Semaphore(settings.max_in_flight)

    async def send(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        requests = []
        for start, end in ranges:
            request: dict[str, object] = {
                "to": multicall3,
                "data": "0x" + encode_aggregate3(calls[start:end]).hex(),
            }
            if settings.call_gas is not None:
                request["gas"] = hex(settings.call_gas)
            requests.append(("eth_call", [request, block_tag]))
        async with gate:
            outcomes = await connection.batch(requests)
        retry: list[tuple[int, int]] = []
        for (start, end), outcome in zip(ranges, outcomes, strict=True):
            if isinstance(outcome, RpcError):
                if outcome.is_missing_block:
                    # A lagging node behind a load balancer: another URL may have the block.
                    raise EndpointFailure(f"{connection.url}: {outcome.message} at block {block}")
                if outcome.is_size_error and end - start > 1:
                    nonlocal shrunk
                    shrunk = True
                    middle = (start + end) // 2
                    size.shrink_to(middle - start)
                    retry += [(start, middle), (middle, end)]
                else:
                    _fail(results, start, end, f"eth_call failed: {outcome.message}")
                continue
            try:
                decoded = decode_aggregate3(parse_data(outcome, connection.url), end - start)
            except MalformedResult as exc:
                _fail(results, start, end, str(exc))
                continue
            for index, (success, payload) in enumerate(decoded, start):
                results[index] = CallResult(
                    success, payload, None if success else revert_reason(payload)
                )
        return retry

    while pending:
        per_request = settings.chunks_per_request
        groups = [pending[i : i + per_request] for i in range(0, len(pending), per_request)]
        retries = await gather_all([send(group) for group in groups])
        pending = [r for group_retry in retries for r in group_retry]
    if not shrunk:
        size.read_cleanly()
    return [r if r is not None else CallResult(False, b"", "not executed") for r in results]


async def gather_all(work: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Like asyncio.gather, but the first failure cancels the rest (a dead URL stops all)."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _fail(results: list[CallResult | None], start: int, end: int, reason: str) -> None:
    for index in range(start, end):
        results[index] = CallResult(False, b"", reason)
