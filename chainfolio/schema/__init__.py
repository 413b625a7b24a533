"""The Strawberry schema: Query, Mutation (and Subscription) over the resolvers.

May import: `resolvers`, `storage` (row types), `core`. Never `api` or `worker`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal

import strawberry
from strawberry.extensions import MaxTokensLimiter, SchemaExtension
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.base_scalars import DecimalDefinition

from chainfolio.core.domain import plain
from chainfolio.core.metrics import GraphQLMetrics
from chainfolio.schema.document_limits import (
    LimitedValidation,
    ParserCache,
    document_limits_rule,
)
from chainfolio.schema.errors import ErrorCodes, QuietSchema
from chainfolio.schema.execution import LeanExecutionContext
from chainfolio.schema.persisted import allowlist_extension
from chainfolio.schema.root import Mutation, Query
from chainfolio.schema.series import SERIES_SCALARS
from chainfolio.schema.subscription import Subscription


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
        lambda: LimitedValidation(limits, maxsize=256),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    if allowlist is not None:
        extensions.append(allowlist_extension(allowlist))
    return QuietSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=LeanExecutionContext,
        config=StrawberryConfig(
            scalar_map={
                **SERIES_SCALARS,
                # exact strings without exponents ("10000", not asyncpg's "1E+4")
                Decimal: dataclasses.replace(DecimalDefinition, serialize=plain),
            }
        ),
    )
