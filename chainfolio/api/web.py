"""Glue shared by the HTTP routes: state accessors, authentication, the error envelope."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketState

from chainfolio.api.auth import Identity, TokenVerifier
from chainfolio.api.ratelimit import RateLimiter
from chainfolio.api.slots import MemorySlots
from chainfolio.api.sockets import SocketSlots
from chainfolio.core.errors import ChainfolioError, InternalError, SourceUnavailable
from chainfolio.core.logs import request_id
from chainfolio.resolvers.context import Caller, Services
from chainfolio.storage.accounts import ensure_user
from chainfolio.storage.database import is_database_unavailable


class JSONBody(JSONResponse):
    """A JSON response rendered by orjson: Starlette's `json.dumps` cost ~0.5 ms of a 3 ms
    uncached `/v1/portfolio` (36 holdings). Compact and UTF-8 like Starlette's; floats in
    shortest round-trip form (an exponent may be spelled `1e16` where `json` wrote `1e+16`)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class Authenticator:
    """Turns a bearer header into a Caller, creating the user on first sight.

    Every authentication counts against the user's rate limit when a limiter is given.
    """

    def __init__(
        self,
        services: Services,
        limiter: RateLimiter | None = None,
        sockets: SocketSlots | None = None,
    ) -> None:
        self._services = services
        self._verifier = TokenVerifier(services.settings)
        self._limiter = limiter
        self.sockets = sockets or MemorySlots(services.settings.ws_max_sockets_per_user)
        self._known: OrderedDict[Identity, Caller] = OrderedDict()  # users whose row exists

    async def caller(self, authorization: str | None) -> Caller:
        """The authenticated caller, or Unauthorized."""
        return await self._ensure(*await self._verifier.claims(authorization))

    async def caller_of_token(self, token: str) -> Caller:
        """Same, from a raw token (websocket query parameter or connection_init payload)."""
        return await self._ensure(*await self._verifier.claims_of_token(token))

    async def count(self, caller: Caller) -> None:
        """One more operation of `caller` against the per-user rate limit (websocket
        messages count like HTTP requests)."""
        if self._limiter is not None:
            await self._limiter.check_user(caller.rate_key)

    async def _ensure(self, identity: Identity, expires_at: float) -> Caller:
        rate_key = _rate_key(identity)
        if self._limiter is not None:
            await self._limiter.check_user(rate_key)
        known = self._known.get(identity)
        if known is not None:
            self._known.move_to_end(identity)
            return dataclasses.replace(known, expires_at=expires_at)
        try:
            async with self._services.engine.begin() as db:
                user_id = await ensure_user(db, subject=identity.subject, issuer=identity.issuer)
        except Exception as exc:
            # before any route runs: GraphQL must still answer in its own error shape
            if is_database_unavailable(exc):
                raise SourceUnavailable("database unavailable, try again shortly") from exc
            raise
        caller = self._known[identity] = Caller(user_id, identity.subject, rate_key)
        if len(self._known) > KNOWN_USERS:
            self._known.popitem(last=False)
        return dataclasses.replace(caller, expires_at=expires_at)


KNOWN_USERS = 10_000


def _rate_key(identity: Identity) -> str:
    # a fixed-length key per exact (issuer, subject): subjects may be 255 characters
    exact = f"{len(identity.issuer)}:{identity.issuer}{identity.subject}".encode()
    return hashlib.blake2b(exact, digest_size=16).hexdigest()


def services_of(conn: HTTPConnection) -> Services:
    """The process's services, set by the lifespan."""
    services: Services = conn.app.state.services
    return services


def authenticator_of(conn: HTTPConnection) -> Authenticator:
    """The process's authenticator, set by the lifespan."""
    auth: Authenticator = conn.app.state.authenticator
    return auth


def _error_headers(exc: ChainfolioError) -> dict[str, str] | None:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    return headers


def error_fields(exc: ChainfolioError) -> dict[str, object]:
    """`code` and `message` of an error (and the request id of an internal one): the same
    fields in REST envelopes, GraphQL `extensions` and `/v1/ws` error messages."""
    fields: dict[str, object] = {"code": exc.code, "message": exc.message}
    if exc.code == InternalError.code:
        fields["requestId"] = request_id.get()
    return fields


def error_response(exc: ChainfolioError) -> JSONBody:
    """The REST envelope for an error, with its HTTP status."""
    return JSONBody(
        {"success": False, "error": error_fields(exc)},
        status_code=exc.status,
        headers=_error_headers(exc),
    )


def graphql_error_response(exc: ChainfolioError) -> JSONBody:
    """A GraphQL-shaped error (`errors[].extensions.code`) refused before execution."""
    fields = error_fields(exc)
    message = fields.pop("message")
    return JSONBody(
        {"errors": [{"message": message, "extensions": fields}]},
        status_code=exc.status,
        headers=_error_headers(exc),
    )


def close_code(exc: ChainfolioError) -> tuple[int, str]:
    """The websocket close code and reason for an error refusing a connection: 4000 + the
    HTTP status (4401 unauthenticated, 4429 rate limited, 4503 unavailable)."""
    return 4000 + exc.status, "Unauthorized" if exc.status == 401 else exc.code


CLOSE_TOKEN_EXPIRED = 4401
"""A websocket is closed with this code at its token's `exp`; the client reconnects with a
fresh token (the same code as refusing a bad token at connect)."""

log = logging.getLogger(__name__)


def close_at_expiry(ws: WebSocket, caller: Caller) -> asyncio.Task[None] | None:
    """Close `ws` with 4401 "token expired" at the caller's token `exp` (every websocket
    protocol does this). Cancel the task when the connection ends first."""
    expires_at = caller.expires_at
    if expires_at is None:
        return None

    async def close_then() -> None:
        await asyncio.sleep(max(expires_at - time.time(), 0.0))
        if ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):  # the client left meanwhile
                await ws.close(code=CLOSE_TOKEN_EXPIRED, reason="token expired")
            log.info("websocket of %s closed: token expired", caller.subject)

    return asyncio.create_task(close_then(), name="token-expiry")


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a helper task of a connection and wait for it."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def number(value: Decimal | None) -> float | None:
    """A Decimal as a JSON number for the seed's REST shapes (exact forms are also given);
    a negative zero is sent as 0."""
    return None if value is None else float(value) + 0.0
