"""`chainfolio demo` as a subprocess and Chromium driven by playwright-core (tests, benchmark)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chainfolio.devnet import DevnetDeployment, TokenDeployment
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).parent / "node"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path(os.environ.get("CHAINFOLIO_CHROMIUM", "/usr/bin/chromium"))
HANG_GUARD_S = 600.0
"""Not a performance limit: a condition still false after this long means the test is stuck."""


def wait_until(condition: Callable[[], object], what: str) -> None:
    """Poll `condition` until it is true; fail (rather than hang) if it never becomes true."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {HANG_GUARD_S:.0f} s for {what}")
        time.sleep(0.3)


@dataclass
class DemoProcess:
    """A `chainfolio demo` subprocess and what it announced in its JSON file."""

    process: subprocess.Popen[bytes]
    info: dict[str, Any]
    log_path: Path
    data_dir: Path
    chains: dict[int, DevnetDeployment] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def token(self) -> str:
        return str(self.info["token"])

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL query as the demo user; fail on errors."""
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def subscribers(self) -> float:
        """The demo's `chainfolio_bus_subscribers` gauge, from `/metrics`."""
        for line in httpx.get(f"{self.url}/metrics", timeout=60).text.splitlines():
            if line.startswith("chainfolio_bus_subscribers "):
                return float(line.split()[1])
        raise AssertionError("no chainfolio_bus_subscribers in /metrics")


def _deployment(raw: dict[str, Any]) -> DevnetDeployment:
    tokens = {k: TokenDeployment(**v) for k, v in raw["tokens"].items()}
    return DevnetDeployment(**{**raw, "tokens": tokens})


def start_demo(data_dir: Path, *args: str) -> DemoProcess:
    """Start `chainfolio demo` and wait until it has written its JSON file."""
    json_path = data_dir / "demo.json"
    json_path.unlink(missing_ok=True)
    log_path = data_dir / f"demo-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items() if k != "CHAINFOLIO_DATABASE_URL"}
    env["CHAINFOLIO_DATA_DIR"] = str(data_dir)
    with log_path.open("wb") as log:  # a file, not a pipe: an unread pipe would block the demo
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chainfolio",
                "demo",
                "--port",
                str(free_port()),
                "--json",
                str(json_path),
                *args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def announced() -> bool:
        if process.poll() is not None:
            output = log_path.read_text()
            raise RuntimeError(f"chainfolio demo exited {process.returncode}:\n{output}")
        return json_path.exists()

    wait_until(announced, "chainfolio demo to write its JSON file")
    info = json.loads(json_path.read_text())
    demo = DemoProcess(process, info, log_path, data_dir)
    demo.chains = {c["chain_id"]: _deployment(c) for c in info["chains"]}
    return demo


def stop_demo(demo: DemoProcess) -> int:
    """SIGTERM the demo and wait for it; return its exit code."""
    if demo.process.poll() is None:
        demo.process.send_signal(signal.SIGTERM)
    return demo.process.wait()


def browser_unavailable() -> str | None:
    """Why the browser cannot run, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not CHROMIUM.exists() or not (NODE_DIR / "node_modules" / "playwright-core").exists():
        # The project's own installer (also run by .ci/run); idempotent.
        subprocess.run([str(ROOT / "scripts" / "install-browser.sh")], check=False)
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing and scripts/install-browser.sh could not install it"
    if not (NODE_DIR / "node_modules" / "playwright-core").exists():
        return "playwright-core could not be installed (npm ci in tests/dashboard/node failed)"
    return None


class Browser:
    """A headless Chromium page, driven through tests/dashboard/node/driver.mjs."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [str(shutil.which("node")), str(NODE_DIR / "driver.mjs")],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "CHAINFOLIO_CHROMIUM": str(CHROMIUM)},
        )

    def call(self, cmd: str, **args: Any) -> Any:
        """Run one driver command; raise with the driver's message when it fails."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"browser driver exited ({self._process.poll()})")
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError(f"browser {cmd} failed: {answer['error']}")
        return answer["value"]

    def eval(self, expr: str) -> Any:
        return self.call("eval", expr=expr)

    def wait_for(self, expr: str, timeout_ms: int = 120_000) -> Any:
        return self.call("waitFor", expr=expr, timeoutMs=timeout_ms)

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps({"cmd": "close"}) + "\n")
            self._process.stdin.flush()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
