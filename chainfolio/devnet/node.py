"""Install Hardhat from the project's own lock file and run `hardhat node` processes.

Hardhat lives in a cache directory (`CHAINFOLIO_DEVNET_DIR`, else
`user_cache_dir("chainfolio")/devnet-node-<lock digest>`), never inside the package: the node
files shipped in `chainfolio/devnet/node/` are copied there and `npm ci` runs when
`node_modules` is missing or the lock file changed. Each `HardhatNode` is one chain on one
loopback port, in its own process group so that stopping it leaves no orphans.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import platformdirs

PACKAGE_NODE_DIR = Path(__file__).parent / "node"
"""The node project shipped with chainfolio: package.json, lock, hardhat config, compile.js."""

NODE_FILES = ("package.json", "package-lock.json", "hardhat.config.js", "compile.js")
_INSTALL_MARKER = ".chainfolio-lock.sha256"
_STOP_TIMEOUT = 5.0

_running: weakref.WeakSet[HardhatNode] = weakref.WeakSet()


class DevnetError(RuntimeError):
    """The local devnet could not be installed, started or set up."""


def devnet_dir() -> Path:
    """Where Hardhat is installed and nodes keep their logs: by default one directory per
    version of the shipped lock file, so that two checkouts (or versions) of chainfolio on one
    machine never reinstall each other's `node_modules` under a running node."""
    override = os.environ.get("CHAINFOLIO_DEVNET_DIR")
    if override:
        return Path(override).expanduser()
    cache = Path(platformdirs.user_cache_dir("chainfolio"))
    return cache / f"devnet-node-{_lock_digest()[:12]}"


def find_executable(name: str) -> str:
    """Absolute path of a Node.js tool (`node`, `npm`); raise if it is missing."""
    path = shutil.which(name)
    if path is None:
        raise DevnetError(f"`{name}` not found on PATH: the devnet needs Node.js 18+ and npm")
    return path


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PACKAGE_NODE_DIR / name).read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _install_lock(directory: Path) -> Iterator[None]:
    # Several test sessions may share one cache directory; only one may run npm at a time.
    with (directory / ".install.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sync_file(source: Path, target: Path) -> None:
    content = source.read_bytes()
    if target.exists() and target.read_bytes() == content:
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    tmp.replace(target)


def ensure_installed(directory: Path | None = None) -> Path:
    """Make `directory` hold the shipped node files and a matching `node_modules`; return it."""
    directory = devnet_dir() if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    with _install_lock(directory):
        for name in NODE_FILES:
            _sync_file(PACKAGE_NODE_DIR / name, directory / name)
        marker = directory / "node_modules" / _INSTALL_MARKER
        digest = _lock_digest()
        if marker.exists() and marker.read_text().strip() == digest:
            return directory
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [find_executable("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DevnetError(f"npm ci failed in {directory}:\n{result.stdout}\n{result.stderr}")
        marker.write_text(digest + "\n")
    return directory


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rpc_chain_id(url: str, timeout: float) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(  # noqa: S310 - loopback http URL built by us
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(json.loads(response.read())["result"], 16)
    except (OSError, urllib.error.URLError, KeyError, ValueError):
        return None


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has exited, without reaping it (its pid stays reserved)."""
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class HardhatNode:
    """One `hardhat node` process serving one chain id on one loopback port."""

    def __init__(self, *, chain_id: int, port: int | None = None, directory: Path | None = None):
        self.chain_id = chain_id
        # Until first ready, a port we picked may be taken by someone else: then pick another.
        # Afterwards clients know the port, and a restart must keep it.
        self._may_move_port = port is None
        self.port = free_port() if port is None else port
        self.directory = devnet_dir() if directory is None else directory
        self.log_path = self.directory / "logs" / f"chain-{chain_id}-port-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._paused = False
        self._lock = threading.Lock()

    @property
    def rpc_url(self) -> str:
        """HTTP JSON-RPC endpoint of this node."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id) while running."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process is alive (paused counts as alive)."""
        process = self._process
        return process is not None and not _exited(process)

    @property
    def paused(self) -> bool:
        """Whether the process is stopped with SIGSTOP."""
        return self._paused

    def start(self, *, timeout: float = 60.0) -> None:
        """Spawn the node and wait until it answers `eth_chainId` with our chain id."""
        self.spawn()
        self.wait_ready(timeout=timeout)

    def spawn(self) -> None:
        """Spawn the node process without waiting for it (see `wait_ready`)."""
        ensure_installed(self.directory)
        with self._lock:
            if self.running:
                raise DevnetError(f"chain {self.chain_id} node is already running")
            cli = self.directory / "node_modules" / "hardhat" / "internal" / "cli" / "bootstrap.js"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("wb")
            env = {
                **os.environ,
                "CHAINFOLIO_DEVNET_CHAIN_ID": str(self.chain_id),
                "CHAINFOLIO_DEVNET_PARENT_PID": str(os.getpid()),
                "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
                "HARDHAT_HIDE_SOLIDITY_SURVEY_MESSAGE": "true",
                "DO_NOT_TRACK": "1",
                "NO_COLOR": "1",
            }
            argv = [find_executable("node"), str(cli), "node"]
            argv += ["--hostname", "127.0.0.1", "--port", str(self.port)]
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Own process group: Ctrl-C in a terminal reaches only us, and we stop the whole
                # group ourselves, so nothing survives us.
                start_new_session=True,
            )
            self._paused = False
            _running.add(self)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Block until the node answers with the right chain id; raise if it died or timed out."""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                self.stop()
                raise DevnetError(f"chain {self.chain_id} node not ready after {timeout:.0f} s")
            process = self._process
            if process is None or _exited(process):
                if self._may_move_port and "EADDRINUSE" in self.log_tail():
                    self._respawn_elsewhere()
                    continue
                raise DevnetError(f"chain {self.chain_id} node exited early:\n{self.log_tail()}")
            answered = _rpc_chain_id(self.rpc_url, timeout=1.0)
            if answered == self.chain_id:
                self._may_move_port = False
                return
            if answered is not None:
                if self._may_move_port:  # someone else's node took the port before ours could
                    self._respawn_elsewhere()
                    continue
                raise DevnetError(
                    f"port {self.port} answers chain id {answered}, expected {self.chain_id}"
                )
            time.sleep(0.05)

    def _respawn_elsewhere(self) -> None:
        with self._lock:
            self._signal(signal.SIGKILL)
            self._reap()
        self.port = free_port()
        self.log_path = self.log_path.with_name(f"chain-{self.chain_id}-port-{self.port}.log")
        self.spawn()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the node printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, signum: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): its port accepts connections but never answers."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Thaw a paused node (SIGCONT)."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """Kill the node abruptly (SIGKILL), as a crash would; its chain state is lost."""
        with self._lock:
            self._signal(signal.SIGKILL)
            self._reap()

    def stop(self) -> None:
        """Stop the node gracefully (SIGTERM, then SIGKILL after a few seconds)."""
        with self._lock:
            process = self._process
            if process is None:
                return
            self._signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)  # a paused process only handles SIGTERM once thawed
            deadline = time.monotonic() + _STOP_TIMEOUT
            while not _exited(process) and time.monotonic() < deadline:
                time.sleep(0.02)
            self._reap()
            # Logs are for post-mortems of nodes that died; a clean stop leaves nothing behind.
            self.log_path.unlink(missing_ok=True)

    def _reap(self) -> None:
        process = self._process
        if process is not None:
            # Until the leader is reaped its pid (the group id) cannot be reused, so killing the
            # group here reaches only what the node left behind, and nothing outlives it.
            self._signal(signal.SIGKILL)
            process.wait()
        if self._log is not None:
            self._log.close()
        self._process = None
        self._log = None
        self._paused = False
        _running.discard(self)

    def restart(self, *, timeout: float = 60.0) -> None:
        """Kill the node and start a fresh one (empty chain) on the same port."""
        self.kill()
        self.start(timeout=timeout)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "paused" if self._paused else "running" if self.running else "stopped"
        return f"HardhatNode(chain_id={self.chain_id}, port={self.port}, {state})"


def stop_all() -> None:
    """Stop every node this process started and has not stopped yet."""
    for node in list(_running):
        node.stop()


atexit.register(stop_all)
