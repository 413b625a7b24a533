"""GraphQL types of allocation, allocation targets and rebalancing."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from chainfolio.resolvers.allocation import (
    AllocationView,
    PolicyView,
    RebalanceView,
    Slice,
    TargetView,
)


@strawberry.type(description="One key's share: weight in percent of the total it belongs to.")
class AllocationSlice:
    key: str = strawberry.field(description="Asset symbol, chain id, category or target key.")
    label: str
    value_usd: Decimal = strawberry.field(description="Signed: a net loan is negative.")
    weight: float = strawberry.field(description="Percent; negative for a negative value.")

    @classmethod
    def of(cls, view: Slice) -> AllocationSlice:
        """From the resolver's slice."""
        return cls(key=view.key, label=view.label, value_usd=view.value_usd, weight=view.weight)


@strawberry.type(
    description="Weights of the priced holdings in percent of the net total (loans count "
    "negative, so weights sum to 100); unpriced holdings are left out and counted."
)
class Allocation:
    total_value: Decimal
    gross_assets: Decimal
    liabilities: Decimal
    by_asset: list[AllocationSlice]
    by_chain: list[AllocationSlice]
    by_category: list[AllocationSlice]
    unpriced_count: int
    unpriced_assets: list[str]

    @classmethod
    def of(cls, view: AllocationView) -> Allocation:
        """From the resolver's view."""
        return cls(
            total_value=view.total_value,
            gross_assets=view.gross_assets,
            liabilities=view.liabilities,
            by_asset=[AllocationSlice.of(s) for s in view.by_asset],
            by_chain=[AllocationSlice.of(s) for s in view.by_chain],
            by_category=[AllocationSlice.of(s) for s in view.by_category],
            unpriced_count=view.unpriced_count,
            unpriced_assets=view.unpriced_assets,
        )


@strawberry.type(description="Target weight (percent) of an asset or of a group (`members`).")
class AllocationTarget:
    key: str
    weight: Decimal
    members: list[str]

    @classmethod
    def of(cls, view: TargetView) -> AllocationTarget:
        """From the resolver's target."""
        return cls(key=view.key, weight=view.weight, members=view.members)


@strawberry.type(description="Saved targets, drift band (percent) and minimum trade (USD).")
class AllocationPolicy:
    targets: list[AllocationTarget]
    band: Decimal
    min_trade_usd: Decimal

    @classmethod
    def of(cls, view: PolicyView) -> AllocationPolicy:
        """From the resolver's view."""
        return cls(
            targets=[AllocationTarget.of(t) for t in view.targets],
            band=view.band,
            min_trade_usd=view.min_trade_usd,
        )


@strawberry.type(description="A suggested trade; nothing is executed.")
class RebalanceTrade:
    side: str = strawberry.field(
        description="SELL, BUY, or REDUCE: withdraw this much of the asset from `position`."
    )
    asset: str
    chain_id: int | None
    value_usd: Decimal = strawberry.field(description="USD, rounded to cents.")
    amount: Decimal | None = strawberry.field(
        description="Token units (not base units) at the holding's or latest stored price."
    )
    position: str | None = strawberry.field(
        default=None, description="REDUCE only: the DEX position (see Portfolio.positions)."
    )


@strawberry.type(
    description="Gas of one chain's trades: trades x swap gas units x the chain's configured "
    "gas price x its native coin's price."
)
class ChainGasEstimate:
    chain_id: int
    trades: int
    gas_units: int
    cost_usd: Decimal | None


@strawberry.type(
    description="Trades that bring each target key back within the band, over the priced "
    "holdings other than loans and NFTs; weights in percent."
)
class Rebalance:
    within_bands: bool = strawberry.field(
        description="Every key is already within its band: nothing needs to trade."
    )
    result_within_bands: bool = strawberry.field(
        description="Every key is within its band after the trades (minimum trade size may "
        "leave a small drift)."
    )
    trades: list[RebalanceTrade]
    gas: list[ChainGasEstimate]
    total_gas_usd: Decimal | None
    current_weights: list[AllocationSlice]
    resulting_weights: list[AllocationSlice]
    targets: list[AllocationSlice]
    band: Decimal
    min_trade_usd: Decimal
    total_value_usd: Decimal

    @classmethod
    def of(cls, view: RebalanceView) -> Rebalance:
        """From the resolver's view."""
        return cls(
            within_bands=view.within_bands,
            result_within_bands=view.result_within_bands,
            trades=[
                RebalanceTrade(
                    side=t.side,
                    asset=t.asset,
                    chain_id=t.chain_id,
                    value_usd=t.value_usd,
                    amount=t.amount,
                    position=t.position,
                )
                for t in view.trades
            ],
            gas=[
                ChainGasEstimate(
                    chain_id=g.chain_id, trades=g.trades, gas_units=g.gas_units, cost_usd=g.cost_usd
                )
                for g in view.gas
            ],
            total_gas_usd=view.total_gas_usd,
            current_weights=[AllocationSlice.of(s) for s in view.current_weights],
            resulting_weights=[AllocationSlice.of(s) for s in view.resulting_weights],
            targets=[AllocationSlice.of(s) for s in view.targets],
            band=view.band,
            min_trade_usd=view.min_trade_usd,
            total_value_usd=view.total_value_usd,
        )
