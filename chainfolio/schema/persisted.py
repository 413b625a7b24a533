"""Persisted queries: Apollo's automatic persisted queries (APQ), and an optional allow-list.

APQ (HTTP POST): a client sends `extensions.persistedQuery.sha256Hash` without `query`; a
document registered before (sent once with the same hash) runs, otherwise the answer is the
error `PersistedQueryNotFound` (`extensions.code = PERSISTED_QUERY_NOT_FOUND`) and Apollo's
client resends with the full text, which registers it. A text whose SHA-256 is not the hash
given is refused (`PERSISTED_QUERY_HASH_MISMATCH`). Registrations live in this process (least
recently used out): a restart or another replica costs one resend.

Allow-list (`CHAINFOLIO_GRAPHQL_ALLOWLIST`, a JSON file: a list of documents, or an object
mapping SHA-256 to document): when set, only those documents run, over HTTP and websockets
alike (`QUERY_NOT_ALLOWED` otherwise), and hashes resolve to them without registration.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from chainfolio.core.errors import ChainfolioError, InvalidInput

REGISTERED_QUERIES = 1_000
MAX_REGISTERED_QUERY = 16 * 1024


class PersistedQueryNotFound(ChainfolioError):
    """APQ: the hash is not registered here; send the query text with it once."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    status = 200  # Apollo's clients look for the code in a normal GraphQL answer

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound", code=self.code)


class QueryNotAllowed(ChainfolioError):
    """The document is not on the configured allow-list."""

    code = "QUERY_NOT_ALLOWED"
    status = 403

    def __init__(self) -> None:
        super().__init__(
            "this server runs only allow-listed documents (CHAINFOLIO_GRAPHQL_ALLOWLIST)",
            code=self.code,
        )


def sha256(query: str) -> str:
    """The hex SHA-256 of a document's text, as APQ computes it."""
    return hashlib.sha256(query.encode()).hexdigest()


def load_allowlist(path: Path) -> dict[str, str]:
    """The allow-list file: a JSON list of documents, or an object {sha256: document}."""
    raw = orjson.loads(path.read_bytes())
    documents = list(raw.values()) if isinstance(raw, dict) else raw
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise InvalidInput(
            f"{path}: expected a list of documents or an object of sha256 to document",
            code="INVALID_CONFIG",
        )
    allowed = {sha256(d): d for d in documents}
    if isinstance(raw, dict):
        wrong = sorted(k for k, d in raw.items() if allowed.get(k) != d)
        if wrong:
            raise InvalidInput(
                f"{path}: keys that are not the SHA-256 of their document: {', '.join(wrong)}",
                code="INVALID_CONFIG",
            )
    return allowed


class PersistedQueries:
    """Resolves APQ requests to documents; enforces the allow-list when there is one."""

    def __init__(self, allowlist: Mapping[str, str] | None = None) -> None:
        self.allowlist = dict(allowlist) if allowlist is not None else None
        self._registered: OrderedDict[str, str] = OrderedDict()

    def resolve(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The request with its document filled in (the same object when nothing to do)."""
        extensions = payload.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if not isinstance(persisted, dict):
            return payload
        digest = persisted.get("sha256Hash")
        if persisted.get("version") != 1 or not isinstance(digest, str):
            raise InvalidInput(
                "persistedQuery needs version 1 and a sha256Hash", code="PERSISTED_QUERY_INVALID"
            )
        query = payload.get("query")
        if isinstance(query, str) and query:
            if sha256(query) != digest:
                raise InvalidInput(
                    "sha256Hash is not the SHA-256 of the query",
                    code="PERSISTED_QUERY_HASH_MISMATCH",
                )
            if self.allowlist is None and len(query) <= MAX_REGISTERED_QUERY:
                self._registered[digest] = query
                self._registered.move_to_end(digest)
                if len(self._registered) > REGISTERED_QUERIES:
                    self._registered.popitem(last=False)
            return payload
        found = (self.allowlist or {}).get(digest) or self._registered.get(digest)
        if found is None:
            raise PersistedQueryNotFound
        if digest in self._registered:
            self._registered.move_to_end(digest)
        return {**payload, "query": found}


def allowlist_extension(allowed: Mapping[str, str]) -> type[SchemaExtension]:
    """A schema extension refusing every document not in `allowed` (HTTP and websockets)."""
    hashes = frozenset(allowed)

    class AllowList(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            # Before validation (listed after LimitedValidation, so this replaces its result):
            # errors set here stop the operation; set after the yield they would not.
            query = self.execution_context.query or ""
            if sha256(query) not in hashes:
                error = QueryNotAllowed()
                self.execution_context.pre_execution_errors = [
                    # the code set here too: subscriptions' early errors skip ErrorCodes
                    GraphQLError(
                        error.message, original_error=error, extensions={"code": error.code}
                    )
                ]
            yield

    return AllowList
