"""Maps the error hierarchy onto GraphQL `extensions.code`, and masks unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import InvalidOperationTypeError

from chainfolio.core.errors import ChainfolioError
from chainfolio.storage.database import is_database_unavailable

log = logging.getLogger(__name__)


def graphql_code(error: GraphQLError) -> tuple[str, str]:
    """The (code, message) a client sees for an execution error."""
    original = error.original_error
    if isinstance(original, ChainfolioError):
        return original.code, original.message
    if isinstance(original, InvalidOperationTypeError):  # legacy graphql-ws: subscriptions only
        return "BAD_REQUEST", (
            "this transport serves subscriptions only: send queries and mutations over HTTP "
            "or graphql-transport-ws"
        )
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
        self._code_result(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Results sent over websockets (queries and mutations too) leave before the operation
        ends: coded here, as they are yielded, so every transport gives the same codes."""
        self._code_result(result)
        yield

    @staticmethod
    def _code_result(result: Any) -> None:
        errors = getattr(result, "errors", None)
        if not errors:
            return
        result.errors = [_coded(error) for error in errors]


def _coded(error: GraphQLError) -> GraphQLError:
    """The error with its code (masked when unexpected); one already coded is left as is."""
    if (error.extensions or {}).get("code"):
        return error
    code, message = graphql_code(error)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )
