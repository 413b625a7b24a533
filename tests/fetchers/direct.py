"""Independent single JSON-RPC calls, to check the batched path against (no fetchers code)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector


class DirectRpc:
    """One plain JSON-RPC call per question, on its own HTTP client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.Client(timeout=30)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.close()

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; fails the test on an error answer."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = self._client.post(self.url, json=body).json()
        assert "error" not in answer, answer
        return answer["result"]

    def call_uint(
        self, to: str, signature: str, types: list[str], args: list[Any], block: int
    ) -> int:
        """`eth_call` of a uint256-returning view at `block`."""
        data = function_signature_to_4byte_selector(signature) + encode(types, args)
        request = {"to": to, "data": "0x" + data.hex()}
        return int(self.rpc("eth_call", request, hex(block)), 16)

    def balance_of(self, token: str, wallet: str, block: int) -> int:
        """ERC-20/721 `balanceOf(wallet)` at `block`."""
        return self.call_uint(token, "balanceOf(address)", ["address"], [wallet], block)

    def native_balance(self, wallet: str, block: int) -> int:
        """`eth_getBalance` at `block`."""
        return int(self.rpc("eth_getBalance", wallet, hex(block)), 16)
