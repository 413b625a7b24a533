"""Several devnet chains at once: start nodes, deploy, and tear everything down together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

from chainfolio.devnet.deploy import DevnetDeployment, deploy
from chainfolio.devnet.node import HardhatNode, devnet_dir
from chainfolio.devnet.wallets import DEFAULT_SEED

DEFAULT_CHAIN_IDS = (1, 137, 42161)


class Devnet:
    """Hardhat nodes, one per chain id, each with the devnet contracts deployed and funded.

    Use as a context manager (`with` or `async with`) or call `start`/`stop`. After `start`,
    `chains[i]` describes the chain of `chain_ids[i]`.
    """

    def __init__(
        self,
        *,
        chain_ids: Sequence[int] = DEFAULT_CHAIN_IDS,
        wallets: int = 20,
        extra_tokens: int = 0,
        position_wallets: int = 20,
        seed: str = DEFAULT_SEED,
        directory: Path | None = None,
    ) -> None:
        if len(set(chain_ids)) != len(chain_ids):
            raise ValueError(f"duplicate chain ids: {list(chain_ids)}")
        self.chain_ids = list(chain_ids)
        self.wallets = wallets
        self.extra_tokens = extra_tokens
        self.position_wallets = position_wallets
        self.seed = seed
        self.directory = devnet_dir() if directory is None else directory
        self.nodes: list[HardhatNode] = []
        self.chains: list[DevnetDeployment] = []

    @property
    def started(self) -> bool:
        """Whether `start` completed and `stop` has not run since."""
        return bool(self.chains)

    def start(self, *, timeout: float = 120.0) -> Self:
        """Install Hardhat if needed, start every node, deploy and fund; all or nothing."""
        if self.started:
            return self
        try:
            self.nodes = [HardhatNode(chain_id=c, directory=self.directory) for c in self.chain_ids]
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_ready(timeout=timeout)
            with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
                self.chains = list(pool.map(self._deploy, self.nodes))
        except BaseException:
            self.stop()
            raise
        return self

    def _deploy(self, node: HardhatNode) -> DevnetDeployment:
        return deploy(
            node.rpc_url,
            wallets=self.wallets,
            extra_tokens=self.extra_tokens,
            position_wallets=self.position_wallets,
            seed=self.seed,
        )

    def stop(self) -> None:
        """Stop every node (a paused one too); safe to call twice."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.chains = []

    def _index(self, chain_id: int) -> int:
        try:
            return self.chain_ids.index(chain_id)
        except ValueError:
            raise KeyError(f"no devnet chain {chain_id}; have {self.chain_ids}") from None

    def chain(self, chain_id: int) -> DevnetDeployment:
        """The deployment on `chain_id`."""
        return self.chains[self._index(chain_id)]

    def node(self, chain_id: int) -> HardhatNode:
        """The node serving `chain_id` (pause, resume, kill it for fault tests)."""
        return self.nodes[self._index(chain_id)]

    def restart(self, chain_id: int, *, redeploy: bool = True) -> DevnetDeployment | None:
        """Kill `chain_id`'s node and start a fresh one on the same port.

        With `redeploy`, the contracts are deployed again; deployment is deterministic, so the
        returned description equals the old one (same addresses, same balances).
        """
        index = self._index(chain_id)
        node = self.nodes[index]
        node.restart()
        if not redeploy:
            return None
        self.chains[index] = self._deploy(node)
        return self.chains[index]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        return f"Devnet(chain_ids={self.chain_ids}, nodes={self.nodes})"


def start_devnet(
    chain_ids: Sequence[int] = DEFAULT_CHAIN_IDS,
    wallets: int = 20,
    *,
    extra_tokens: int = 0,
    position_wallets: int = 20,
    seed: str = DEFAULT_SEED,
    directory: Path | None = None,
    timeout: float = 120.0,
) -> Devnet:
    """Start a devnet and return it, already running; `with start_devnet() as devnet:` stops it."""
    devnet = Devnet(
        chain_ids=chain_ids,
        wallets=wallets,
        extra_tokens=extra_tokens,
        position_wallets=position_wallets,
        seed=seed,
        directory=directory,
    )
    return devnet.start(timeout=timeout)
