"""Query and Mutation roots."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

from chainfolio.resolvers import allocation as allocation_resolver
from chainfolio.resolvers import compare as compare_resolver
from chainfolio.resolvers import history as history_resolver
from chainfolio.resolvers import performance as performance_resolver
from chainfolio.resolvers import portfolio as portfolio_resolver
from chainfolio.resolvers import targets as targets_resolver
from chainfolio.resolvers import wallets as wallets_resolver
from chainfolio.resolvers.pages import DEFAULT_PAGE
from chainfolio.schema.allocation import (
    Allocation,
    AllocationPolicy,
    AllocationTarget,
    Rebalance,
)
from chainfolio.schema.comparison import Comparison
from chainfolio.schema.context import Info
from chainfolio.schema.types import (
    AFTER,
    FIRST,
    Connection,
    History,
    Performance,
    Portfolio,
    Wallet,
)
from chainfolio.storage import accounts

_CHANGE_FIELDS = frozenset({"change24h", "changePercent24h"})


def _asked(info: Info) -> set[str]:
    """The names of the fields selected one level below this field, fragments included
    (read off the document's nodes: Strawberry's `selected_fields` converts the whole tree)."""
    raw = info._raw_info
    names: set[str] = set()
    pending = [node.selection_set for node in raw.field_nodes]
    while pending:
        selection_set = pending.pop()
        for child in selection_set.selections if selection_set else ():
            if isinstance(child, FieldNode):
                names.add(child.name.value)
            elif isinstance(child, FragmentSpreadNode):
                pending.append(raw.fragments[child.name.value].selection_set)
            elif isinstance(child, InlineFragmentNode):
                pending.append(child.selection_set)
    return names


@strawberry.type
class Query:
    @strawberry.field(description="The caller's portfolio as last refreshed.")
    async def portfolio(self, info: Info) -> Portfolio:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await portfolio_resolver.resolve_portfolio(
                db,
                user_id=ctx.caller.user_id,
                now=ctx.services.clock(),
                with_change=not _CHANGE_FIELDS.isdisjoint(_asked(info)),
            )
        return Portfolio.of(view)

    @strawberry.field(description="Value over a period, one point per interval bucket.")
    async def history(self, info: Info, period: str = "30d", interval: str = "1d") -> History:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await history_resolver.resolve_history(
                db,
                user_id=ctx.caller.user_id,
                period=period,
                interval=interval,
                now=ctx.services.clock(),
                retention_days=ctx.services.settings.snapshot_retention_days,
            )
        return History.of(view)

    @strawberry.field(
        description="Flow-neutral performance over a period (rates in percent): deposits and "
        "withdrawals are never gains."
    )
    async def performance(self, info: Info, period: str = "30d") -> Performance:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await performance_resolver.resolve_performance(
                db,
                user_id=ctx.caller.user_id,
                period=period,
                now=ctx.services.clock(),
                retention_days=ctx.services.settings.snapshot_retention_days,
                risk_free_rate=ctx.services.settings.risk_free_rate,
            )
        return Performance.of(performance_resolver.performance_fields(view))

    @strawberry.field(
        description="Weights by asset, chain and category in percent of the net total."
    )
    async def allocation(self, info: Info) -> Allocation:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await allocation_resolver.resolve_allocation(db, user_id=ctx.caller.user_id)
        return Allocation.of(view)

    @strawberry.field(description="Saved allocation targets, drift band and minimum trade.")
    async def allocation_targets(self, info: Info) -> AllocationPolicy:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await allocation_resolver.resolve_targets(db, user_id=ctx.caller.user_id)
        return AllocationPolicy.of(view)

    @strawberry.field(
        description="Suggested trades back within the drift bands of the saved targets, with "
        "gas per chain (NO_TARGETS when none are saved)."
    )
    async def rebalance(self, info: Info) -> Rebalance:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await allocation_resolver.resolve_rebalance(
                db, user_id=ctx.caller.user_id, chains=ctx.services.chains
            )
        return Rebalance.of(view)

    @strawberry.field(
        description="Flow-neutral portfolio growth against a benchmark: a symbol (ETH) or a "
        "basket (ETH:60,BTC:40), both rebased to 100."
    )
    async def compare(
        self,
        info: Info,
        period: str = "30d",
        interval: str | None = None,
        benchmark: str = "ETH",
    ) -> Comparison:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await compare_resolver.resolve_comparison(
                db,
                user_id=ctx.caller.user_id,
                period=period,
                interval=interval,
                benchmark=benchmark,
                now=ctx.services.clock(),
                retention_days=ctx.services.settings.snapshot_retention_days,
                risk_free_rate=ctx.services.settings.risk_free_rate,
            )
        return Comparison.of(view)

    @strawberry.field(
        description="The caller's tracked wallets.",
        deprecation_reason="Use walletsConnection: cursor pages.",
    )
    async def wallets(self, info: Info) -> list[Wallet]:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            rows = await accounts.list_wallets(db, user_id=ctx.caller.user_id)
        return [Wallet.of(r) for r in rows]

    @strawberry.field(description="The caller's tracked wallets a page at a time, oldest first.")
    async def wallets_connection(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = DEFAULT_PAGE,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Wallet]:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            page = await wallets_resolver.wallets_page(
                db, user_id=ctx.caller.user_id, first=first, after=after
            )
        return Connection.of(page, Wallet.of)


@strawberry.input(description="Target weight for an asset, or for a group of assets.")
class TargetInput:
    key: str
    weight: Decimal = strawberry.field(description="Percent (0 to 100); all weights sum to 100.")
    members: list[str] | None = None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Track an address on a configured chain.")
    async def add_wallet(
        self, info: Info, chain_id: int, address: str, label: str | None = None
    ) -> Wallet:
        ctx = info.context
        async with ctx.services.engine.begin() as db:
            row = await wallets_resolver.add_wallet(
                db,
                user_id=ctx.caller.user_id,
                chain_id=chain_id,
                address=address,
                label=label,
                chains=ctx.services.chains,
                max_wallets=ctx.services.settings.max_wallets_per_user,
            )
        await ctx.services.changed(ctx.caller.user_id, wallets=True)
        return Wallet.of(row)

    @strawberry.mutation(description="Stop tracking a wallet.")
    async def remove_wallet(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context
        async with ctx.services.engine.begin() as db:
            await wallets_resolver.remove_wallet(db, user_id=ctx.caller.user_id, wallet_id=id)
        await ctx.services.changed(ctx.caller.user_id, wallets=True)
        return True

    @strawberry.mutation(
        description="Replace allocation targets (weights in percent summing to 100), the drift "
        "band (percent) and the minimum trade size (USD)."
    )
    async def set_allocation_targets(
        self,
        info: Info,
        targets: list[TargetInput],
        band: Decimal = Decimal(5),
        min_trade_usd: Decimal = Decimal(50),
    ) -> list[AllocationTarget]:
        ctx = info.context
        async with ctx.services.engine.begin() as db:
            policy = await targets_resolver.set_allocation_targets(
                db,
                user_id=ctx.caller.user_id,
                targets=[(t.key, t.weight, t.members or []) for t in targets],
                band_percent=band,
                min_trade_usd=min_trade_usd,
            )
        await ctx.services.changed(ctx.caller.user_id)
        return [AllocationTarget.of(t) for t in allocation_resolver.policy_view(policy).targets]
