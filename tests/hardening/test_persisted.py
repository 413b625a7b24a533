"""Persisted queries: Apollo's APQ handshake over HTTP, and the allow-list (HTTP and websockets)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import orjson
import pytest

from chainfolio.core.errors import InvalidInput
from chainfolio.schema.persisted import load_allowlist
from tests.hardening.conftest import OpenClient, bearer, graphql_socket, serve_env
from tests.servers import serve

WALLETS = "{ wallets { id address } }"
PORTFOLIO = "query Total { portfolio { totalValue } }"
SUBSCRIPTION = "subscription { portfolioUpdates { totalValue } }"


def _apq(query: str | None, digest: str | None = None, version: int = 1) -> dict[str, object]:
    digest = digest or hashlib.sha256((query or "").encode()).hexdigest()
    body: dict[str, object] = {
        "extensions": {"persistedQuery": {"version": version, "sha256Hash": digest}}
    }
    if query is not None:
        body["query"] = query
    return body


def _code(answer: dict[str, object]) -> str:
    errors = answer["errors"]
    assert isinstance(errors, list)
    code: str = errors[0]["extensions"]["code"]
    return code


async def test_apq_registers_on_first_full_request(open_client: OpenClient) -> None:
    digest = hashlib.sha256(WALLETS.encode()).hexdigest()
    headers = bearer("apq-user")
    async with open_client() as http:
        unknown = await http.post("/graphql", json=_apq(None, digest), headers=headers)
        assert unknown.status_code == 200  # what Apollo's client expects, then it resends
        assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        assert _code(unknown.json()) == "PERSISTED_QUERY_NOT_FOUND"

        full = await http.post("/graphql", json=_apq(WALLETS), headers=headers)
        assert full.json() == {"data": {"wallets": []}}
        by_hash = await http.post("/graphql", json=_apq(None, digest), headers=headers)
        assert by_hash.json() == {"data": {"wallets": []}}

        wrong = await http.post("/graphql", json=_apq(WALLETS, "0" * 64), headers=headers)
        assert wrong.status_code == 400
        assert _code(wrong.json()) == "PERSISTED_QUERY_HASH_MISMATCH"
        bad_version = await http.post("/graphql", json=_apq(WALLETS, version=2), headers=headers)
        assert bad_version.status_code == 400
        assert _code(bad_version.json()) == "PERSISTED_QUERY_INVALID"


@pytest.fixture
def allowlist(tmp_path: Path) -> Path:
    path = tmp_path / "allowlist.json"
    path.write_bytes(orjson.dumps([WALLETS, PORTFOLIO]))
    return path


async def test_only_allow_listed_documents_run(open_client: OpenClient, allowlist: Path) -> None:
    headers = bearer("allowlist-user")
    async with open_client(graphql_allowlist=allowlist) as http:
        listed = await http.post("/graphql", json={"query": WALLETS}, headers=headers)
        assert listed.json() == {"data": {"wallets": []}}
        # by hash, without registering first: the list is the registry
        by_hash = await http.post("/graphql", json=_apq(None, _sha(PORTFOLIO)), headers=headers)
        assert "errors" not in by_hash.json(), by_hash.text
        other = "{ wallets { id } }"
        for body in ({"query": other}, _apq(other)):
            refused = await http.post("/graphql", json=body, headers=headers)
            assert _code(refused.json()) == "QUERY_NOT_ALLOWED", refused.text
            assert "data" not in refused.json() or refused.json()["data"] is None
        # APQ cannot register new documents around the list
        still = await http.post("/graphql", json=_apq(None, _sha(other)), headers=headers)
        assert _code(still.json()) == "PERSISTED_QUERY_NOT_FOUND"


def _sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def test_allowlist_file_is_checked(tmp_path: Path) -> None:
    keyed = tmp_path / "keyed.json"
    keyed.write_bytes(orjson.dumps({_sha(WALLETS): WALLETS}))
    assert load_allowlist(keyed) == {_sha(WALLETS): WALLETS}
    wrong_key = tmp_path / "wrong.json"
    wrong_key.write_bytes(orjson.dumps({"abc": WALLETS}))
    with pytest.raises(InvalidInput, match="not the SHA-256"):
        load_allowlist(wrong_key)
    not_documents = tmp_path / "numbers.json"
    not_documents.write_bytes(orjson.dumps([1, 2]))
    with pytest.raises(InvalidInput, match="expected a list of documents"):
        load_allowlist(not_documents)


async def test_allowlist_covers_subscriptions(
    database_url: str, allowlist: Path, tmp_path: Path
) -> None:
    env = serve_env(database_url, tmp_path, CHAINFOLIO_GRAPHQL_ALLOWLIST=str(allowlist))
    with serve(env) as base:
        async with graphql_socket(base, "ws-allowlist-user") as ws:
            subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
            await ws.send(orjson.dumps(subscribe).decode())
            answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert answer["type"] == "error", answer
    assert answer["payload"][0]["extensions"]["code"] == "QUERY_NOT_ALLOWED"
