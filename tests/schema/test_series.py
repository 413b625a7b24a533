"""The series scalars serialise as their item-by-item forms would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from chainfolio.schema.series import SERIES_SCALARS, DateTimeSeries

serialize = SERIES_SCALARS[DateTimeSeries].serialize


@given(st.lists(st.datetimes(timezones=st.just(UTC)), max_size=50))
def test_utc_date_times_as_isoformat_writes_them(values: list[datetime]) -> None:
    assert serialize(values) == [v.isoformat() for v in values]


@given(
    st.lists(
        st.datetimes(
            timezones=st.sampled_from(
                [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(seconds=3661))]
            )
        ),
        max_size=20,
    )
)
def test_any_offset_as_isoformat_writes_it(values: list[datetime]) -> None:
    assert serialize(values) == [v.isoformat() for v in values]
