"""Token lists: the shipped Uniswap default list plus the user's own, as per-chain tokens.

The shipped list is npm `@uniswap/default-token-list` (pinned; `scripts/update-token-list.sh`
refreshes `data/`). A user's list — a file or an http(s) URL — must validate against the Token
Lists JSON schema (npm `@uniswap/token-lists`, shipped next to it); a list that does not is
refused with `INVALID_TOKEN_LIST` and the first schema violation. Entries whose address is not
an EVM address (the default list carries Solana mints) are left out; the first list to name a
(chain, address) wins.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft7Validator, FormatChecker

from chainfolio.core.domain import ChecksumAddress
from chainfolio.core.errors import InvalidInput
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.config import ChainConfig, TokenConfig
from chainfolio.fetchers.prices.base import address_key

DATA_DIR = Path(__file__).with_name("data")
SHIPPED_LIST = DATA_DIR / "uniswap-default.tokenlist.json"
SCHEMA_FILE = DATA_DIR / "tokenlist.schema.json"


@dataclass(frozen=True, slots=True)
class ListedToken:
    """One ERC-20 named by a token list."""

    chain_id: int
    address: ChecksumAddress
    symbol: str
    name: str
    decimals: int
    list_name: str


@functools.cache
def _validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    return Draft7Validator(schema, format_checker=FormatChecker())


def parse_token_list(document: Any, *, source: str) -> list[ListedToken]:
    """The EVM tokens of a Token Lists document; InvalidInput when it breaks the schema."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise InvalidInput(
            f"token list {source} is not a valid token list: at {where}: {first.message}"
            + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""),
            code="INVALID_TOKEN_LIST",
        )
    name = str(document["name"])
    tokens = []
    for entry in document["tokens"]:
        try:
            address = parse_address(entry["address"])
        except InvalidInput:
            continue  # not an EVM address (or a wrong EIP-55 checksum): nothing we can read
        tokens.append(
            ListedToken(
                chain_id=int(entry["chainId"]),
                address=address,
                symbol=str(entry["symbol"]),
                name=str(entry["name"]),
                decimals=int(entry["decimals"]),
                list_name=name,
            )
        )
    return tokens


@functools.cache
def shipped_tokens() -> tuple[ListedToken, ...]:
    """The shipped Uniswap default list's EVM tokens (parsed and validated once)."""
    return tuple(parse_token_list(json.loads(SHIPPED_LIST.read_text()), source=SHIPPED_LIST.name))


async def load_token_list(
    source: str, *, http: httpx.AsyncClient | None = None
) -> list[ListedToken]:
    """A user's token list from a file path or an http(s) URL, validated."""
    if source.startswith(("http://", "https://")):
        if http is None:
            raise InvalidInput(f"token list {source}: no HTTP client", code="INVALID_TOKEN_LIST")
        try:
            response = await http.get(source, timeout=15.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise InvalidInput(
                f"token list {source} could not be fetched: {exc}", code="INVALID_TOKEN_LIST"
            ) from exc
    else:
        try:
            document = json.loads(await asyncio.to_thread(Path(source).read_text))
        except (OSError, ValueError) as exc:
            raise InvalidInput(
                f"token list {source} could not be read: {exc}", code="INVALID_TOKEN_LIST"
            ) from exc
    return parse_token_list(document, source=source)


def tokens_by_chain(
    lists: Iterable[Sequence[ListedToken]], *, chain_ids: Iterable[int] | None = None
) -> Mapping[int, list[ListedToken]]:
    """Every listed token per chain, the first list naming a (chain, address) winning."""
    wanted = None if chain_ids is None else set(chain_ids)
    seen: set[tuple[int, str]] = set()
    per_chain: dict[int, list[ListedToken]] = {}
    for tokens in lists:
        for token in tokens:
            key = (token.chain_id, token.address)
            if (wanted is not None and token.chain_id not in wanted) or key in seen:
                continue
            seen.add(key)
            per_chain.setdefault(token.chain_id, []).append(token)
    return per_chain


def as_token(chain: ChainConfig, token: ListedToken) -> TokenConfig:
    """A listed token as the reader reads it: priced by a feed of its symbol on that chain,
    else by its address (a look-alike symbol never borrows a feed the list did not vouch for)."""
    symbol = token.symbol if token.symbol in chain.price_feeds else None
    return TokenConfig(
        address=token.address,
        symbol=token.symbol,
        decimals=token.decimals,
        price_symbol=symbol or address_key(chain.chain_id, token.address),
    )
