"""`find_gaps` against the definition: every bucket start between two points that has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chainfolio.resolvers.history import find_gaps

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    st.lists(st.integers(min_value=0, max_value=400), unique=True, max_size=60),
    st.sampled_from([timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)]),
)
def test_gaps_are_the_missing_bucket_starts(indices: list[int], step: timedelta) -> None:
    present = sorted(indices)
    buckets = [ORIGIN + i * step for i in present]
    missing = (
        [ORIGIN + i * step for i in range(present[0], present[-1] + 1) if i not in set(present)]
        if present
        else []
    )
    assert find_gaps(buckets, step) == missing
