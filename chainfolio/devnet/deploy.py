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

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_typing import ABI, HexStr
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, TxParams, Wei

from chainfolio.devnet.compiled import load_artifact
from chainfolio.devnet.node import DevnetError
from chainfolio.devnet.wallets import DEFAULT_SEED, devnet_wallets

MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
"""Where Multicall3 lives on (almost) every EVM chain; the devnet puts it there too."""

NFT_NAME = "Chainfolio Punks"
NFT_SYMBOL = "CFPUNK"
VAULT_SEED_ASSETS = 10 * 10**18
"""WETH the deployer deposits first, at a 1:1 rate."""
VAULT_YIELD_ASSETS = 5 * 10**17
"""WETH accrued right after, so one share is worth 1.05 WETH for later depositors."""

_RPC_BATCH = 200
_MINT_BATCH = 500
_MINT_GAS_BASE = 60_000
_MINT_GAS_PER_WALLET = 30_000
"""Upper bounds: a first mint to a wallet costs ~26,000 gas with calldata; 500 x 30,000 stays
under the 2**24 per-transaction gas cap of recent hardforks (EIP-7825)."""


@dataclass(frozen=True)
class TokenSpec:
    """An ERC-20 the devnet deploys; `typical` whole units scale the funded amounts."""

    symbol: str
    name: str
    decimals: int
    typical: int


@dataclass(frozen=True)
class FeedSpec:
    """A mock Chainlink aggregator the devnet deploys, with its initial answer."""

    key: str
    description: str
    decimals: int
    answer: int


STANDARD_TOKENS = (
    TokenSpec("USDC", "USD Coin", 6, 25_000),
    TokenSpec("USDT", "Tether USD", 6, 10_000),
    TokenSpec("WBTC", "Wrapped BTC", 8, 2),
    TokenSpec("DAI", "Dai Stablecoin", 18, 5_000),
    TokenSpec("WETH", "Wrapped Ether", 18, 20),
)

FEEDS = (
    FeedSpec("ETH", "ETH / USD", 8, 3_000_00000000),
    FeedSpec("BTC", "BTC / USD", 8, 65_000_00000000),
    FeedSpec("USDC", "USDC / USD", 8, 1_00000000),
    FeedSpec("DAI", "DAI / USD", 8, 99_980_000),
    FeedSpec("NFT_FLOOR", f"{NFT_SYMBOL} Floor Price / ETH", 18, 12_500_000_000_000_000_000),
)

FX_FEEDS = (
    FeedSpec("EUR", "EUR / USD", 8, 1_08000000),
    FeedSpec("GBP", "GBP / USD", 8, 1_27000000),
    FeedSpec("CHF", "CHF / USD", 8, 1_13000000),
    FeedSpec("JPY", "JPY / USD", 8, 670_000),
)
"""Display-currency rates (USD per unit, as Chainlink's mainnet FX feeds answer), deployed as
Chainlink's own `MockV3Aggregator` from the pinned npm `@chainlink/contracts`."""


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


def token_specs(extra_tokens: int = 0) -> list[TokenSpec]:
    """The standard tokens plus `extra_tokens` generic ones ("TK00"…, decimals 18/6/8)."""
    extras = [
        TokenSpec(f"TK{j:02d}", f"Devnet Token {j:02d}", (18, 6, 8)[j % 3], 1_000)
        for j in range(extra_tokens)
    ]
    return [*STANDARD_TOKENS, *extras]


def _pow10(exponent: int) -> int:
    # `10 ** n` with a variable n is typed Any (n could be negative); decimals never are.
    return int(10**exponent)


def token_amount(chain_id: int, wallet_index: int, token_index: int, spec: TokenSpec) -> int:
    """Base units of token `token_index` funded to wallet `wallet_index`; some are zero."""
    if (wallet_index + token_index) % 7 == 6:
        return 0
    mix = (wallet_index + 1) * 2_654_435_761 + (token_index + 1) * 40_503 + chain_id * 97
    mix %= 2**32
    unit, fraction_unit = _pow10(spec.decimals), _pow10(spec.decimals // 2)
    return spec.typical * unit * (mix % 1000 + 1) // 500 + mix % fraction_unit


def native_amount(chain_id: int, wallet_index: int) -> int:
    """Wei funded to wallet `wallet_index`."""
    return (1 + (wallet_index * 7 + chain_id) % 40) * 10**18 + wallet_index * 1_234_567_891 + 1


def _nft_count(wallet_index: int) -> int:
    return (wallet_index + 1) % 3


def _vault_deposit(wallet_index: int) -> int | None:
    if wallet_index % 4 != 0:
        return None
    return (wallet_index % 7 + 1) * 10**18 // 2 + wallet_index * 10**12


def _lending_amounts(wallet_index: int) -> tuple[int, int] | None:
    """(USDC supplied, WETH borrowed) for lending users."""
    if wallet_index % 5 != 0:
        return None
    return (10_000 + 250 * wallet_index) * 10**6, 2 * 10**18 + wallet_index * 10**16


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


class _Rpc:
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


def _abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of a parameter: tuples spelled out as "(t1,t2)[]"."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


@functools.cache
def _function_abi(contract: str, function: str, arity: int) -> tuple[bytes, tuple[str, ...]]:
    matches = [
        e
        for e in load_artifact(contract).abi
        if e["type"] == "function" and e["name"] == function and len(e["inputs"]) == arity
    ]
    if len(matches) != 1:
        raise DevnetError(f"{contract} has {len(matches)} functions {function}/{arity}")
    types = tuple(_abi_type(p) for p in matches[0]["inputs"])
    return keccak(text=f"{function}({','.join(types)})")[:4], types


def encode_call(contract: str, function: str, *args: Any) -> HexStr:
    """Calldata for `function(*args)` of devnet contract `contract` (e.g. "MintableERC20")."""
    # eth_abi directly: web3's Contract.encode_abi is ~100x slower on 1,000-element arrays.
    selector, types = _function_abi(contract, function, len(args))
    return HexStr("0x" + (selector + abi_encode(types, args)).hex())


def _constructor_data(contract: str, *args: Any) -> str:
    artifact = load_artifact(contract)
    constructor = [e for e in artifact.abi if e["type"] == "constructor"]
    inputs: list[dict[str, Any]] = constructor[0]["inputs"] if constructor else []
    encoded = abi_encode([_abi_type(i) for i in inputs], list(args))
    return artifact.bytecode + encoded.hex()


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
        data = _constructor_data(contract, *args)
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

    def run(self, rpc: _Rpc) -> None:
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
        if count := _nft_count(i):
            nft_ids[address] = tuple(range(next_id, next_id + count))
            next_id += count
            for _ in range(count):
                setup.send("MintableERC721", nft, "mint", address)
    return nft_ids


def _fill_vault(setup: _Setup, weth: str, vault: str, wallets: Sequence[str]) -> dict[str, int]:
    """Seed the vault 1:1, accrue yield, then deposit for some wallets; return their shares."""
    deposits = {a: d for i, a in enumerate(wallets) if (d := _vault_deposit(i)) is not None}
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
    loans = {a: pair for i, a in enumerate(wallets) if (pair := _lending_amounts(i)) is not None}
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
    rpc = _Rpc(rpc_url)
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
    feeds = {
        f.key: setup.create("MockAggregatorV3", f.decimals, f.description, f.answer) for f in FEEDS
    }
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


# --- poking a deployed chain (tests, demo) -------------------------------------------------


def web3_for(deployment: DevnetDeployment) -> Web3:
    """A web3.py client for the deployment's node."""
    return Web3(HTTPProvider(deployment.rpc_url, request_kwargs={"timeout": 60}))


def devnet_contract(w3: Web3, contract: str, address: str) -> Contract:
    """A web3.py contract object for devnet contract `contract` (artifact name) at `address`."""
    abi = cast(ABI, load_artifact(contract).abi)
    return w3.eth.contract(address=to_checksum_address(address), abi=abi)


def _transact(
    deployment: DevnetDeployment, *, sender: str, to: str, data: str = "0x", value: int = 0
) -> str:
    """Send and mine one transaction; wallets sign locally, other senders must be unlocked."""
    w3 = web3_for(deployment)
    sender = to_checksum_address(sender)
    base_fee = w3.eth.get_block("pending").get("baseFeePerGas", 0)
    tx: TxParams = {
        "from": sender,
        "to": to_checksum_address(to),
        "data": HexStr(data),
        "value": Wei(value),
        "gasPrice": Wei(base_fee),
        "chainId": deployment.chain_id,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
    }
    tx["gas"] = w3.eth.estimate_gas(tx)
    key = deployment.private_keys.get(sender)
    if key is None:
        tx_hash = w3.eth.send_transaction(tx)
    else:
        signed = Account.sign_transaction(cast(dict[str, Any], tx), key)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    if receipt["status"] != 1:
        raise DevnetError(f"transaction {tx_hash.to_0x_hex()} reverted")
    return tx_hash.to_0x_hex()


def _deployer(deployment: DevnetDeployment) -> str:
    return deployment.deployer or web3_for(deployment).eth.accounts[0]


def transfer_native(deployment: DevnetDeployment, *, sender: str, to: str, amount: int) -> str:
    """Send `amount` wei; gas costs the base fee only, which is 0 on the devnet. Returns tx hash."""
    return _transact(deployment, sender=sender, to=to, value=amount)


def transfer_token(
    deployment: DevnetDeployment, *, symbol: str, sender: str, to: str, amount: int
) -> str:
    """Transfer `amount` base units of token `symbol` from `sender` to `to`. Returns tx hash."""
    data = encode_call("MintableERC20", "transfer", to_checksum_address(to), amount)
    return _transact(deployment, sender=sender, to=deployment.tokens[symbol].address, data=data)


def mint_token(deployment: DevnetDeployment, *, symbol: str, to: str, amount: int) -> str:
    """Mint `amount` base units of token `symbol` to `to`. Returns tx hash."""
    data = encode_call("MintableERC20", "mint", to_checksum_address(to), amount)
    token = deployment.tokens[symbol].address
    return _transact(deployment, sender=_deployer(deployment), to=token, data=data)


def _feed_address(deployment: DevnetDeployment, feed: str) -> str:
    return deployment.feeds.get(feed, feed)


def set_price(
    deployment: DevnetDeployment, feed: str, answer: int, *, updated_at: int | None = None
) -> str:
    """Start a new round on `feed` (a key such as "ETH", or an address) with `answer`.

    `answer` is in the feed's decimals; `updated_at` (unix seconds) backdates the round, e.g.
    to make the feed stale. Returns the hash of the last transaction sent.
    """
    address = _feed_address(deployment, feed)
    deployer = _deployer(deployment)
    tx_hash = _transact(
        deployment,
        sender=deployer,
        to=address,
        data=encode_call("MockAggregatorV3", "updateAnswer", answer),
    )
    if updated_at is not None:
        data = encode_call("MockAggregatorV3", "setUpdatedAt", updated_at)
        tx_hash = _transact(deployment, sender=deployer, to=address, data=data)
    return tx_hash


def set_feed_updated_at(deployment: DevnetDeployment, feed: str, updated_at: int) -> str:
    """Set `updatedAt` of the feed's latest round (unix seconds), keeping its answer."""
    data = encode_call("MockAggregatorV3", "setUpdatedAt", updated_at)
    address = _feed_address(deployment, feed)
    return _transact(deployment, sender=_deployer(deployment), to=address, data=data)


def accrue_vault_yield(deployment: DevnetDeployment, assets: int) -> str:
    """Mint `assets` of the vault's underlying into the vault: every share gains value."""
    data = encode_call("MockERC4626Vault", "accrueYield", assets)
    return _transact(deployment, sender=_deployer(deployment), to=deployment.vault, data=data)


def mine(deployment: DevnetDeployment, blocks: int = 1) -> int:
    """Mine `blocks` empty blocks; return the new head block number."""
    rpc = _Rpc(deployment.rpc_url)
    rpc.call("hardhat_mine", hex(blocks))
    return int(rpc.call("eth_blockNumber"), 16)


def increase_time(deployment: DevnetDeployment, seconds: int) -> int:
    """Move the chain's clock forward by `seconds` and mine a block; return its timestamp."""
    rpc = _Rpc(deployment.rpc_url)
    rpc.call("evm_increaseTime", seconds)
    rpc.call("evm_mine")
    return int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def set_time(deployment: DevnetDeployment, timestamp: int) -> int:
    """Mine a block at `timestamp` (unix seconds, later than the head's); later blocks follow
    on from it. Returns the timestamp."""
    rpc = _Rpc(deployment.rpc_url)
    rpc.call("evm_setNextBlockTimestamp", hex(timestamp))
    rpc.call("evm_mine")
    return int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def snapshot(deployment: DevnetDeployment) -> str:
    """Snapshot the chain state; `revert` returns to it (once)."""
    return cast(str, _Rpc(deployment.rpc_url).call("evm_snapshot"))


def revert(deployment: DevnetDeployment, snapshot_id: str) -> None:
    """Return the chain to a snapshot taken with `snapshot`."""
    if not _Rpc(deployment.rpc_url).call("evm_revert", snapshot_id):
        raise DevnetError(f"unknown snapshot {snapshot_id} on chain {deployment.chain_id}")


def iter_holdings(deployment: DevnetDeployment) -> Iterator[tuple[str, str, int]]:
    """(wallet, asset, base units) for every funded native and token balance, zeros included."""
    for wallet in deployment.wallets:
        yield wallet, "native", deployment.native_balances[wallet]
        for symbol, amount in deployment.token_balances[wallet].items():
            yield wallet, symbol, amount
