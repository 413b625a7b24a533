"""The Strawberry schema: Query, Mutation (and Subscription) over the resolvers.

May import: `resolvers`, `storage` (row types), `core`. Never `api` or `worker`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, SchemaExtension
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.base_scalars import DecimalDefinition, wrap_parser
from strawberry.types import ExecutionContext

from chainfolio.core.domain import plain
from chainfolio.core.inputs import finite_decimal
from chainfolio.core.logs import ClientErrorLog
from chainfolio.core.metrics import GraphQLMetrics
from chainfolio.schema.document_limits import (
    LimitedValidation,
    ParserCache,
    document_limits_rule,
)
from chainfolio.schema.errors import ErrorCodes, expected
from chainfolio.schema.persisted import allowlist_extension
from chainfolio.schema.root import Mutation, Query
from chainfolio.schema.series import SERIES_SCALARS
from chainfolio.schema.slices import SlicedExecutionContext
from chainfolio.schema.subscription import Subscription

log = logging.getLogger(__name__)


class _Schema(strawberry.Schema):
    """Strawberry's schema, logging errors our way: strawberry logs every error at ERROR with
    a traceback (a fuzz run wrote 23,431); here unexpected ones are logged once by
    `ErrorCodes` and client errors at INFO, rate-limited per client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # per schema (one per app), not per class: apps built in one process (tests) do not
        # share one client's minute of log lines
        self.client_errors = ClientErrorLog()

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Client errors at INFO, without traceback, a few a minute per client."""
        context = execution_context.context if execution_context else None
        request = getattr(context, "request", None)
        client = getattr(getattr(request, "client", None), "host", None) or "unknown"
        for error in errors:
            if not expected(error):
                continue  # logged with its traceback where it is masked (`ErrorCodes`)
            self.client_errors.note(log, client, error.message)


def build_schema(
    *,
    max_depth: int = 12,
    max_cost: int = 500,
    introspection: bool = True,
    allowlist: Mapping[str, str] | None = None,
) -> strawberry.Schema:
    """The schema with abuse limits and parser/validation caches on."""
    # one rule class for the schema's life: the validation cache is keyed by the rules
    limits = document_limits_rule(max_depth=max_depth, max_aliases=30, max_cost=max_cost)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        GraphQLMetrics,  # first, so it exits last and counts the codes ErrorCodes set
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=2_000),
        lambda: ParserCache(maxsize=256),
        # not strawberry's QueryDepthLimiter/MaxAliasesLimiter: exponential on nested fragments
        lambda: LimitedValidation(limits, max_work=max_cost, maxsize=256),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    if allowlist is not None:
        extensions.append(allowlist_extension(allowlist))
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=SlicedExecutionContext,
        config=StrawberryConfig(
            scalar_map={
                **SERIES_SCALARS,
                # exact strings without exponents ("10000", not asyncpg's "1E+4"); NaN,
                # Infinity and exponents past Decimal's range are input errors
                Decimal: dataclasses.replace(
                    DecimalDefinition,
                    serialize=plain,
                    parse_value=wrap_parser(finite_decimal, "Decimal", accept_non_string=True),
                ),
            }
        ),
    )
