"""Limits of websockets: sockets per user, and every operation counted against the per-user
rate limit like an HTTP request.

Before, one socket ran 300 queries and 100 mutations past a limit of 60 a minute, and 40
sockets x 100 subscriptions of one token held 76 MB. Subscriptions per socket are capped by
strawberry (`max_subscriptions_per_connection`, from settings); sockets per user are counted
here (`SocketSlots`): across every API process in Redis when `CHAINFOLIO_REDIS_URL` is
`redis://…` (with `serve --workers N` an in-process count let a user hold N times the cap), in
this process otherwise.
"""

from __future__ import annotations

from typing import Any, Protocol

from graphql import GraphQLFormattedError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyError
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from chainfolio.core.errors import ChainfolioError
from chainfolio.resolvers.context import Caller

SLOT = "socket_slot"  # scope state: the slot the socket holds (its id)


class TooManySockets(ChainfolioError):
    """The user has as many websockets open as allowed (closed with 4429)."""

    code = "TOO_MANY_SOCKETS"
    status = 429


class SocketSlots(Protocol):
    """Open websockets per user, at most `per_user` each (`chainfolio.api.slots`)."""

    per_user: int

    async def acquire(self, caller: Caller) -> str:
        """Take a slot for a new socket of `caller` (its id), or TooManySockets."""
        ...

    async def release(self, caller: Caller, slot: str) -> None:
        """Give the slot of a closed socket back."""
        ...


def _refusal(exc: ChainfolioError) -> GraphQLFormattedError:
    extensions: dict[str, object] = {"code": exc.code}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        extensions["retryAfter"] = retry_after
    return {"message": exc.message, "extensions": extensions}


async def _counted(context: Any) -> GraphQLFormattedError | None:
    """Count one more operation of the socket's user: None to run it, else its refusal."""
    caller: Caller | None = context.caller_
    if caller is None:
        return None  # not acknowledged: strawberry closes the socket
    try:
        await context.request.app.state.authenticator.count(caller)
    except ChainfolioError as exc:
        return _refusal(exc)
    return None


class _ReleasesSlot:
    """Gives the socket's slot back when strawberry's handler ends."""

    context: Any

    async def handle(self) -> None:
        """Serve the socket; give its slot back at the end."""
        try:
            await super().handle()  # type: ignore[misc]
        finally:
            caller: Caller | None = self.context.caller_
            request = self.context.request
            slot = request.scope.get("state", {}).pop(SLOT, None)
            if caller is not None and slot is not None:
                await request.app.state.authenticator.sockets.release(caller, slot)


class TransportWSHandler(_ReleasesSlot, BaseGraphQLTransportWSHandler[Any, None]):
    """graphql-transport-ws: each `subscribe` (queries and mutations too) counts against the
    user's rate limit; past it the operation gets an `error` with RATE_LIMITED."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Count the operation, then run it as strawberry does."""
        refusal = await _counted(self.context) if self.connection_acknowledged else None
        if refusal is not None:
            await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[refusal]))
            return
        await super().handle_subscribe(message)


class LegacyWSHandler(_ReleasesSlot, BaseGraphQLWSHandler[Any, None]):
    """graphql-ws (legacy): each `start` counts against the user's rate limit."""

    async def handle_start(self, message: StartMessage) -> None:
        """Count the operation, then run it as strawberry does."""
        refusal = await _counted(self.context) if self.connection_acknowledged else None
        if refusal is not None:
            await self.send_message(LegacyError(type="error", id=message["id"], payload=refusal))
            return
        await super().handle_start(message)
