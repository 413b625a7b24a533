"""The dashboard at `/`: static ES modules and vendored ECharts, served by the app itself."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


async def dashboard_page(_request: Request) -> Response:
    """The single page; it logs in with a token and talks to /graphql."""
    # no-cache: a new release's page must not reference stale modules.
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def dashboard_routes() -> list[BaseRoute]:
    """`/` and its static files under `/static`."""
    return [
        Route("/", dashboard_page, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
