"""Which stored valuations a chart bucket or a risk return stands for (as-of sampling).

Returns are linked at full resolution (every stored valuation); charts and risk figures read
that series at a regular grid. A bucket `[b, b + step)` is labelled by its start `b` and holds
the last valuation before its end; the first bucket holds the series' first point instead (the
value as of the window start); a series within one bucket also has its end as a second sample,
labelled by its own time. A step between two buckets is *complete* — it counts in risk
figures — when the buckets are adjacent and their samples lie one step apart (within
`STEP_TOLERANCE`): a partial first bucket (the window start mid-bucket), a partial last one
(a live valuation mid-bucket) and a bucket missing valuations at its end do not count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chainfolio.analytics.validation import FloatArray, float_vector

IntArray = npt.NDArray[np.intp]

STEP_TOLERANCE = 0.1
"""How far (as a fraction of the step) two samples may be from one step apart and count."""


@dataclass(frozen=True, slots=True, eq=False)
class BucketSamples:
    """One sample per bucket with data; `complete[k]` is about the step from bucket k to k + 1."""

    buckets: FloatArray
    points: IntArray
    complete: npt.NDArray[np.bool_]

    @property
    def complete_steps(self) -> int:
        """How many steps count in risk figures."""
        return int(np.count_nonzero(self.complete))


def bucket_samples(*, times: npt.ArrayLike, origin: float, step: float) -> BucketSamples:
    """Sample increasing `times` (POSIX seconds) into buckets of `step` seconds from `origin`."""
    time_array = float_vector(name="times", data=times)
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive number of seconds, got {step}")
    if time_array.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return BucketSamples(empty, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.bool_))
    labels = origin + np.floor((time_array - origin) / step) * step
    last = np.flatnonzero(np.concatenate((labels[1:] != labels[:-1], [True])))
    points = last.astype(np.intp)
    points[0] = 0  # the first bucket stands for the window start, not its own last valuation
    buckets = labels[last]
    if points.size == 1 and last[0] != 0:
        # All in one bucket: the end is a second sample, labelled by its own time.
        points = np.array([0, last[0]], dtype=np.intp)
        buckets = np.array([buckets[0], time_array[last[0]]])
    adjacent = np.abs(np.diff(buckets) - step) <= 1e-6 * step
    regular = np.abs(np.diff(time_array[points]) - step) <= STEP_TOLERANCE * step
    complete = adjacent & regular
    return BucketSamples(buckets=buckets, points=points, complete=complete)
