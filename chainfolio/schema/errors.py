"""Maps the error hierarchy onto GraphQL `extensions.code`, and masks unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import StreamExecutionResult

from chainfolio.core.errors import ChainfolioError, InternalError
from chainfolio.core.logs import request_id
from chainfolio.storage.database import is_database_unavailable

log = logging.getLogger(__name__)


def expected(error: GraphQLError) -> bool:
    """Whether the error is the client's (bad document or input) or a known condition, not a
    fault of the server."""
    original = error.original_error
    return (
        original is None
        or isinstance(original, GraphQLError)
        or (isinstance(original, ChainfolioError) and original.code != InternalError.code)
    )


def graphql_code(error: GraphQLError) -> tuple[str, str]:
    """The (code, message) a client sees for an execution error (an unexpected one is logged
    here, once, with its traceback)."""
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
    if isinstance(original, GraphQLError):  # a variable's value refused by its scalar
        return "BAD_USER_INPUT", error.message
    if is_database_unavailable(original):
        return "SERVICE_UNAVAILABLE", "database unavailable, try again shortly"
    log.error("unexpected error in resolver", exc_info=original)
    masked = InternalError()
    return masked.code, masked.message


def coded(errors: list[GraphQLError]) -> list[GraphQLError]:
    """The errors as clients see them: each with `extensions.code`, internal ones masked with
    the request id (errors coded already are kept as they are)."""
    mapped: list[GraphQLError] = []
    for error in errors:
        if (error.extensions or {}).get("code"):
            mapped.append(error)
            continue
        code, message = graphql_code(error)
        extensions: dict[str, object] = {**(error.extensions or {}), "code": code}
        if code == InternalError.code:
            extensions["requestId"] = request_id.get()
        mapped.append(
            GraphQLError(
                message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=error.original_error,
                extensions=extensions,
            )
        )
    return mapped


class ErrorCodes(SchemaExtension):
    """Every error leaves with `extensions.code`; internals are never leaked.

    Parse and validation errors get their code as soon as they exist: on websockets a
    subscription refused before execution is answered without the operation's end. Results
    sent over websockets (`on_stream_result`, before each frame leaves) and over HTTP
    (`on_operation`) are mapped the same way, so every transport shows the same errors.
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
        if result is not None and result.errors:
            result.errors = coded(result.errors)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Map a websocket frame's errors before it is sent."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = coded(errors)  # type: ignore[union-attr]
        yield
