"""In Chromium: the dashboard works under its Content-Security-Policy (no violation in the
console), and a page on another origin can call the API only when CHAINFOLIO_CORS_ORIGINS
allows it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.dashboard.harness import Browser, browser_unavailable
from tests.hardening.conftest import OpenClient, bearer, serve_env
from tests.servers import serve

FOREIGN_PAGE = b"<!doctype html><title>another origin</title><p>frontend</p>"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(FOREIGN_PAGE)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def foreign_origin() -> Iterator[str]:
    """A page on another origin (another port): a separate frontend."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = browser_unavailable()
    if reason is not None:
        pytest.skip(f"browser tests need Chromium and playwright-core: {reason}")
    driver = Browser()
    yield driver
    driver.close()


def _fetch_from(browser: Browser, page: str, api: str, subject: str) -> object:
    """What `fetch` from `page` gets of the API: the status, or the browser's refusal."""
    browser.call("open", url=page, waitReady=False)
    header = bearer(subject)["Authorization"]
    return browser.eval(
        f"""async () => {{
          try {{
            const r = await fetch("{api}/v1/wallets", {{headers: {{Authorization: "{header}"}}}});
            return r.status;
          }} catch (err) {{ return "blocked"; }}
        }}"""
    )


def test_dashboard_runs_under_its_csp(
    database_url: str, tmp_path: Path, browser: Browser, foreign_origin: str
) -> None:
    env = serve_env(database_url, tmp_path, CHAINFOLIO_CORS_ORIGINS=foreign_origin)
    subject = f"csp-{uuid.uuid4().hex[:8]}"
    with serve(env) as base:
        page = httpx.get(f"{base}/")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        before = len(browser.call("errors"))
        token = bearer(subject)["Authorization"].split()[1]
        browser.call("open", url=f"{base}/#token={token}")
        assert browser.eval("() => document.body.dataset.ready") == "true"
        # live: the subscription's websocket is allowed by connect-src
        browser.wait_for("() => document.querySelector('#live-status').dataset.state === 'live'")
        stored = browser.eval(
            "() => [localStorage.length, !!sessionStorage.getItem('chainfolio.token')]"
        )
        assert stored == [0, True]
        errors = browser.call("errors")[before:]
        assert not [e for e in errors if "Content Security Policy" in e], errors
        # the allowed origin may call the API; the token is checked as usual
        assert _fetch_from(browser, foreign_origin, base, subject) == 200
    with serve(serve_env(database_url, tmp_path)) as base:
        # no origin allowed (the default): the browser withholds the answer
        assert _fetch_from(browser, foreign_origin, base, subject) == "blocked"


async def test_cors_allow_list(open_client: OpenClient) -> None:
    allowed, other = "https://app.example", "https://evil.example"
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with open_client(cors_origins=f"{allowed}/, https://b.example") as http:
        ok = await http.options("/v1/wallets", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "access-control-allow-credentials" not in ok.headers
        refused = await http.options("/v1/wallets", headers={"Origin": other, **preflight})
        assert "access-control-allow-origin" not in refused.headers
        # refusals carry the CORS headers too, so the frontend can read the error
        unauthenticated = await http.get("/v1/wallets", headers={"Origin": allowed})
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["access-control-allow-origin"] == allowed
    async with open_client() as http:  # the default: no origin
        answer = await http.options("/v1/wallets", headers={"Origin": allowed, **preflight})
        assert "access-control-allow-origin" not in answer.headers
