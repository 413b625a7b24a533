"""Per-request DataLoaders: every key asked for in one tick becomes one batched read per chain.

Create them per GraphQL request (or per worker refresh) so their caches never outlive it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from chainfolio.core.domain import ChecksumAddress, Holding, Price
from chainfolio.core.errors import ChainfolioError
from chainfolio.fetchers.addresses import parse_address
from chainfolio.fetchers.evm import ChainRead
from chainfolio.fetchers.multicall import gather_all
from chainfolio.fetchers.portfolio import ChainSet
from chainfolio.fetchers.prices import PriceSource

WalletKey = tuple[int, str]


def _wallet_key(key: WalletKey) -> tuple[int, str]:
    return key[0], key[1].lower()


class BalanceLoader(DataLoader[WalletKey, list[Holding]]):
    """(chain id, wallet) -> that wallet's holdings on that chain, at one block per chain.

    A chain that cannot be read resolves its keys with the SourceUnavailable it raised.
    """

    def __init__(self, chains: ChainSet) -> None:
        super().__init__(get_cache_key=_wallet_key)
        self._chains = chains

    async def batch_load_fn(  # type: ignore[override]  # values may be exceptions: aiodataloader allows, never types it
        self, keys: Sequence[WalletKey]
    ) -> list[list[Holding] | BaseException]:
        """One read per chain for all wallets requested in this tick."""
        wanted: dict[int, list[ChecksumAddress]] = {}
        normalised: list[tuple[int, ChecksumAddress] | ChainfolioError] = []
        for chain_id, wallet in keys:
            try:
                self._chains.reader(chain_id)
                owner = parse_address(wallet)
            except ChainfolioError as exc:
                normalised.append(exc)
                continue
            normalised.append((chain_id, owner))
            wanted.setdefault(chain_id, [])
            if owner not in wanted[chain_id]:
                wanted[chain_id].append(owner)

        async def read(chain_id: int, owners: list[ChecksumAddress]) -> ChainRead | ChainfolioError:
            try:
                return await self._chains.readers[chain_id].read(owners)
            except ChainfolioError as exc:
                return exc

        reads = dict(
            zip(wanted, await gather_all([read(c, o) for c, o in wanted.items()]), strict=True)
        )
        values: list[list[Holding] | BaseException] = []
        for item in normalised:
            if isinstance(item, ChainfolioError):
                values.append(item)
                continue
            result = reads[item[0]]
            values.append(
                result if isinstance(result, ChainfolioError) else result.holdings[item[1]]
            )
        return values


class PriceLoader(DataLoader[str, Price | None]):
    """symbol -> its USD Price, or None when no source has a usable one."""

    def __init__(self, source: PriceSource) -> None:
        super().__init__()
        self._source = source

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Price | None]:
        """One batched price lookup for every symbol requested in this tick."""
        prices = await self._source.prices(set(keys))
        return [prices.get(symbol) for symbol in keys]
