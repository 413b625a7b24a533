"""A running `chainfolio demo` (a real subprocess) and a real Chromium driven by playwright-core.

The demo gets a temporary data directory (its own embedded PostgreSQL) and a free port, and is
started with `--tick 0` so that the chains only change when a test changes them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard.harness import (
    ARTIFACTS,
    Browser,
    DemoProcess,
    browser_unavailable,
    start_demo,
    stop_demo,
)


# Package scope: the demo (3 nodes, PostgreSQL, API) and Chromium are gone once these tests end.
@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """One demo for the dashboard tests, still chains (`--tick 0`)."""
    running = start_demo(tmp_path_factory.mktemp("demo"), "--tick", "0")
    yield running
    stop_demo(running)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Chromium via playwright-core; skipped only when it truly cannot be installed."""
    reason = browser_unavailable()
    if reason is not None:
        pytest.skip(f"browser tests need Chromium and playwright-core: {reason}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = Browser()
    yield driver
    driver.close()
