"""JWT bearer authentication: HS256 with the configured secret, or RS256 through a JWKS URL."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import jwt

from chainfolio.core.errors import SourceUnavailable, Unauthorized
from chainfolio.core.inputs import has_control_chars
from chainfolio.core.settings import Settings
from chainfolio.storage.accounts import MAX_IDENTITY_CHARS, NO_ISSUER

_ASYMMETRIC = {"RS256", "RS384", "RS512", "ES256", "ES384"}
# A token verified once is taken as verified again for this long (never past its `exp`): a
# signing key withdrawn from the JWKS stops being accepted at most this much later.
VERIFIED_FOR_S = 300.0
VERIFIED_TOKENS = 10_000


class Identity(NamedTuple):
    """Who a token names: its exact `iss` (empty without one) and `sub` claims."""

    issuer: str
    subject: str


def _claim(claims: dict[str, Any], name: str, *, required: bool) -> str:
    value = claims.get(name)
    if value is None and not required:
        return NO_ISSUER
    if not isinstance(value, str) or not value:
        raise Unauthorized(f"invalid token: '{name}' must be a non-empty string")
    if len(value) > MAX_IDENTITY_CHARS or has_control_chars(value):
        raise Unauthorized(
            f"invalid token: '{name}' must be at most {MAX_IDENTITY_CHARS} characters "
            "without control characters"
        )
    return value


class TokenVerifier:
    """Verifies bearer tokens; the exact (`iss`, `sub`) pair names the user.

    Verified tokens are remembered (at most `VERIFIED_TOKENS`, each until its `exp` and for at
    most `VERIFIED_FOR_S`): a client sends the same token with every request, and verifying
    an HS256 signature and the claims cost about a quarter of a cached answer's time.
    """

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        self._verified: OrderedDict[str, tuple[Identity, float, float]] = OrderedDict()

    async def claims(self, authorization: str | None) -> tuple[Identity, float]:
        """The identity and `exp` from an `Authorization: Bearer …` value, or Unauthorized."""
        if not authorization:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <JWT>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("malformed Authorization header: expected 'Bearer <JWT>'")
        return await self.claims_of_token(token.strip())

    async def claims_of_token(self, token: str) -> tuple[Identity, float]:
        """The identity and `exp` (Unix seconds) of a raw JWT, or Unauthorized with the reason."""
        remembered = self._verified.get(token)
        if remembered is not None:
            identity, expires, until = remembered
            if until > time.time():
                return identity, expires
            del self._verified[token]
        identity, expires = await self._verify(token)
        self._verified[token] = (identity, expires, min(expires, time.time() + VERIFIED_FOR_S))
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return identity, expires

    async def _verify(self, token: str) -> tuple[Identity, float]:
        key: Any = self._secret
        algorithms = [self._algorithm]
        if self._jwks is not None:
            jwks = self._jwks
            try:
                signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientConnectionError as exc:
                # the identity provider is down: not the caller's fault, retry later
                raise SourceUnavailable(f"cannot fetch the JWKS to verify tokens: {exc}") from exc
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid token: {exc}") from exc
            key = signing_key.key
            algorithms = sorted(_ASYMMETRIC)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        identity = Identity(
            _claim(claims, "iss", required=self._issuer is not None),
            _claim(claims, "sub", required=True),
        )
        return identity, float(claims["exp"])


def issue_token(settings: Settings, *, subject: str, ttl: timedelta = timedelta(days=30)) -> str:
    """A dev token signed with the configured HS256 secret."""
    now = datetime.now(UTC)
    payload = {"sub": subject, "iat": now, "exp": now + ttl}
    if settings.jwt_audience:
        payload["aud"] = settings.jwt_audience
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm="HS256")
