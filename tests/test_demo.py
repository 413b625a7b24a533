"""The demo's live ticks on the session devnet: withdrawals never fail, failures are one line."""

from __future__ import annotations

import numpy as np
import pytest

from chainfolio.demo.market import Market, failure_line, tick, token_balance
from chainfolio.devnet import Devnet, transfer_token

WITHDRAWAL_TICK = 5  # the next tick (6) withdraws USDC from the chain's first tracked wallet


def test_withdrawals_move_only_what_the_wallet_holds(restore_devnet: Devnet) -> None:
    chain = restore_devnet.chain(1)
    mine, outsider = chain.wallets[0], chain.wallets[-2]
    held = token_balance(chain, "USDC", mine)
    transfer_token(chain, symbol="USDC", sender=mine, to=outsider, amount=held - 5 * 10**6)
    market = Market(
        answers={k: chain.feed_answers[k] for k in ("ETH", "BTC")},
        rng=np.random.default_rng(7),
        tick=WITHDRAWAL_TICK,
    )
    note = tick([chain], market)  # wants 100 to 1,000 USDC, 5 are there
    assert "withdrawal 5.00 USDC on chain 1" in note
    assert token_balance(chain, "USDC", mine) == 0
    market.tick = WITHDRAWAL_TICK + 6  # the next withdrawal from the same, now empty, wallet
    note = tick([chain], market)
    assert "withdrawal" not in note
    assert token_balance(chain, "USDC", mine) == 0


def test_a_revert_is_one_line_with_its_reason(restore_devnet: Devnet) -> None:
    chain = restore_devnet.chain(1)
    mine, outsider = chain.wallets[0], chain.wallets[-2]
    held = token_balance(chain, "USDC", mine)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - web3 chooses the class
        transfer_token(chain, symbol="USDC", sender=mine, to=outsider, amount=held + 1)
    line = failure_line(failed.value)
    assert line == "reverted: ERC20: transfer amount exceeds balance", (line, repr(failed.value))
