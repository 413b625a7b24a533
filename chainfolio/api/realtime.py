"""`/v1/ws`: the seed's WebSocket protocol over the same bus as GraphQL subscriptions.

Client: `{"type": "subscribe", "channel": "portfolio", "userId": "<token subject>"}`.
Server: `{"type": "portfolio_update", "data": {"totalValue", "change", "changePercent", …}}`.
Also `unsubscribe`, `ping` → `pong`; anything else gets an `error` message, not a disconnect.
The connection is closed with 4401 "token expired" at the token's `exp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from chainfolio.api.web import (
    authenticator_of,
    cancel,
    close_at_expiry,
    close_code,
    error_fields,
    services_of,
)
from chainfolio.bus.broadcast import portfolio_channel
from chainfolio.core.errors import ChainfolioError, InternalError
from chainfolio.resolvers.context import Caller

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
CLOSE_FORBIDDEN = 4403


def _float(text: str) -> float:
    # float(text) == float(Decimal(text)) for every decimal string: both round the exact
    # value once, to nearest (CPython converts a Decimal to float through its string).
    # + 0.0: a negative zero is sent as 0, as `web.number` does.
    return float(text) + 0.0


def seed_message(raw: str) -> str:
    """The bus JSON of a `PortfolioUpdate` mapped straight to the seed message's JSON text.

    The fan-out fast path: the same text as parsing the message into a `PortfolioUpdate`
    (Decimals, holdings, the dataclass) and writing the seed's fields from it, which
    `tests/realtime/test_seed_message.py` checks. Malformed messages raise, as `from_json`
    would.
    """
    data = orjson.loads(raw)
    return orjson.dumps(
        {
            "type": "portfolio_update",
            "data": {
                "totalValue": _float(data["totalValue"]),
                "change": _float(data["change"]),
                "changePercent": None
                if data["changePercent"] is None
                else _float(data["changePercent"]),
                "timestamp": datetime.fromisoformat(data["timestamp"]).isoformat(),
                "staleChains": data.get("staleChains", []),
                "incomplete": data.get("incomplete", False),
            },
        }
    ).decode()


async def _send(ws: WebSocket, message: dict[str, Any]) -> None:
    await ws.send_text(orjson.dumps(message).decode())


async def _error(ws: WebSocket, code: str, message: str) -> None:
    await _refused(ws, ChainfolioError(message, code=code))


async def _refused(ws: WebSocket, exc: ChainfolioError) -> None:
    await _send(ws, {"type": "error", "error": error_fields(exc)})


async def _forward(ws: WebSocket, caller: Caller, subscribed: asyncio.Event) -> None:
    # The fast path: bus JSON → seed JSON (`seed_message`), no `PortfolioUpdate` in between.
    bus = services_of(ws).bus
    async with bus.subscribe(portfolio_channel(caller.user_id)) as subscription:
        subscribed.set()
        while True:
            await ws.send_text(seed_message(await subscription.get()))


async def _authenticate(ws: WebSocket) -> Caller | None:
    header = ws.headers.get("authorization")
    token = ws.query_params.get("token")
    auth = authenticator_of(ws)
    try:
        if header:
            return await auth.caller(header)
        if token:
            return await auth.caller_of_token(token)
        return await auth.caller(None)
    except ChainfolioError as exc:
        await _error(ws, exc.code, exc.message)
        code, reason = close_code(exc)  # 4401; 4429 past the rate limit
        await ws.close(code=code, reason=reason)
        return None


class _Session:
    """One authenticated connection: at most one forwarding task."""

    def __init__(self, ws: WebSocket, caller: Caller) -> None:
        self.ws = ws
        self.caller = caller
        self.forwarder: asyncio.Task[None] | None = None

    async def handle(self, message: Any) -> bool:
        """Answer one client message; False when the connection must end."""
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribe":
            return await self._subscribe(message)
        if kind == "unsubscribe":
            await self.stop()
            await _send(self.ws, {"type": "unsubscribed", "channel": "portfolio"})
        elif kind == "ping":
            await _send(self.ws, {"type": "pong"})
        else:
            await _error(
                self.ws,
                "UNKNOWN_MESSAGE_TYPE",
                f"unknown message type {kind!r}: use subscribe, unsubscribe or ping",
            )
        return True

    async def _subscribe(self, message: dict[str, Any]) -> bool:
        if message.get("channel") != "portfolio":
            await _error(self.ws, "UNKNOWN_CHANNEL", "the only channel is 'portfolio'")
            return True
        if str(message.get("userId")) not in {self.caller.subject, str(self.caller.user_id)}:
            await _error(self.ws, "FORBIDDEN", "userId must be the token's subject")
            await self.ws.close(code=CLOSE_FORBIDDEN, reason="Forbidden")
            return False
        if self.forwarder is None:
            subscribed = asyncio.Event()
            self.forwarder = asyncio.create_task(_forward(self.ws, self.caller, subscribed))
            # Acknowledge only once the bus subscription exists: an update published after
            # the client sees "subscribed" must reach it.
            waiter = asyncio.ensure_future(subscribed.wait())
            done, _ = await asyncio.wait(
                {waiter, self.forwarder}, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter not in done:
                waiter.cancel()
                self.forwarder.result()  # the subscription failed: raise its error
        reply = {"type": "subscribed", "channel": "portfolio", "userId": message.get("userId")}
        await _send(self.ws, reply)
        return True

    async def stop(self) -> None:
        """Cancel forwarding."""
        if self.forwarder is not None:
            self.forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.forwarder
            self.forwarder = None


async def portfolio_socket(ws: WebSocket) -> None:
    """Serve one `/v1/ws` connection."""
    await ws.accept()
    caller = await _authenticate(ws)
    if caller is None:
        return
    auth = authenticator_of(ws)
    try:
        slot = await auth.sockets.acquire(caller)
    except ChainfolioError as exc:
        await _refused(ws, exc)
        await ws.close(*close_code(exc))
        return
    expiry = close_at_expiry(ws, caller)  # 4401 "token expired" at the token's `exp`
    session = _Session(ws, caller)
    try:
        while True:
            raw = await ws.receive_text()
            try:
                await auth.count(caller)  # every message, like an HTTP request
            except ChainfolioError as exc:
                await _refused(ws, exc)
                continue
            if len(raw) > MAX_MESSAGE:
                await _error(ws, "MESSAGE_TOO_LARGE", f"messages are limited to {MAX_MESSAGE} B")
                continue
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                await _error(ws, "INVALID_JSON", "message is not valid JSON")
                continue
            try:
                if not await session.handle(message):
                    return
            except ChainfolioError as exc:
                await _refused(ws, exc)
            except WebSocketDisconnect:
                raise
            except Exception:
                log.error("unexpected error on /v1/ws", exc_info=True)
                await _refused(ws, InternalError())
    except WebSocketDisconnect:
        pass
    finally:
        await cancel(expiry)
        await auth.sockets.release(caller, slot)
        await session.stop()
