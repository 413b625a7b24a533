"""Server processes for the benchmarks: a free port, a process run until a block ends, and a
database of its own for a run."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

from chainfolio.storage.database import to_asyncpg_dsn


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


async def create_database(url: str, prefix: str) -> tuple[str, str]:
    """A fresh database beside the one `url` names: (its name, its URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return name, url.rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str, name: str) -> None:
    """Drop a database `create_database` made, sessions and all."""
    admin = await asyncpg.connect(to_asyncpg_dsn(url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
