"""Transfer scanning on the Hardhat devnet: native value, ERC-20 and ERC-721 logs, chunking."""

from __future__ import annotations

from typing import Any, cast

from eth_account import Account

from chainfolio.core.domain import NATIVE
from chainfolio.devnet import (
    Devnet,
    DevnetDeployment,
    encode_call,
    transfer_native,
    transfer_token,
    web3_for,
)
from chainfolio.fetchers import ChainSet
from chainfolio.fetchers.transfers import ScanLimits, Transfer, block_hashes, scan_transfers

OUTSIDE = "0x" + "ab" * 20


def _send_nft(chain: DevnetDeployment, *, sender: str, to: str, token_id: int) -> str:
    w3 = web3_for(chain)
    tx: dict[str, Any] = {
        "from": sender,
        "to": chain.nft,
        "data": encode_call("MintableERC721", "transferFrom", sender, to, token_id),
        "value": 0,
        "gasPrice": w3.eth.get_block("pending").get("baseFeePerGas", 0),
        "chainId": chain.chain_id,
        "nonce": w3.eth.get_transaction_count(cast(Any, sender), "pending"),
        "gas": 200_000,
    }
    signed = Account.sign_transaction(tx, chain.private_keys[sender])
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    return tx_hash.to_0x_hex()


def _key(t: Transfer) -> tuple[str, str, str, int]:
    return (t.contract, t.sender, t.recipient, t.amount)


async def test_scan_finds_native_erc20_and_erc721_transfers_of_tracked_wallets(
    restore_devnet: Devnet, chains: ChainSet
) -> None:
    chain = restore_devnet.chain(1)
    reader = chains.reader(1)
    a, b, c, d = (chain.wallets[i] for i in (12, 13, 14, 15))
    w3 = web3_for(chain)
    first = w3.eth.block_number + 1
    sent = transfer_native(chain, sender=a, to=OUTSIDE, amount=10**18)
    transfer_token(chain, symbol="USDC", sender=a, to=b, amount=5_000_000)
    transfer_token(chain, symbol="DAI", sender=c, to=a, amount=7 * 10**18)
    transfer_token(chain, symbol="DAI", sender=c, to=d, amount=10**18)  # neither tracked
    transfer_native(chain, sender=d, to=b, amount=3)
    nft_id = chain.nft_ids[b][0]
    _send_nft(chain, sender=b, to=OUTSIDE, token_id=nft_id)
    last = w3.eth.block_number
    tokens = [t.address for t in reader.chain.tokens]

    scan = await scan_transfers(
        reader.rpc, chain_id=1, tokens=tokens, wallets=[a, b], first_block=first, last_block=last
    )

    usdc, dai, nft = chain.tokens["USDC"].address, chain.tokens["DAI"].address, chain.nft
    assert sorted(_key(t) for t in scan.transfers) == sorted(
        [
            (NATIVE, a.lower(), OUTSIDE, 10**18),
            (usdc, a.lower(), b.lower(), 5_000_000),
            (dai, c.lower(), a.lower(), 7 * 10**18),
            (NATIVE, d.lower(), b.lower(), 3),
            (nft, b.lower(), OUTSIDE, 1),
        ]
    )
    native = next(t for t in scan.transfers if t.recipient == OUTSIDE and t.contract == NATIVE)
    assert native.tx_hash == sent
    assert native.log_index == -1
    receipt_block = w3.eth.get_transaction_receipt(cast(Any, sent))["blockNumber"]
    assert native.block_number == receipt_block
    assert int(native.block_time.timestamp()) == w3.eth.get_block(receipt_block)["timestamp"]

    # One block per request, two blocks per batch, one wallet per filter: the same answer.
    tiny = ScanLimits(log_chunk_blocks=1, wallets_per_filter=1, blocks_per_batch=2)
    chunked = await scan_transfers(
        reader.rpc,
        chain_id=1,
        tokens=tokens,
        wallets=[a, b],
        first_block=first,
        last_block=last,
        limits=tiny,
    )
    assert chunked.transfers == scan.transfers


async def test_block_hashes_match_the_node_and_miss_future_blocks(
    devnet: Devnet, chains: ChainSet
) -> None:
    chain = devnet.chain(1)
    w3 = web3_for(chain)
    head = w3.eth.block_number
    hashes = await block_hashes(chains.reader(1).rpc, [head, head + 1000])
    assert hashes[head] == w3.eth.get_block(head)["hash"].to_0x_hex()
    assert hashes[head + 1000] is None
