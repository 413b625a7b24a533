"""Glue shared by the HTTP routes: state accessors, authentication, the error envelope."""

from __future__ import annotations

from decimal import Decimal

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

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
        subject = await self._verifier.subject(authorization)
        return await self._ensure(subject)

    async def caller_of_token(self, token: str) -> Caller:
        """Same, from a raw token (websocket query parameter or connection_init payload)."""
        return await self._ensure(await self._verifier.subject_of_token(token))

    async def _ensure(self, subject: str) -> Caller:
        if self._limiter is not None:
            await self._limiter.check_user(subject)
        known = self._known.get(subject)
        if known is not None:
            return known
        try:
            async with self._services.engine.begin() as db:
                await ensure_user(db, subject=subject)
        except Exception as exc:
            # before any route runs: GraphQL must still answer in its own error shape
            if is_database_unavailable(exc):
                raise SourceUnavailable("database unavailable, try again shortly") from exc
            raise
        caller = self._known[subject] = Caller(user_id_for(subject), subject)
        return caller


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


def number(value: Decimal | None) -> float | None:
    """A Decimal as a JSON number for the seed's REST shapes (exact forms are also given);
    a negative zero is sent as 0."""
    return None if value is None else float(value) + 0.0
