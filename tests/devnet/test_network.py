"""`Devnet` as an async context manager, and extra tokens for big fund mode."""

from __future__ import annotations

import pytest

from chainfolio.devnet import Devnet, iter_holdings, token_specs
from tests.fixtures.devnet import onchain_holdings

pytestmark = pytest.mark.chain


async def test_async_devnet_with_extra_tokens() -> None:
    async with Devnet(chain_ids=(31338,), wallets=3, extra_tokens=4) as devnet:
        (chain,) = devnet.chains
        assert list(chain.tokens) == [s.symbol for s in token_specs(4)]
        assert [chain.tokens[f"TK0{j}"].decimals for j in range(4)] == [18, 6, 8, 18]
        assert onchain_holdings(chain) == list(iter_holdings(chain))
        node = devnet.node(31338)
    assert not node.running
    assert not devnet.started


def test_duplicate_chain_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Devnet(chain_ids=(1, 1))
