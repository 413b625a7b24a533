"""Query and Mutation roots."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

from chainfolio.core.currencies import USD, parse_currency
from chainfolio.resolvers import allocation as allocation_resolver
from chainfolio.resolvers import compare as compare_resolver
from chainfolio.resolvers import history as history_resolver
from chainfolio.resolvers import performance as performance_resolver
from chainfolio.resolvers import pnl as pnl_resolver
from chainfolio.resolvers import portfolio as portfolio_resolver
from chainfolio.resolvers import targets as targets_resolver
from chainfolio.resolvers import tokens as tokens_resolver
from chainfolio.resolvers import wallets as wallets_resolver
from chainfolio.resolvers.currency import convert_history
from chainfolio.resolvers.pages import DEFAULT_PAGE
from chainfolio.schema.allocation import (
    Allocation,
    AllocationPolicy,
    AllocationTarget,
    Rebalance,
)
from chainfolio.schema.comparison import Comparison
from chainfolio.schema.connections import AFTER, FIRST, Connection
from chainfolio.schema.context import Info
from chainfolio.schema.history import History
from chainfolio.schema.performance import Performance
from chainfolio.schema.pnl import HoldingsPnl, Lot, Pnl
from chainfolio.schema.tokens import ExcludedToken, TokenVisibility
from chainfolio.schema.types import ROW_HOLDING_FIELDS, Portfolio, Wallet
from chainfolio.storage import accounts
from chainfolio.storage.movements import set_cost_basis_method

_CHANGE_FIELDS = frozenset({"change24h", "changePercent24h"})


def _selected(info: Info, nodes: list[FieldNode] | None = None) -> dict[str, list[FieldNode]]:
    """The fields selected one level below this field (or below `nodes`), by name, fragments
    included, directives ignored (so a superset of what runs), read off the document's nodes:
    Strawberry's `selected_fields` converts the whole tree."""
    raw = info._raw_info
    names: dict[str, list[FieldNode]] = {}
    pending = [node.selection_set for node in (raw.field_nodes if nodes is None else nodes)]
    while pending:
        selection_set = pending.pop()
        for child in selection_set.selections if selection_set else ():
            if isinstance(child, FieldNode):
                names.setdefault(child.name.value, []).append(child)
            elif isinstance(child, FragmentSpreadNode):
                pending.append(raw.fragments[child.name.value].selection_set)
            elif isinstance(child, InlineFragmentNode):
                pending.append(child.selection_set)
    return names


def _asked(info: Info) -> set[str]:
    """The names of the fields selected one level below this field."""
    return set(_selected(info))


_ROWS_PORTFOLIO_FIELDS = frozenset(
    {
        "__typename",
        "totalValue",
        "change24h",
        "changePercent24h",
        "chains",
        "assets",
        "categories",
        "stale",
        "updatedAt",
        "unpricedCount",
        "staleChains",
        "incomplete",
        "holdings",
    }
)
"""The `Portfolio` fields the rows path answers (`resolve_portfolio_rows`): all but the
positions and the holdings' pages, which read `StoredHolding`s."""


def _rows_suffice(info: Info) -> bool:
    """Whether this `portfolio` selection is answered by the stored rows alone: only
    `_ROWS_PORTFOLIO_FIELDS`, and of the holdings only `ROW_HOLDING_FIELDS`."""
    asked = _selected(info)
    if not _ROWS_PORTFOLIO_FIELDS.issuperset(asked):
        return False
    holdings = asked.get("holdings")
    return holdings is None or ROW_HOLDING_FIELDS.issuperset(_selected(info, holdings))


@strawberry.type
class Query:
    @strawberry.field(
        description="The caller's portfolio as last refreshed; `currency` is the one of the "
        "holdings' cost-basis fields (USD, EUR, GBP, CHF, JPY, ETH, BTC)."
    )
    async def portfolio(self, info: Info, currency: str = USD) -> Portfolio:
        ctx = info.context
        code = parse_currency(currency)
        if _rows_suffice(info):
            # totals and holdings as shown: the rows path (one round trip, no per-holding
            # objects; the same answer, tests/api/test_graphql.py); `currency` only concerns
            # the cost-basis fields, which this selection does not ask
            totals, rows = await portfolio_resolver.resolve_portfolio_rows(
                ctx.services.engine, user_id=ctx.caller.user_id, now=ctx.services.clock()
            )
            return Portfolio.of_rows(totals, rows)
        async with ctx.services.engine.connect() as db:
            view = await portfolio_resolver.resolve_portfolio(
                db,
                user_id=ctx.caller.user_id,
                now=ctx.services.clock(),
                with_change=not _CHANGE_FIELDS.isdisjoint(_asked(info)),
            )
        pnl = HoldingsPnl(ctx.services.engine, ctx.caller.user_id, code, view.holdings)
        return Portfolio.of(view, pnl)

    @strawberry.field(
        description="Value over a period, one point per interval bucket; in `currency`, each "
        "point is converted at its own time (a point without a rate is a gap)."
    )
    async def history(
        self, info: Info, period: str = "30d", interval: str = "1d", currency: str = USD
    ) -> History:
        ctx = info.context
        code = parse_currency(currency)
        async with ctx.services.engine.connect() as db:
            view = await history_resolver.resolve_history(
                db,
                user_id=ctx.caller.user_id,
                period=period,
                interval=interval,
                now=ctx.services.clock(),
                retention_days=ctx.services.settings.snapshot_retention_days,
            )
            view = await convert_history(db, view, code)
        return History.of(view)

    @strawberry.field(
        description="Realised P&L of the period's disposals and unrealised P&L of what is held, "
        "per asset, under the user's cost-basis method (or `method`: average, fifo)."
    )
    async def pnl(
        self, info: Info, period: str = "all", currency: str = USD, method: str | None = None
    ) -> Pnl:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await pnl_resolver.resolve_pnl(
                db,
                user_id=ctx.caller.user_id,
                period=period,
                currency=currency,
                now=ctx.services.clock(),
                method=method,
            )
        return Pnl.of(view)

    @strawberry.field(description="Open lots of an asset (FIFO lots, or the average-cost pool).")
    async def lots(
        self, info: Info, asset: str, currency: str = USD, method: str | None = None
    ) -> list[Lot]:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            views = await pnl_resolver.resolve_lots(
                db, user_id=ctx.caller.user_id, asset=asset, currency=currency, method=method
            )
        return [Lot.of(v) for v in views]

    @strawberry.field(
        description="Flow-neutral performance over a period (rates in percent): deposits and "
        "withdrawals are never gains. It ends at the live valuation. `mar`: Sortino's annual "
        "target as a fraction (default the risk-free rate); `annualise`: give annualised "
        "rates for periods under a year too."
    )
    async def performance(
        self,
        info: Info,
        period: str = "30d",
        mar: float | None = None,
        annualise: bool = False,
    ) -> Performance:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            view = await performance_resolver.resolve_performance(
                db,
                user_id=ctx.caller.user_id,
                period=period,
                now=ctx.services.clock(),
                retention_days=ctx.services.settings.snapshot_retention_days,
                risk_free_rate=ctx.services.settings.risk_free_rate,
                mar=mar,
                annualise=annualise,
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
        description="Held tokens left out of totals, with the reason: hidden by you, spam "
        "(with the signal) or unpriced (no price source)."
    )
    async def excluded_tokens(self, info: Info) -> list[ExcludedToken]:
        ctx = info.context
        async with ctx.services.engine.connect() as db:
            rows = await tokens_resolver.excluded_tokens(db, user_id=ctx.caller.user_id)
        return [ExcludedToken.of(r) for r in rows]

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

    @strawberry.mutation(
        description="Hide a token from your totals (hidden: true) or bring it back; spam tokens "
        "are hidden until you un-hide them. Applied by the next refresh."
    )
    async def set_token_visibility(
        self, info: Info, chain_id: int, contract: str, hidden: bool
    ) -> TokenVisibility:
        ctx = info.context
        async with ctx.services.engine.begin() as db:
            checksummed = await tokens_resolver.set_token_visibility(
                db,
                user_id=ctx.caller.user_id,
                chain_id=chain_id,
                contract=contract,
                hidden=hidden,
                chains=ctx.services.chains,
            )
        await ctx.services.changed(ctx.caller.user_id, wallets=True)
        return TokenVisibility(chain_id=chain_id, contract=checksummed, hidden=hidden)

    @strawberry.mutation(description="Choose the cost-basis method: average (default) or fifo.")
    async def set_cost_basis_method(self, info: Info, method: str) -> str:
        ctx = info.context
        chosen = pnl_resolver.method_of(method, method)
        async with ctx.services.engine.begin() as db:
            await set_cost_basis_method(db, user_id=ctx.caller.user_id, method=chosen.value)
        await ctx.services.changed(ctx.caller.user_id)
        return chosen.value

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
