"""Start `chainfolio` sub-commands as real processes for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(
    env: dict[str, str],
    *extra: str,
    stop_signal: signal.Signals = signal.SIGTERM,
    log_path: Path | None = None,
) -> Iterator[str]:
    """`chainfolio serve` on a free port until the block ends (then `stop_signal`); yields its
    base URL. Its output goes to `log_path` or a temporary file."""
    port = free_port()
    # Output goes to a file: a pipe nobody drains fills up (every websocket is logged) and
    # then blocks the server mid-test.
    with log_path.open("w+b") if log_path is not None else tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chainfolio", "serve", "--port", str(port), *extra],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                proc.kill()
            if proc.poll() is not None:
                proc.wait()
                log.seek(0)
                raise RuntimeError(f"chainfolio serve did not start:\n{log.read().decode()}")
            yield base
        finally:
            proc.send_signal(stop_signal)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def worker_process(
    env: dict[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`chainfolio worker` until the block ends; its output goes to `log` or a temporary file
    (never a pipe nobody drains)."""
    with log.open("wb") if log is not None else tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chainfolio", "worker"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
