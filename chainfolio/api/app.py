"""The Starlette application: /graphql, the seed's /v1 REST routes, health, dashboard."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from chainfolio.api.browser import SecurityHeaders, cors_middleware
from chainfolio.api.graphql_http import AuthenticatedGraphQL, GraphQLApp
from chainfolio.api.limits import RequestLimits
from chainfolio.api.loop_probe import probing_loop
from chainfolio.api.openapi import openapi_endpoint
from chainfolio.api.ratelimit import open_rate_limiter
from chainfolio.api.realtime import portfolio_socket
from chainfolio.api.rest import rest_routes
from chainfolio.api.slots import open_socket_slots
from chainfolio.api.web import (
    Authenticator,
    error_response,
    services_of,
)
from chainfolio.bus.broadcast import Bus
from chainfolio.core.cache import open_cache
from chainfolio.core.errors import ChainfolioError, InternalError, SourceUnavailable
from chainfolio.core.logs import RequestIds
from chainfolio.core.metrics import HttpMetrics, metrics_endpoint
from chainfolio.core.nearcache import NearCache
from chainfolio.core.settings import Settings
from chainfolio.dashboard import dashboard_routes
from chainfolio.fetchers.config import ChainsConfig, load_chains
from chainfolio.fetchers.portfolio import open_chains
from chainfolio.resolvers.context import ChainInfo, Services
from chainfolio.schema import build_schema
from chainfolio.schema.persisted import PersistedQueries, load_allowlist
from chainfolio.storage.database import (
    create_engine,
    database_error_types,
    is_database_unavailable,
    resolve_database_url,
)
from chainfolio.storage.migrations import LATEST_VERSION, StorageOptions, check_version, migrate
from chainfolio.worker.cycle import Worker
from chainfolio.worker.options import WorkerOptions

log = logging.getLogger(__name__)


def chain_infos(config: ChainsConfig) -> dict[int, ChainInfo]:
    """What the API needs of each configured chain."""
    return {
        c.chain_id: ChainInfo(
            c.chain_id,
            c.name,
            c.native_symbol,
            native_price_symbol=c.native_price_key,
            gas_price_gwei=c.gas_price_gwei,
            swap_gas_units=c.swap_gas_units,
        )
        for c in config.chains
    }


@asynccontextmanager
async def running_worker(services: Services, config: ChainsConfig) -> AsyncIterator[None]:
    """Run the refresh worker in this process for the block (`serve --with-worker`, demo)."""
    readable = config.model_copy(update={"chains": [c for c in config.chains if c.rpc_urls]})
    async with open_chains(readable) as chains:
        worker = Worker(
            engine=services.engine,
            bus=services.bus,
            cache=services.cache,
            chains=chains,
            clock=services.clock,
            chain_names={c.chain_id: c.name for c in config.chains},
            interval_s=services.settings.refresh_interval_s,
            options=WorkerOptions(
                backfill_hours=services.settings.backfill_hours,
                retention_days=services.settings.snapshot_retention_days,
                block_poll_s=services.settings.block_poll_s,
                reread_touched=services.settings.refresh_touched,
                min_interval_s=services.settings.refresh_min_interval_s,
            ),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop), name="refresh-worker")
        try:
            yield
        finally:
            stop.set()
            await task


async def _chainfolio_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChainfolioError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    # Starlette's own 404 (no route) and 405 (wrong method), in the envelope too
    assert isinstance(exc, HTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    error = ChainfolioError(exc.detail, code=codes.get(exc.status_code, f"HTTP_{exc.status_code}"))
    error.status = exc.status_code
    response = error_response(error)
    response.headers.update(exc.headers or {})
    return response


async def _database_error(request: Request, exc: Exception) -> Response:
    # Registered for the database's error classes so that Starlette answers them in its
    # exception middleware (the catch-all `Exception` handler re-raises after answering).
    return await _unexpected_error(request, exc)


async def _unexpected_error(_request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc):
        return error_response(SourceUnavailable("database unavailable, try again shortly"))
    log.error("unhandled error", exc_info=exc)
    return error_response(InternalError())


async def healthz(_request: Request) -> Response:
    """Process is alive."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Database reachable and migrations current."""
    services = services_of(request)
    try:
        async with services.engine.connect() as db:
            version = await check_version(db)
    except ChainfolioError as exc:
        return error_response(exc)
    except Exception as exc:
        return error_response(SourceUnavailable(f"database unavailable: {type(exc).__name__}"))
    if version != LATEST_VERSION:
        return error_response(
            SourceUnavailable(f"schema at version {version}, expected {LATEST_VERSION}: migrate")
        )
    return JSONResponse({"status": "ready", "schemaVersion": version})


def create_app(
    settings: Settings | None = None,
    *,
    chains: ChainsConfig | None = None,
    database_url: str | None = None,
) -> Starlette:
    """Build the application; every client is opened in the lifespan and closed there."""
    cfg = settings or Settings()
    chains_config = chains or load_chains(
        cfg.chains_file, max_tokens_per_chain=cfg.max_tokens_per_chain
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if cfg.metrics_enabled:
                await stack.enter_async_context(probing_loop())
            url = await resolve_database_url(
                database_url or cfg.configured_database_url(), cfg.embedded_pgdata, keep=cfg.keep_db
            )
            engine = create_engine(url)
            stack.push_async_callback(engine.dispose)
            await migrate(
                engine,
                StorageOptions(cfg.snapshot_retention_days, cfg.snapshot_compress_after_days),
            )
            bus = await stack.enter_async_context(Bus(cfg.redis_url))
            cache = await stack.enter_async_context(
                open_cache(
                    cfg.redis_url,
                    ttl_s=cfg.cache_ttl_s,
                    bounds=cfg.cache_bounds,
                    near_ttl_s=cfg.cache_near_ttl_s,
                )
            )
            if isinstance(cache, NearCache):
                bus.listen(cache.drop_channel)
            services = Services(
                settings=cfg,
                engine=engine,
                chains=chain_infos(chains_config),
                bus=bus,
                cache=cache,
            )
            app.state.services = services
            limiter = await stack.enter_async_context(
                open_rate_limiter(
                    cfg.redis_url,
                    per_ip=cfg.rate_limit_per_ip_per_minute,
                    per_user=cfg.rate_limit_per_minute,
                )
            )
            app.state.rate_limiter = limiter
            sockets = await stack.enter_async_context(
                open_socket_slots(cfg.redis_url, per_user=cfg.ws_max_sockets_per_user)
            )
            app.state.authenticator = Authenticator(services, limiter, sockets)
            if cfg.run_worker:
                await stack.enter_async_context(running_worker(services, chains_config))
            # What startup built (modules, schema, pools) lives as long as the app: out of the
            # collector's sight, a full collection walks only what requests left (issue 21:
            # one took 123 ms of the event loop mid-request). Given back at the end, so a
            # process running app after app (the tests) keeps collecting their garbage.
            gc.freeze()
            stack.callback(gc.unfreeze)
            # Here, not in `serve`: each of `serve --workers N`'s processes runs this.
            # A full collection walks every live object: 0.5 to 1.4 s with 10,000 websockets,
            # a pause in every client's updates that made the fan-out p99
            # (docs/BENCHMARKS.md): ten times rarer (every 100 middle-generation collections;
            # CPython also waits until the long-lived objects grew by 25 %). The youngest
            # generation every 10,000 allocations instead of 700 (issue 17): with 64 requests
            # in flight, a collection every 700 found most of their objects alive, promoted
            # them, and the middle generation's collections walked them all; measured in the
            # server under wrk (GraphQL portfolio, uncached), collection CPU went from ~0.2 to
            # ~0.06-0.11 ms a request, a young collection taking ~4 ms.
            thresholds = gc.get_threshold()
            gc.set_threshold(10_000, thresholds[1], 100)
            stack.callback(gc.set_threshold, *thresholds)
            yield

    allowlist = load_allowlist(cfg.graphql_allowlist) if cfg.graphql_allowlist else None
    schema = build_schema(
        max_depth=cfg.graphql_max_depth,
        max_cost=cfg.graphql_max_cost,
        introspection=cfg.graphql_introspection,
        allowlist=allowlist,
    )
    graphql = AuthenticatedGraphQL(
        GraphQLApp(
            schema,
            keep_alive=True,
            keep_alive_interval=15,
            max_subscriptions_per_connection=cfg.ws_max_subscriptions_per_socket,
        ),
        PersistedQueries(allowlist),
    )
    routes: list[BaseRoute] = [
        # the busiest first: Starlette tries each route's pattern in turn (the REST routes
        # before it cost /graphql some 15 regular-expression matches a request)
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        *rest_routes(),
        WebSocketRoute("/v1/ws", portfolio_socket),
        *dashboard_routes(),
    ]
    if cfg.metrics_enabled:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        # outermost first: request id and access log, timing, then the abuse limits
        middleware=[
            Middleware(RequestIds),
            # CORS headers on every answer, refusals of the limits included
            *cors_middleware(cfg),
            Middleware(SecurityHeaders),
            Middleware(HttpMetrics),
            Middleware(RequestLimits, max_body_bytes=cfg.max_body_bytes),
        ],
        exception_handlers={
            ChainfolioError: _chainfolio_error,
            HTTPException: _http_error,
            **dict.fromkeys(database_error_types(), _database_error),
            Exception: _unexpected_error,
        },
    )
