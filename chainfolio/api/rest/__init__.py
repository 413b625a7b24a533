"""The seed's REST compatibility routes (`/v1/portfolio*`, `/v1/wallets`), on the same
resolvers as GraphQL: one module per group of routes, the shared envelope in `envelope`."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from chainfolio.api.rest.allocation import get_allocation, get_rebalance, get_targets, put_targets
from chainfolio.api.rest.pnl import get_pnl, get_pnl_csv, get_transactions_csv
from chainfolio.api.rest.portfolio import (
    get_compare,
    get_history,
    get_holdings,
    get_performance,
    get_portfolio,
)
from chainfolio.api.rest.wallets import add_wallet, list_wallets, remove_wallet


def rest_routes() -> list[BaseRoute]:
    """Every /v1 route."""
    return [
        Route("/v1/portfolio", get_portfolio, methods=["GET"]),
        Route("/v1/portfolio/holdings", get_holdings, methods=["GET"]),
        Route("/v1/portfolio/history", get_history, methods=["GET"]),
        Route("/v1/portfolio/performance", get_performance, methods=["GET"]),
        Route("/v1/portfolio/allocation", get_allocation, methods=["GET"]),
        Route("/v1/portfolio/targets", get_targets, methods=["GET"]),
        Route("/v1/portfolio/targets", put_targets, methods=["PUT"]),
        Route("/v1/portfolio/rebalance", get_rebalance, methods=["GET"]),
        Route("/v1/portfolio/compare", get_compare, methods=["GET"]),
        Route("/v1/portfolio/pnl", get_pnl, methods=["GET"]),
        Route("/v1/portfolio/pnl.csv", get_pnl_csv, methods=["GET"]),
        Route("/v1/portfolio/transactions.csv", get_transactions_csv, methods=["GET"]),
        Route("/v1/wallets", list_wallets, methods=["GET"]),
        Route("/v1/wallets", add_wallet, methods=["POST"]),
        Route("/v1/wallets/{wallet_id}", remove_wallet, methods=["DELETE"]),
    ]
