"""Maps the error hierarchy onto GraphQL `extensions.code`, and masks unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from chainfolio.core.errors import ChainfolioError
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
    """Every error leaves with `extensions.code`; internals are never leaked.

    Parse and validation errors get their code as soon as they exist: on websockets a
    subscription refused before execution is answered without the operation's end, where
    `on_operation` maps the rest.
    """

    def _code_early_errors(self) -> None:
        for error in self.execution_context.pre_execution_errors or ():
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": graphql_code(error)[0]}

    def on_parse(self) -> Iterator[None]:
        yield
        self._code_early_errors()

    def on_validate(self) -> Iterator[None]:
        yield
        self._code_early_errors()

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


class QuietSchema(strawberry.Schema):
    """Strawberry logs every error of a result at ERROR with a traceback; an answer with a code
    (no targets saved yet, no history yet, bad input) is the normal state of some user, not an
    incident. Those go to DEBUG; the rest are logged as Strawberry does."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log the unexpected errors of a result; answered ones only at DEBUG."""
        unexpected = []
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, ChainfolioError):
                log.debug("answered with an error: %s", error.message)
            else:
                unexpected.append(error)
        super().process_errors(unexpected, execution_context)
