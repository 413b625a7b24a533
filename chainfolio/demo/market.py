"""The demo's live market: every few seconds the devnet's ETH and BTC feeds move and, now and
then, a tracked wallet receives a deposit or makes a withdrawal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from web3.exceptions import ContractLogicError

from chainfolio.devnet import (
    DevnetDeployment,
    encode_call,
    set_price,
    transfer_native,
    transfer_token,
    web3_for,
)
from chainfolio.fetchers.multicall import revert_reason

TRACKED_WALLETS = 2
"""Devnet wallets 0 and 1 of each chain belong to the demo user; the others are outsiders."""


@dataclass
class Market:
    """The devnet's live ETH/BTC answers (8 decimals) as the ticker moves them."""

    answers: dict[str, int]
    rng: np.random.Generator
    tick: int = 0


def tick(chains: Sequence[DevnetDeployment], market: Market) -> str:
    """Move ETH and BTC a little on every chain; every third tick, a deposit or withdrawal."""
    market.tick += 1
    for key, vol in (("ETH", 0.004), ("BTC", 0.003)):
        market.answers[key] = int(
            market.answers[key] * math.exp(vol * market.rng.standard_normal())
        )
    for chain in chains:
        for key in ("ETH", "BTC"):
            set_price(chain, key, market.answers[key])
        if market.tick % 200 == 0:  # keep the other feeds fresh for long runs
            for key in ("USDC", "DAI", "NFT_FLOOR"):
                set_price(chain, key, chain.feed_answers[key])
    note = f"ETH {market.answers['ETH'] / 1e8:,.2f}  BTC {market.answers['BTC'] / 1e8:,.2f}"
    if market.tick % 3 == 0:
        chain = chains[(market.tick // 3) % len(chains)]
        mine, outsider = chain.wallets[market.tick % TRACKED_WALLETS], chain.wallets[-2]
        if (market.tick // 3) % 2:
            wei = int(10**18 * (0.05 + 0.3 * market.rng.random()))
            transfer_native(chain, sender=outsider, to=mine, amount=wei)
            note += f"  deposit {wei / 1e18:.3f} ETH on chain {chain.chain_id}"
        else:  # never more than the wallet holds: an earlier withdrawal may have drained it
            wanted = int(10**6 * (100 + 900 * market.rng.random()))
            units = min(wanted, token_balance(chain, "USDC", mine))
            if units > 0:
                transfer_token(chain, symbol="USDC", sender=mine, to=outsider, amount=units)
                note += f"  withdrawal {units / 1e6:,.2f} USDC on chain {chain.chain_id}"
    return note


def token_balance(chain: DevnetDeployment, symbol: str, wallet: str) -> int:
    """What `wallet` holds of token `symbol`, in base units, read from the chain."""
    data = encode_call("MintableERC20", "balanceOf", wallet)
    raw = web3_for(chain).eth.call({"to": chain.tokens[symbol].address, "data": data})
    return int.from_bytes(raw, "big")


def failure_line(exc: Exception) -> str:
    """A failed on-chain action in one line: a revert's decoded reason, never its payload."""
    if isinstance(exc, ContractLogicError):
        # web3 gives the revert data as a hex string, or (Hardhat) the node's error object
        data = exc.data.get("data", "") if isinstance(exc.data, dict) else exc.data or ""
        try:
            return revert_reason(bytes.fromhex(data.removeprefix("0x")))
        except ValueError:  # not hex: web3's own message, which names the reason
            return str(exc.message).splitlines()[0]
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first if len(first) <= 200 else first[:200] + " …"
