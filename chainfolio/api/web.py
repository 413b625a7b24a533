"""Glue shared by the HTTP routes: state accessors, authentication, the error envelope."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from decimal import Decimal

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketState

from chainfolio.api.auth import TokenVerifier
from chainfolio.api.ratelimit import RateLimiter
from chainfolio.core.errors import ChainfolioError, SourceUnavailable
from chainfolio.resolvers.context import Caller, Services
from chainfolio.storage.accounts import ensure_user, user_id_for
from chainfolio.storage.database import is_database_unavailable


class Authenticator:
    """Turns a bearer header into a Caller, creating the user on first sight.

    Every authentication counts against the user's rate limit when a limiter is given.
    """

    def __init__(self, services: Services, limiter: RateLimiter | None = None) -> None:
        self._services = services
        self._verifier = TokenVerifier(services.settings)
        self._limiter = limiter
        self._known: dict[str, Caller] = {}  # subjects whose user row exists

    async def caller(self, authorization: str | None) -> Caller:
        """The authenticated caller, or Unauthorized."""
        return await self._ensure(*await self._verifier.claims(authorization))

    async def caller_of_token(self, token: str) -> Caller:
        """Same, from a raw token (websocket query parameter or connection_init payload)."""
        return await self._ensure(*await self._verifier.claims_of_token(token))

    async def _ensure(self, subject: str, expires_at: float) -> Caller:
        if self._limiter is not None:
            await self._limiter.check_user(subject)
        known = self._known.get(subject)
        if known is not None:
            return dataclasses.replace(known, expires_at=expires_at)
        try:
            async with self._services.engine.begin() as db:
                await ensure_user(db, subject=subject)
        except Exception as exc:
            # before any route runs: GraphQL must still answer in its own error shape
            if is_database_unavailable(exc):
                raise SourceUnavailable("database unavailable, try again shortly") from exc
            raise
        caller = self._known[subject] = Caller(user_id_for(subject), subject)
        return dataclasses.replace(caller, expires_at=expires_at)


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


def error_response(exc: ChainfolioError) -> JSONResponse:
    """The REST envelope for an error, with its HTTP status."""
    return JSONResponse(
        {"success": False, "error": {"code": exc.code, "message": exc.message}},
        status_code=exc.status,
        headers=_error_headers(exc),
    )


def graphql_error_response(exc: ChainfolioError) -> JSONResponse:
    """A GraphQL-shaped error (`errors[].extensions.code`) refused before execution."""
    return JSONResponse(
        {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
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
