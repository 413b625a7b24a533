"""Hypothesis strategies shared by the analytics tests."""

from __future__ import annotations

from typing import TypedDict

from hypothesis import strategies as st


class Flows(TypedDict):
    """External flows as keyword arguments of the analytics functions."""

    flow_times: list[float]
    flow_amounts: list[float]


class Series(Flows):
    """A valuation series with its flows, as keyword arguments."""

    times: list[float]
    values: list[float]


value_strategy = st.one_of(
    st.just(0.0),
    st.integers(1, 100_000_000).map(lambda cents: cents / 100),
    st.integers(-1_000_000, -1).map(lambda cents: cents / 100),
)


@st.composite
def portfolio_cases(draw: st.DrawFn) -> Series:
    """Irregular hourly valuations in cents (zeros and net debt included) and random flows."""
    n = draw(st.integers(2, 30))
    steps = draw(st.lists(st.integers(1, 10), min_size=n - 1, max_size=n - 1))
    times = [0.0]
    for step in steps:
        times.append(times[-1] + step * 3600.0)
    values = draw(st.lists(value_strategy, min_size=n, max_size=n))
    flow_count = draw(st.integers(0, 8))
    flow_times = [draw(st.floats(-3600.0, times[-1] + 3600.0)) for _ in range(flow_count)]
    flow_amounts = [draw(st.integers(-50_000_00, 50_000_00)) / 100 for _ in range(flow_count)]
    return {
        "times": times,
        "values": values,
        "flow_times": flow_times,
        "flow_amounts": flow_amounts,
    }
