"""What browsers are told: which other origins may call the API (CORS), and the security
headers of every answer, with a Content-Security-Policy on the dashboard page.

A frontend on another origin is the API's main client: `CHAINFOLIO_CORS_ORIGINS` lists the
origins allowed to call it (none by default). Credentials (cookies) are never allowed: the API
reads bearer tokens only, so no origin, `*` included, can ride a user's cookies.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainfolio.core.settings import Settings

DASHBOARD_PATHS = frozenset({"/"})
_EVERY_ANSWER = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def cors_middleware(settings: Settings) -> list[Middleware]:
    """The CORS middleware for the configured origins; none when no origin is allowed."""
    origins = settings.cors_origin_list
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "X-Chainfolio-Cache"],
            max_age=600,
        )
    ]


def dashboard_policy(host: str) -> str:
    """The dashboard's CSP: its own scripts only, fetch and websockets to this origin only."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            # ECharts writes its tooltips as HTML with style attributes; styles cannot run code
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            f"connect-src 'self' ws://{host} wss://{host}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """`nosniff` and `no-referrer` on every HTTP answer; the CSP and `DENY` framing on the
    dashboard page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_EVERY_ANSWER)
        if scope["path"] in DASHBOARD_PATHS:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not host or any(c in host for c in " ;,'\"\r\n"):
                host = "localhost"
            extra += [
                (b"content-security-policy", dashboard_policy(host).encode()),
                (b"x-frame-options", b"DENY"),
            ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
