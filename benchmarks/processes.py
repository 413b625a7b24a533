"""Server processes for the benchmarks: a free port, and a process run until a block ends."""

from __future__ import annotations

import os
import socket
import subprocess
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


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.TransportError:
        return False


@contextmanager
def running(
    argv: list[str], env: dict[str, str], ready_url: str, cwd: Path | None = None
) -> Iterator[int]:
    """Run `argv` until the block ends, once `ready_url` answers; yields its pid.

    Its output goes to a file: a pipe nobody drains would fill up and stall the server.
    """
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while not _answers(ready_url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{argv} did not start:\n{log.read().decode()}")
                time.sleep(0.2)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
