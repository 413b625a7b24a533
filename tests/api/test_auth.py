"""RS256 through a JWKS URL: a local JWKS server (the identity provider is on the internet)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from chainfolio.api.app import create_app
from chainfolio.core.settings import Settings
from tests.api.conftest import SECRET
from tests.fetchers.servers import dead_url, serve

AUDIENCE = "chainfolio-api"
KID = "key-1"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class IdentityProvider:
    """A fake identity provider: a signing key, and a JWKS endpoint publishing its public half."""

    key: rsa.RSAPrivateKey = field(default_factory=_rsa_key)
    jwks_requests: int = 0

    async def handle(self, _request: web.Request) -> web.StreamResponse:
        self.jwks_requests += 1
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk = {**public, "kid": KID, "use": "sig", "alg": "RS256"}
        return web.json_response({"keys": [jwk]})

    def token(
        self,
        *,
        sub: str = "rsa-user",
        ttl: timedelta = timedelta(minutes=10),
        aud: str | None = AUDIENCE,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = KID,
    ) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl}
        if aud is not None:
            claims["aud"] = aud
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers=headers)


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[tuple[IdentityProvider, str]]:
    provider = IdentityProvider()
    async with serve(provider.handle) as base:
        yield provider, f"{base}/.well-known/jwks.json"


@asynccontextmanager
async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def _jwks_settings(settings: Settings, jwks_url: str) -> Settings:
    return settings.model_copy(update={"jwt_jwks_url": jwks_url, "jwt_audience": AUDIENCE})


@pytest.fixture(scope="module")
async def rs_client(
    settings: Settings, idp: tuple[IdentityProvider, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(_jwks_settings(settings, idp[1])) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _rejected(client: httpx.AsyncClient, token: str) -> list[str]:
    """Every route's 401 message for `token` (REST envelopes and GraphQL errors)."""
    messages = []
    for path in ("/v1/portfolio", "/v1/wallets"):
        response = await client.get(path, headers=bearer(token))
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["code"] == "UNAUTHENTICATED"
        messages.append(error["message"])
    graphql = await client.post(
        "/graphql", json={"query": "{ wallets { id } }"}, headers=bearer(token)
    )
    assert graphql.status_code == 401
    error = graphql.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    messages.append(error["message"])
    return messages


async def test_valid_rs256_token_is_accepted(
    rs_client: httpx.AsyncClient, idp: tuple[IdentityProvider, str]
) -> None:
    provider, _ = idp
    token = provider.token(sub="rsa-alice")
    rest = await rs_client.get("/v1/wallets", headers=bearer(token))
    assert rest.status_code == 200, rest.text
    assert rest.json() == {"success": True, "data": []}
    added = await rs_client.post(
        "/graphql",
        json={"query": 'mutation { addWallet(chainId: 1, address: "0x' + "cd" * 20 + '") { id } }'},
        headers=bearer(token),
    )
    assert "errors" not in added.json(), added.text
    listed = await rs_client.post(
        "/graphql", json={"query": "{ wallets { id } }"}, headers=bearer(token)
    )
    assert listed.json()["data"]["wallets"] == [added.json()["data"]["addWallet"]]
    # the subject is the user: another subject from the same provider sees nothing
    other = await rs_client.get("/v1/wallets", headers=bearer(provider.token(sub="rsa-bob")))
    assert other.json()["data"] == []
    # keys are cached: the JWKS was not fetched once per request
    assert provider.jwks_requests <= 2


async def test_token_signed_by_another_key_is_401(
    rs_client: httpx.AsyncClient, idp: tuple[IdentityProvider, str]
) -> None:
    provider, _ = idp
    forged = provider.token(key=_rsa_key())  # same kid, someone else's key
    for message in await _rejected(rs_client, forged):
        assert message == "invalid token: Signature verification failed"


async def test_unknown_key_id_is_401(
    rs_client: httpx.AsyncClient, idp: tuple[IdentityProvider, str]
) -> None:
    provider, _ = idp
    for message in await _rejected(rs_client, provider.token(kid="rotated-away")):
        assert message.startswith("invalid token: Unable to find a signing key")
        assert "rotated-away" in message
    # Made-up key ids cannot turn us into a load generator against the identity provider:
    # an unknown kid refetches the JWKS at most once per cooldown (PyJWKClient, 30 s).
    fetched = provider.jwks_requests
    for i in range(10):
        response = await rs_client.get("/v1/wallets", headers=bearer(provider.token(kid=f"k{i}")))
        assert response.status_code == 401
    assert provider.jwks_requests - fetched <= 1


async def test_expired_token_is_401(
    rs_client: httpx.AsyncClient, idp: tuple[IdentityProvider, str]
) -> None:
    provider, _ = idp
    expired = provider.token(ttl=-timedelta(minutes=1))
    assert await _rejected(rs_client, expired) == ["token expired"] * 3


@pytest.mark.parametrize(
    ("aud", "expected"),
    [
        ("some-other-api", "invalid token: Audience doesn't match"),
        (None, 'invalid token: Token is missing the "aud" claim'),
    ],
    ids=["wrong-audience", "no-audience"],
)
async def test_wrong_audience_is_401(
    rs_client: httpx.AsyncClient,
    idp: tuple[IdentityProvider, str],
    aud: str | None,
    expected: str,
) -> None:
    provider, _ = idp
    assert await _rejected(rs_client, provider.token(aud=aud)) == [expected] * 3


async def test_hs256_token_with_the_shared_secret_is_refused_under_jwks(
    rs_client: httpx.AsyncClient,
) -> None:
    """With a JWKS configured, a token signed with the HS256 secret must not pass."""
    now = datetime.now(UTC)
    claims = {"sub": "x", "aud": AUDIENCE, "exp": now + timedelta(minutes=5)}
    hs = jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": KID})
    for message in await _rejected(rs_client, hs):
        assert message.startswith("invalid token")


async def test_unreachable_jwks_is_503_not_401(settings: Settings) -> None:
    """The identity provider being down is not the caller's fault: 503, retry later."""
    provider = IdentityProvider()
    async with _client(_jwks_settings(settings, f"{dead_url()}/jwks.json")) as http:
        response = await http.get("/v1/wallets", headers=bearer(provider.token()))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "JWKS" in response.json()["error"]["message"]
        graphql = await http.post(
            "/graphql", json={"query": "{ wallets { id } }"}, headers=bearer(provider.token())
        )
        assert graphql.status_code == 503
        assert graphql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_hs256_audience_is_enforced(settings: Settings) -> None:
    """The audience check applies to the default HS256 path too."""
    configured = settings.model_copy(update={"jwt_audience": AUDIENCE})
    exp = datetime.now(UTC) + timedelta(minutes=5)
    good = jwt.encode({"sub": "aud-user", "aud": AUDIENCE, "exp": exp}, SECRET)
    bad = jwt.encode({"sub": "aud-user", "aud": "other", "exp": exp}, SECRET)
    async with _client(configured) as http:
        assert (await http.get("/v1/wallets", headers=bearer(good))).status_code == 200
        assert await _rejected(http, bad) == ["invalid token: Audience doesn't match"] * 3


async def test_remembered_token_still_expires(settings: Settings) -> None:
    """Verified tokens are remembered between requests, never past their `exp`."""
    exp = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    token = jwt.encode({"sub": "short-lived", "exp": exp}, SECRET)
    async with _client(settings) as http:
        for _ in range(3):
            assert (await http.get("/v1/wallets", headers=bearer(token))).status_code == 200
        await asyncio.sleep((exp - datetime.now(UTC)).total_seconds() + 0.2)
        assert await _rejected(http, token) == ["token expired"] * 3


async def test_subjects_and_issuers_are_matched_exactly(settings: Settings) -> None:
    """A token reads only the wallets of its exact (iss, sub): another spelling of a UUID
    subject, or the same subject from another issuer, is another user."""
    exp = datetime.now(UTC) + timedelta(minutes=5)
    owner = str(uuid.uuid4())

    def token(sub: str, iss: str | None = None) -> str:
        claims: dict[str, Any] = {"sub": sub, "exp": exp}
        if iss is not None:
            claims["iss"] = iss
        return jwt.encode(claims, SECRET)

    async with _client(settings) as http:
        added = await http.post(
            "/v1/wallets",
            json={"chainId": 1, "address": "0x" + "ab" * 20},
            headers=bearer(token(owner)),
        )
        assert added.status_code == 201, added.text
        others = [
            token(owner.upper()),
            token("{" + owner + "}"),
            token(f"urn:uuid:{owner}"),
            token(owner.replace("-", "")),
            token(owner, iss="https://other.example"),
        ]
        for other in others:
            listed = await http.get("/v1/wallets", headers=bearer(other))
            assert listed.json() == {"success": True, "data": []}
        mine = await http.get("/v1/wallets", headers=bearer(token(owner)))
        assert len(mine.json()["data"]) == 1


async def test_required_issuer_and_subject_shape(settings: Settings) -> None:
    exp = datetime.now(UTC) + timedelta(minutes=5)
    configured = settings.model_copy(update={"jwt_issuer": "https://idp.example"})
    async with _client(configured) as http:
        good = jwt.encode({"sub": "x", "iss": "https://idp.example", "exp": exp}, SECRET)
        assert (await http.get("/v1/wallets", headers=bearer(good))).status_code == 200
        wrong = jwt.encode({"sub": "x", "iss": "https://evil.example", "exp": exp}, SECRET)
        assert await _rejected(http, wrong) == ["invalid token: Invalid issuer"] * 3
    async with _client(settings) as http:
        nul = jwt.encode({"sub": "a\x00b", "exp": exp}, SECRET)
        long = jwt.encode({"sub": "a" * 256, "exp": exp}, SECRET)
        for bad in (nul, long):
            messages = await _rejected(http, bad)
            assert all("'sub' must be at most 255 characters" in m for m in messages)
