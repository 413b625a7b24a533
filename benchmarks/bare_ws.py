"""Baseline for bench_subscriptions: the least a Redis → WebSocket fan-out can do.

One Starlette websocket route, no auth, no protocol: a client connects to `/ws?user=<id>`,
one process-wide Redis PSUBSCRIBE forwards each `chainfolio:portfolio:<id>` message as is to
that user's socket. Run with `uvicorn bare_ws:app` (bench_subscriptions does it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PREFIX = "chainfolio:portfolio:"
sockets: dict[str, WebSocket] = {}


async def _pump(client: redis.Redis) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(PREFIX + "*")
    async for message in pubsub.listen():
        ws = sockets.get(message["channel"].decode().removeprefix(PREFIX))
        if ws is not None:
            await ws.send_text(message["data"].decode())


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    user = ws.query_params["user"]
    sockets[user] = ws
    await ws.send_text('{"type":"subscribed"}')
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.pop(user, None)


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    client = redis.from_url(os.environ["BARE_REDIS_URL"])
    task = asyncio.create_task(_pump(client))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await client.aclose()


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
