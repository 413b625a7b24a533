"""Chainlink AggregatorV3 feeds read through Multicall3, by symbol.

A feed's `latestRoundData` and `decimals` are read on the chains that list a feed for the
symbol (config order = preference). An answer older than the feed's `max_age`, non-positive or
never updated is not used: the next chain with that feed is tried, and if none has a usable
answer the symbol is absent. Feeds quoted in another symbol (ETH) are converted to USD.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

from chainfolio.core.domain import Price
from chainfolio.core.errors import SourceUnavailable
from chainfolio.fetchers.config import PriceFeedConfig
from chainfolio.fetchers.evm import EvmChainReader
from chainfolio.fetchers.multicall import (
    DECIMALS,
    LATEST_ROUND_DATA,
    Call,
    CallResult,
    MalformedResult,
    decode_uint,
    gather_all,
)
from chainfolio.fetchers.prices.base import USD, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Answer:
    value: Decimal
    updated_at: datetime
    source: str
    quote: str


class ChainlinkPriceSource:
    """AggregatorV3 feeds read through Multicall3 on the configured chains."""

    name = "chainlink"

    def __init__(
        self, readers: Sequence[EvmChainReader], *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._readers = list(readers)
        self._clock = clock
        self._feed_decimals: dict[tuple[int, str], int] = {}

    def _candidates(self, symbol: str) -> list[tuple[EvmChainReader, PriceFeedConfig]]:
        return [
            (reader, reader.chain.price_feeds[symbol])
            for reader in self._readers
            if symbol in reader.chain.price_feeds
        ]

    async def prices(self, symbols: Collection[str]) -> dict[str, Price]:
        """Prices for `symbols` (feeds quoted in another symbol are converted to USD)."""
        needed = self._with_quotes(symbols)
        answers = await self._answers(needed)
        prices: dict[str, Price] = {}
        for symbol in symbols:
            price = self._resolve(symbol, answers, depth=0)
            if price is not None:
                prices[symbol] = price
        return prices

    def _with_quotes(self, symbols: Collection[str]) -> set[str]:
        needed: set[str] = set()
        frontier = [s for s in symbols if s != USD]
        while frontier:
            symbol = frontier.pop()
            if symbol in needed:
                continue
            needed.add(symbol)
            frontier += [f.quote for _, f in self._candidates(symbol) if f.quote != USD]
        return needed

    async def _answers(self, symbols: set[str]) -> dict[str, _Answer]:
        answers: dict[str, _Answer] = {}
        queues = {s: self._candidates(s) for s in symbols}
        while True:
            by_chain: dict[int, tuple[EvmChainReader, dict[str, PriceFeedConfig]]] = {}
            for symbol, queue in queues.items():
                if symbol not in answers and queue:
                    reader, feed = queue.pop(0)
                    by_chain.setdefault(reader.chain.chain_id, (reader, {}))[1][symbol] = feed
            if not by_chain:
                return answers
            for found in await gather_all(
                [self._read_feeds(reader, feeds) for reader, feeds in by_chain.values()]
            ):
                answers.update(found)

    async def _read_feeds(
        self, reader: EvmChainReader, feeds: Mapping[str, PriceFeedConfig]
    ) -> dict[str, _Answer]:
        chain = reader.chain
        calls = [Call(feed.aggregator, LATEST_ROUND_DATA) for feed in feeds.values()]
        unknown = [
            f.aggregator
            for f in feeds.values()
            if (chain.chain_id, f.aggregator) not in self._feed_decimals
        ]
        calls += [Call(aggregator, DECIMALS) for aggregator in unknown]
        try:
            _, results = await reader.call_at_latest(calls)
        except SourceUnavailable as exc:
            log.warning("price feeds on %s unavailable: %s", chain.name, exc.message)
            return {}
        for aggregator, result in zip(unknown, results[len(feeds) :], strict=True):
            try:
                self._feed_decimals[(chain.chain_id, aggregator)] = decode_uint(result)
            except MalformedResult as exc:
                log.warning("%s feed %s decimals(): %s", chain.name, aggregator, exc)
        now = self._clock()
        answers: dict[str, _Answer] = {}
        for (symbol, feed), result in zip(feeds.items(), results[: len(feeds)], strict=True):
            decimals = self._feed_decimals.get((chain.chain_id, feed.aggregator))
            answer = _round_answer(result, decimals, feed, now) if decimals is not None else None
            if isinstance(answer, str) or answer is None:
                log.warning(
                    "%s %s feed %s not used: %s",
                    chain.name,
                    symbol,
                    feed.aggregator,
                    answer or "decimals unknown",
                )
                continue
            value, updated_at = answer
            answers[symbol] = _Answer(value, updated_at, f"chainlink:{chain.name}", feed.quote)
        return answers

    def _resolve(self, symbol: str, answers: Mapping[str, _Answer], depth: int) -> Price | None:
        answer = answers.get(symbol)
        if answer is None or depth > 4:
            return None
        if answer.quote == USD:
            return Price(symbol, answer.value, answer.source, answer.updated_at)
        quote = self._resolve(answer.quote, answers, depth + 1)
        if quote is None:
            return None
        with localcontext() as exact:
            exact.prec = 200
            usd = answer.value * quote.usd
        return Price(
            symbol,
            usd,
            f"{answer.source} ({symbol}/{answer.quote} x {quote.source})",
            min(answer.updated_at, quote.updated_at),
        )


def _round_answer(
    result: CallResult, decimals: int, feed: PriceFeedConfig, now: datetime
) -> tuple[Decimal, datetime] | str:
    """(value, updated_at) from a latestRoundData result, or why it cannot be used."""
    if not result.success:
        return result.error or "latestRoundData failed"
    try:
        _, answer, _, updated_at, _ = decode(
            ["uint80", "int256", "uint256", "uint256", "uint80"], result.data
        )
    except (DecodingError, ValueError, OverflowError) as exc:
        return f"undecodable latestRoundData: {exc}"
    if answer <= 0:
        return f"non-positive answer {answer}"
    if updated_at == 0:
        return "round never updated"
    when = datetime.fromtimestamp(updated_at, UTC)
    age = (now - when).total_seconds()
    if age > feed.max_age:
        return f"stale: updated {age:.0f}s ago, max_age {feed.max_age}s"
    return Decimal(answer).scaleb(-decimals), when
