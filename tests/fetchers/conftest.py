"""Shared helpers for fetcher tests that run against the Hardhat devnet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from chainfolio.devnet import Devnet, DevnetDeployment
from chainfolio.fetchers import ChainsConfig, ChainSet, config_from_devnet, open_chains
from chainfolio.fetchers.config import RpcSettings

FAST_RPC = RpcSettings(timeout_s=2.0, backoff_s=0.0)
"""Short timeouts, no back-off: fault tests stay quick and deterministic."""


def devnet_config(deployments: Sequence[DevnetDeployment], **overrides: object) -> ChainsConfig:
    """The fetchers' config for these devnet chains (decimals read on chain)."""
    overrides.setdefault("rpc", FAST_RPC)
    return config_from_devnet(deployments, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def chains(devnet: Devnet) -> AsyncIterator[ChainSet]:
    """A ChainSet over every session devnet chain."""
    async with open_chains(devnet_config(devnet.chains)) as opened:
        yield opened
