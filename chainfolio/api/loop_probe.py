"""How long the event loop goes without serving anyone else: a probe task woken every
`PROBE_INTERVAL_S`, recording how late it woke (wall time) and how much CPU time the loop's
thread spent since its last wake.

`/healthz` waits for whatever the loop is running. The wall-clock lag is what a client feels,
but on a shared machine it also counts the time the process was not scheduled at all. The
thread's CPU time between two wakes counts only the work our loop did in that stretch (one
long callback, or a few short ones): it is the figure the analytics and GraphQL slicing bound
(issue 21: under 50 ms while the heaviest allowed document runs), and the test asserts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from prometheus_client import Histogram

PROBE_INTERVAL_S = 0.01

_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
LOOP_LAG = Histogram(
    "chainfolio_event_loop_lag_seconds",
    "How late the event-loop probe woke (wall clock; includes time the process was not "
    f"scheduled), observed every {PROBE_INTERVAL_S} s",
    buckets=_BUCKETS,
)
LOOP_BUSY = Histogram(
    "chainfolio_event_loop_busy_seconds",
    "CPU time the event loop's thread spent between two wakes of the probe: the longest "
    "stretch a request such as /healthz could wait on our own work",
    buckets=_BUCKETS,
)


async def _probe() -> None:
    loop = asyncio.get_running_loop()
    cpu = time.thread_time()
    while True:
        expected = loop.time() + PROBE_INTERVAL_S
        await asyncio.sleep(PROBE_INTERVAL_S)
        now_cpu = time.thread_time()
        LOOP_LAG.observe(max(loop.time() - expected, 0.0))
        LOOP_BUSY.observe(now_cpu - cpu)
        cpu = now_cpu


@contextlib.asynccontextmanager
async def probing_loop() -> AsyncIterator[None]:
    """Run the probe until the block ends (the app's lifespan)."""
    task = asyncio.create_task(_probe(), name="event-loop-probe")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
