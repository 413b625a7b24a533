"""Attribution: which assets or chains the period's gain came from, and each one's contribution to
the portfolio's return (simple Dietz by default)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from chainfolio.analytics.validation import Amount, finite_number, finite_or_none


@dataclass(frozen=True, slots=True)
class Contribution:
    """One key's share of the period's gain; rates are fractions, None when undefined."""

    key: str
    start_value: float
    end_value: float
    net_flows: float
    gain: float
    share_of_gain: float | None
    contribution_rate: float | None
    return_rate: float | None


@dataclass(frozen=True, slots=True)
class Attribution:
    """Gain per key (largest first); contribution rates add up to total_gain / average_capital."""

    total_gain: float
    average_capital: float
    contributions: tuple[Contribution, ...]


def attribution(
    *,
    start_values: Mapping[str, Amount],
    end_values: Mapping[str, Amount],
    flows: Mapping[str, Amount] | None = None,
    average_capital: float | None = None,
) -> Attribution:
    """Each key's gain (end - start - flows) and its contribution to the portfolio's return.

    Per-key flows include moves between keys (a swap is a withdrawal from one key and a deposit
    into the other), so trading never shows up as gain. Without `average_capital` the simple
    Dietz denominator (start + half the net flows) is used.
    """
    flow_map = flows or {}
    keys = sorted({*start_values, *end_values, *flow_map})
    start = {
        key: finite_number(start_values.get(key, 0.0), name=f"start of {key!r}") for key in keys
    }
    end = {key: finite_number(end_values.get(key, 0.0), name=f"end of {key!r}") for key in keys}
    moved = {key: finite_number(flow_map.get(key, 0.0), name=f"flows of {key!r}") for key in keys}
    gains = {key: end[key] - start[key] - moved[key] for key in keys}
    total_gain = math.fsum(gains.values())
    if average_capital is None:
        average_capital = math.fsum(start.values()) + 0.5 * math.fsum(moved.values())
    elif not math.isfinite(average_capital):
        raise ValueError("average_capital must be finite")
    contributions = [
        Contribution(
            key=key,
            start_value=start[key],
            end_value=end[key],
            net_flows=moved[key],
            gain=gains[key],
            share_of_gain=finite_or_none(gains[key] / total_gain) if total_gain != 0 else None,
            contribution_rate=_ratio(gains[key], average_capital),
            return_rate=_ratio(gains[key], start[key] + 0.5 * moved[key]),
        )
        for key in keys
    ]
    contributions.sort(key=lambda item: -item.gain)
    return Attribution(
        total_gain=total_gain,
        average_capital=average_capital,
        contributions=tuple(contributions),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator when the denominator is positive and the result finite."""
    return finite_or_none(numerator / denominator) if denominator > 0 else None
