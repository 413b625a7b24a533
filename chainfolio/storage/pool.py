"""A connection pool that serves waiting requests first come, first served.

SQLAlchemy's `AsyncAdaptedQueuePool` hands a returned connection to whoever asks next: a new
request takes an idle connection with `get_nowait` ahead of requests already waiting, and
`asyncio.Queue` puts a woken waiter that lost the race at the back of the line. Under more
concurrent requests than connections (64 against 10 + 10 in `bench_uncached.py`) some requests
waited again and again: p50 56 ms but p99 605 ms and a maximum of 1.5 s in process, and the
p95 of an uncached answer was ~9x its p50 (docs/BENCHMARKS.md). Here a returned connection
goes straight to the longest waiter, and nobody takes an idle one while others wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty


class FairQueue(AsyncAdaptedQueue[Any]):
    """The pool's queue of idle connections, with a FIFO line of waiters in front of it."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        """A returned connection: to the longest waiter, else idle in the queue."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """An idle connection if nobody waits for one; else a place at the end of the line."""
        waiters = self._waiters
        while waiters and waiters[0].done():  # gave up (timed out, cancelled): out of line
            waiters.popleft()
        if not waiters:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        if not block:
            raise Empty()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await_(asyncio.wait_for(asyncio.shield(waiter), timeout))
        except BaseException as exc:
            # timed out or cancelled: a connection handed over meanwhile goes to the next
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise Empty() from exc
            raise


class FairPool(AsyncAdaptedQueuePool):
    """`AsyncAdaptedQueuePool` with `FairQueue`: waiters get connections in arrival order."""

    _queue_class = FairQueue
    # log as the pool it replaces (under `sqlalchemy.`, WARNING by default), not as a
    # chainfolio module at INFO: "Pool disposed" lines on every CLI command otherwise
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"
