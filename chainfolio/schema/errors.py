"""Maps the error hierarchy onto GraphQL `extensions.code`, and masks unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from chainfolio.errors import ChainfolioError
from chainfolio.storage.database import is_database_unavailable

log = logging.getLogger(__name__)


def graphql_code(error: GraphQLError) -> tuple[str, str]:
    """The (code, message) a client sees for an execution error."""
    original = error.original_error
    if isinstance(original, ChainfolioError):
        return original.code, original.message
    if original is None:  # syntax / validation errors come from graphql-core itself
        return "GRAPHQL_VALIDATION_FAILED", error.message
    if is_database_unavailable(original):
        return "SERVICE_UNAVAILABLE", "database unavailable, try again shortly"
    log.exception("unexpected error in resolver", exc_info=original)
    return "INTERNAL_SERVER_ERROR", "internal error: the incident was logged"


class ErrorCodes(SchemaExtension):
    """Every error leaves with `extensions.code`; internals are never leaked."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        mapped: list[GraphQLError] = []
        for error in result.errors:
            code, message = graphql_code(error)
            mapped.append(
                GraphQLError(
                    message,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    original_error=error.original_error,
                    extensions={**(error.extensions or {}), "code": code},
                )
            )
        result.errors = mapped
