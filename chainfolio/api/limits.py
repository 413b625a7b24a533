"""An ASGI middleware refusing abusive HTTP requests before any work: per-IP rate limit and
request body size cap.

Refusals use the shape the route speaks: GraphQL errors (`errors[].extensions.code`) on
`/graphql`, the REST envelope elsewhere; both with the HTTP status (429 + `Retry-After`,
413). The per-user limit is applied where the token is verified (`web.Authenticator`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainfolio.api.ratelimit import RateLimiter
from chainfolio.api.web import error_response, graphql_error_response
from chainfolio.core.errors import ChainfolioError, PayloadTooLarge, RateLimited

# Probes and scrapers must never be throttled.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class _BodyTooLarge(Exception):
    """Raised from `receive` when a body without Content-Length outgrows the cap."""


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body larger than {cap} bytes")


def refusal(scope: Scope, exc: ChainfolioError) -> ASGIApp:
    """The response for a request refused before reaching its route."""
    if scope["path"].startswith("/graphql"):
        return graphql_error_response(exc)
    return error_response(exc)


class RequestLimits:
    """Per-IP rate limit and body size cap for every HTTP request (websockets: rate only)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        # opened by the app lifespan (it may need a Redis connection)
        limiter: RateLimiter | None = getattr(scope["app"].state, "rate_limiter", None)
        if limiter is not None and scope.get("client"):
            try:
                await limiter.check_ip(scope["client"][0])
            except RateLimited as exc:
                if scope["type"] == "http" or "websocket.http.response" in scope.get(
                    "extensions", {}
                ):
                    # a websocket handshake gets the same HTTP 429 where the server can send one
                    await refusal(scope, exc)(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008, "reason": exc.message})
                return
        if scope["type"] == "http" and self.max_body_bytes > 0:
            await self._capped(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > cap:
                await refusal(scope, _too_large(cap))(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server enforces Content-Length
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if started:
                raise
            await refusal(scope, _too_large(cap))(scope, receive, send)
