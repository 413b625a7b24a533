"""Input checks shared by the analytics modules, and the no-NaN-out rule for results."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from chainfolio.analytics.errors import NotEnoughData

FloatArray = npt.NDArray[np.float64]

Amount = float | Decimal
"""A USD amount as storage holds it (Decimal) or as a float."""


def float_vector(*, name: str, data: npt.ArrayLike) -> FloatArray:
    """Return `data` as a 1-D float64 array of finite numbers, or raise ValueError naming it."""
    array = np.asarray(data, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def valuation_series(
    *, times: npt.ArrayLike, values: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Check a valuation series: equal lengths, at least two points, strictly increasing times."""
    time_array = float_vector(name="times", data=times)
    value_array = float_vector(name="values", data=values)
    if time_array.size != value_array.size:
        raise ValueError(
            f"times and values differ in length ({time_array.size} != {value_array.size})"
        )
    if time_array.size < 2:
        raise NotEnoughData(f"need at least 2 valuations, got {time_array.size}")
    if np.any(np.diff(time_array) <= 0):
        raise ValueError("times must be strictly increasing")
    return time_array, value_array


def cash_flows(
    *, flow_times: npt.ArrayLike, flow_amounts: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Check external cash flows: equal lengths, finite; order does not matter."""
    time_array = float_vector(name="flow_times", data=flow_times)
    amount_array = float_vector(name="flow_amounts", data=flow_amounts)
    if time_array.size != amount_array.size:
        raise ValueError(
            f"flow_times and flow_amounts differ in length ({time_array.size} != "
            f"{amount_array.size})"
        )
    return time_array, amount_array


def finite_or_none(value: float) -> float | None:
    """Return `value` as a float, or None when it is NaN or infinite."""
    number = float(value)
    return number if math.isfinite(number) else None


def finite_number(value: Amount, *, name: str) -> float:
    """Return `value` as a float, or raise ValueError naming it when it is NaN or infinite."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} is not a finite number")
    return number
