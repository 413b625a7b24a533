"""Deploy the devnet contracts onto a running Hardhat node, fund wallets, and poke the chain.

Everything is deterministic: the same `wallets`/`extra_tokens`/`seed` on a fresh node gives the
same addresses and the same exact balances, so a restarted node can be redeployed and the old
`DevnetDeployment` stays valid. Transactions come from Hardhat's first unlocked account (or
from impersonated wallets, at zero gas price); contract addresses are derived from the
deployer's nonce, wallets are funded with `mintBatch` and `hardhat_setBalance`, order-free
requests go in JSON-RPC batches, so 20 wallets take about a hundred instantly mined transactions.

Feeds: "ETH", "BTC", "USDC", "DAI" are USD prices with 8 decimals (Chainlink style);
"NFT_FLOOR" is the floor price of the NFT collection in ETH with 18 decimals, as Chainlink's
NFT floor feeds are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from chainfolio.devnet.compiled import constructor_data, encode_call, load_artifact
from chainfolio.devnet.funding import (
    FEEDS,
    FX_FEEDS,
    NFT_NAME,
    NFT_SYMBOL,
    STANDARD_TOKENS,
    VAULT_SEED_ASSETS,
    VAULT_YIELD_ASSETS,
    lending_amounts,
    native_amount,
    nft_count,
    token_amount,
    token_specs,
    vault_deposit,
)
from chainfolio.devnet.node import DevnetError
from chainfolio.devnet.wallets import DEFAULT_SEED, devnet_wallets

MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
"""Where Multicall3 lives on (almost) every EVM chain; the devnet puts it there too."""


_RPC_BATCH = 200
_MINT_BATCH = 500
_MINT_GAS_BASE = 60_000
_MINT_GAS_PER_WALLET = 30_000
"""Upper bounds: a first mint to a wallet costs ~26,000 gas with calldata; 500 x 30,000 stays
under the 2**24 per-transaction gas cap of recent hardforks (EIP-7825)."""


@dataclass(frozen=True)
class TokenDeployment:
    """One deployed ERC-20."""

    symbol: str
    address: str
    decimals: int
    name: str = ""


@dataclass(frozen=True)
class DevnetDeployment:
    """Everything deployed on one devnet chain, and what each wallet was given.

    The balance fields describe the chain right after deployment; tests that move funds should
    revert to a snapshot (see `snapshot`/`revert`) to keep them true.
    """

    chain_id: int
    rpc_url: str
    multicall3: str
    tokens: dict[str, TokenDeployment]
    """"USDC", "USDT", "WBTC", "DAI", "WETH", then "TK00"… in big fund mode."""
    nft: str
    vault: str
    vault_asset: str
    """Symbol of the vault's underlying token: "WETH"."""
    lending: str
    reverting_token: str
    feeds: dict[str, str]
    """"ETH", "BTC", "USDC", "DAI" (USD, 8 decimals), "NFT_FLOOR" (ETH, 18 decimals), and the
    FX feeds "EUR", "GBP", "CHF", "JPY" (USD per unit, 8 decimals; Chainlink's MockV3Aggregator)."""
    wallets: list[str]
    private_keys: dict[str, str]
    deployer: str = ""
    feed_decimals: dict[str, int] = field(default_factory=dict)
    feed_answers: dict[str, int] = field(default_factory=dict)
    """Initial answer of each feed, in the feed's own decimals."""
    native_balances: dict[str, int] = field(default_factory=dict)
    """Wallet -> wei."""
    token_balances: dict[str, dict[str, int]] = field(default_factory=dict)
    """Wallet -> token symbol -> base units (0 included), borrowed WETH included."""
    nft_ids: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """NFT holders only: wallet -> token ids."""
    vault_shares: dict[str, int] = field(default_factory=dict)
    """Vault depositors only: wallet -> shares (base units, 18 decimals)."""
    lending_supplied: dict[str, dict[str, int]] = field(default_factory=dict)
    """Lending users only: wallet -> token symbol -> base units supplied."""
    lending_borrowed: dict[str, dict[str, int]] = field(default_factory=dict)
    """Lending users only: wallet -> token symbol -> base units borrowed."""
    block_number: int = 0
    """Head block right after deployment."""


def create_address(sender: str, nonce: int) -> str:
    """Address of the contract `sender` creates with `nonce` (keccak of RLP [sender, nonce])."""
    if nonce == 0:
        encoded_nonce = b"\x80"
    elif nonce < 0x80:
        encoded_nonce = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        encoded_nonce = bytes([0x80 + len(raw)]) + raw
    payload = b"\x94" + bytes.fromhex(sender[2:]) + encoded_nonce
    return to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    # itertools.batched arrives in Python 3.12; we support 3.11.
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DevnetRpc:
    """JSON-RPC calls and batches through web3.py's HTTP provider; errors raise."""

    def __init__(self, url: str) -> None:
        self.provider = HTTPProvider(url, request_kwargs={"timeout": 300})

    def call(self, method: str, *params: Any) -> Any:
        response = self.provider.make_request(RPCEndpoint(method), list(params))
        if "error" in response:
            error = response["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise DevnetError(f"{method} failed: {message}")
        return response["result"]

    def batch(self, requests: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        results: list[Any] = []
        for chunk in _chunks(requests, _RPC_BATCH):
            calls = [(RPCEndpoint(method), params) for method, params in chunk]
            responses = self.provider.make_batch_request(calls)
            if not isinstance(responses, list):
                raise DevnetError(f"batch rejected: {responses.get('error')}")
            for (method, _), response in zip(chunk, responses, strict=True):
                if "error" in response:
                    raise DevnetError(f"{method} failed: {response['error'].get('message')}")
                results.append(response["result"])
        return results


class _Setup:
    """Queues the deployment's requests; `run` sends them.

    Hardhat answers a JSON-RPC batch with `Promise.all`, so requests within one batch may run
    in any order. Only order-free requests are batched (`before`, `after`); transactions, which
    depend on each other and on the deployer's nonce, go one by one over a kept-alive connection.
    """

    def __init__(self, deployer: str, nonce: int) -> None:
        self.deployer = deployer
        self.nonce = nonce
        self.before: list[tuple[str, list[Any]]] = []
        self.transactions: list[dict[str, Any]] = []
        self.after: list[tuple[str, list[Any]]] = []
        self.created: list[str] = []

    def create(self, contract: str, *args: Any) -> str:
        address = create_address(self.deployer, self.nonce)
        data = constructor_data(contract, *args)
        self.transactions.append({"from": self.deployer, "data": data})
        self.nonce += 1
        self.created.append(address)
        return address

    def send(
        self, contract: str, to: str, function: str, *args: Any, sender: str = "", gas: int = 0
    ) -> None:
        tx: dict[str, Any] = {"to": to, "data": encode_call(contract, function, *args)}
        if gas:
            tx["gas"] = hex(gas)  # skips Hardhat's gas estimation, which replays the call
        if sender:
            # An impersonated wallet pays nothing (base fee is 0), so its balance stays exact.
            tx |= {"from": sender, "gasPrice": "0x0"}
        else:
            tx["from"] = self.deployer
            self.nonce += 1
        self.transactions.append(tx)

    def run(self, rpc: DevnetRpc) -> None:
        rpc.batch(self.before)
        for tx in self.transactions:
            rpc.call("eth_sendTransaction", tx)
        rpc.batch(self.after)
        codes = rpc.batch([("eth_getCode", [a, "latest"]) for a in self.created])
        missing = [a for a, code in zip(self.created, codes, strict=True) if code in ("0x", "")]
        if missing:
            raise DevnetError(f"contracts not deployed where expected: {missing}")


def _fund_tokens(
    setup: _Setup, chain_id: int, tokens: dict[str, TokenDeployment], wallets: list[str]
) -> dict[str, dict[str, int]]:
    """Mint every token to every wallet (mintBatch, a few hundred wallets per transaction)."""
    balances: dict[str, dict[str, int]] = {a: {} for a in wallets}
    for j, spec in enumerate(token_specs(len(tokens) - len(STANDARD_TOKENS))):
        funded: list[tuple[str, int]] = []
        for i, address in enumerate(wallets):
            balances[address][spec.symbol] = amount = token_amount(chain_id, i, j, spec)
            if amount:
                funded.append((address, amount))
        token = tokens[spec.symbol].address
        for chunk in _chunks(funded, _MINT_BATCH):
            recipients, amounts = zip(*chunk, strict=True)
            gas = _MINT_GAS_BASE + _MINT_GAS_PER_WALLET * len(chunk)
            setup.send(
                "MintableERC20", token, "mintBatch", list(recipients), list(amounts), gas=gas
            )
    return balances


def _mint_nfts(setup: _Setup, nft: str, wallets: Sequence[str]) -> dict[str, tuple[int, ...]]:
    nft_ids: dict[str, tuple[int, ...]] = {}
    next_id = 1  # MintableERC721 numbers tokens from 1
    for i, address in enumerate(wallets):
        if count := nft_count(i):
            nft_ids[address] = tuple(range(next_id, next_id + count))
            next_id += count
            for _ in range(count):
                setup.send("MintableERC721", nft, "mint", address)
    return nft_ids


def _fill_vault(setup: _Setup, weth: str, vault: str, wallets: Sequence[str]) -> dict[str, int]:
    """Seed the vault 1:1, accrue yield, then deposit for some wallets; return their shares."""
    deposits = {a: d for i, a in enumerate(wallets) if (d := vault_deposit(i)) is not None}
    deployer = setup.deployer
    setup.send("MintableERC20", weth, "mint", deployer, VAULT_SEED_ASSETS + sum(deposits.values()))
    setup.send("MintableERC20", weth, "approve", vault, 2**256 - 1)
    setup.send("MockERC4626Vault", vault, "deposit", VAULT_SEED_ASSETS, deployer)
    setup.send("MockERC4626Vault", vault, "accrueYield", VAULT_YIELD_ASSETS)
    supply, assets = VAULT_SEED_ASSETS, VAULT_SEED_ASSETS + VAULT_YIELD_ASSETS
    shares_of: dict[str, int] = {}
    for address, deposit in deposits.items():
        # Mirrors MockERC4626Vault.convertToShares (rounding down).
        shares_of[address] = shares = deposit * supply // assets
        supply, assets = supply + shares, assets + deposit
        setup.send("MockERC4626Vault", vault, "deposit", deposit, address)
    return shares_of


def _open_loans(
    setup: _Setup, *, usdc: str, weth: str, lending: str, wallets: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Some wallets supply USDC and borrow WETH; return wallet -> (supplied, borrowed)."""
    loans = {a: pair for i, a in enumerate(wallets) if (pair := lending_amounts(i)) is not None}
    setup.send("MintableERC20", weth, "mint", lending, sum(b for _, b in loans.values()))
    for address, (supplied, borrowed) in loans.items():
        setup.send("MintableERC20", usdc, "mint", address, supplied)
        setup.before.append(("hardhat_impersonateAccount", [address]))
        setup.send("MintableERC20", usdc, "approve", lending, supplied, sender=address)
        setup.send("MockLendingMarket", lending, "supply", usdc, supplied, sender=address)
        setup.send("MockLendingMarket", lending, "borrow", weth, borrowed, sender=address)
        setup.after.append(("hardhat_stopImpersonatingAccount", [address]))
    return loans


def deploy(
    rpc_url: str,
    *,
    wallets: int = 20,
    extra_tokens: int = 0,
    position_wallets: int = 20,
    seed: str = DEFAULT_SEED,
) -> DevnetDeployment:
    """Deploy every devnet contract on a fresh node at `rpc_url` and fund `wallets` wallets.

    Each wallet gets native ETH and every token in varied exact amounts (some zero). Among the
    first `position_wallets` wallets, some get NFTs (index % 3 != 2), vault shares
    (index % 4 == 0) and a lending position (index % 5 == 0: USDC supplied, WETH borrowed).
    Big fund mode for benchmarks: e.g. `wallets=1000, extra_tokens=45` (50 tokens).
    """
    rpc = DevnetRpc(rpc_url)
    chain_id = int(rpc.call("eth_chainId"), 16)
    deployer = to_checksum_address(rpc.call("eth_accounts")[0])
    nonce = int(rpc.call("eth_getTransactionCount", deployer, "pending"), 16)
    if nonce < chain_id:
        # Start the deployer's nonce at the chain id so that each chain gets its own contract
        # addresses, as real chains do: a fetcher that mixes chains up must not pass by luck.
        rpc.call("hardhat_setNonce", deployer, hex(chain_id))
        nonce = chain_id
    setup = _Setup(deployer, nonce)
    multicall3_code = load_artifact("Multicall3").deployed_bytecode
    setup.before.append(("hardhat_setCode", [MULTICALL3_ADDRESS, multicall3_code]))

    tokens = {
        s.symbol: TokenDeployment(
            s.symbol,
            setup.create("MintableERC20", s.name, s.symbol, s.decimals),
            s.decimals,
            s.name,
        )
        for s in token_specs(extra_tokens)
    }
    nft = setup.create("MintableERC721", NFT_NAME, NFT_SYMBOL, "https://devnet.invalid/cfpunk/")
    feeds = {f.key: setup.create("MockV3Aggregator", f.decimals, f.answer) for f in FEEDS}
    usdc, weth = tokens["USDC"].address, tokens["WETH"].address
    vault = setup.create("MockERC4626Vault", weth, "Chainfolio WETH Vault", "cfWETH")
    lending = setup.create("MockLendingMarket")
    reverting = setup.create("RevertingToken")
    # Created last: every other contract keeps the address it had before FX feeds existed.
    feeds.update({f.key: setup.create("MockV3Aggregator", f.decimals, f.answer) for f in FX_FEEDS})

    keys = devnet_wallets(wallets, seed=seed)
    addresses = [w.address for w in keys]
    balances = _fund_tokens(setup, chain_id, tokens, addresses)
    positions = addresses[:position_wallets]
    nft_ids = _mint_nfts(setup, nft, positions)
    vault_shares = _fill_vault(setup, weth, vault, positions)
    loans = _open_loans(setup, usdc=usdc, weth=weth, lending=lending, wallets=positions)
    for address, (_, borrowed) in loans.items():
        balances[address]["WETH"] += borrowed
    native = {a: native_amount(chain_id, i) for i, a in enumerate(addresses)}
    setup.after.extend(("hardhat_setBalance", [a, hex(wei)]) for a, wei in native.items())
    setup.run(rpc)

    return DevnetDeployment(
        chain_id=chain_id,
        rpc_url=rpc_url,
        multicall3=MULTICALL3_ADDRESS,
        tokens=tokens,
        nft=nft,
        vault=vault,
        vault_asset="WETH",
        lending=lending,
        reverting_token=reverting,
        feeds=feeds,
        wallets=addresses,
        private_keys={w.address: w.private_key for w in keys},
        deployer=deployer,
        feed_decimals={f.key: f.decimals for f in (*FEEDS, *FX_FEEDS)},
        feed_answers={f.key: f.answer for f in (*FEEDS, *FX_FEEDS)},
        native_balances=native,
        token_balances=balances,
        nft_ids=nft_ids,
        vault_shares=vault_shares,
        lending_supplied={a: {"USDC": s} for a, (s, _) in loans.items()},
        lending_borrowed={a: {"WETH": b} for a, (_, b) in loans.items()},
        block_number=int(rpc.call("eth_blockNumber"), 16),
    )
