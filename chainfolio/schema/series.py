"""Scalars for long series: a whole array is one GraphQL leaf.

graphql-core completes a `[DateTime!]!` list item by item (resolve, check, serialise each of
8,760 points); as one scalar the array is serialised by a single comprehension. The JSON is
the same as the list form — an array of ISO strings, of exact decimal strings, of numbers or
nulls — only the schema type says "scalar" instead of "list". Output-only: never arguments.

Types annotate fields with the NewTypes; `SERIES_SCALARS` maps them to their GraphQL scalars
(`StrawberryConfig.scalar_map`), which keeps the annotations plain types for mypy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, NewType

import orjson
import strawberry
from strawberry.types.scalar import ScalarDefinition

DateTimeSeries = NewType("DateTimeSeries", list[datetime])
DecimalSeries = NewType("DecimalSeries", list[Decimal])
NullableFloatSeries = NewType("NullableFloatSeries", list[float | None])


def _output_only(_value: Any) -> Any:
    raise ValueError("series scalars are output-only")


_TZINFO = attrgetter("tzinfo")
_UTC_ONLY = frozenset({UTC})


def _datetimes(values: list[datetime]) -> list[str]:
    if set(map(_TZINFO, values)) <= _UTC_ONLY:
        # orjson writes a UTC date-time as `isoformat` does (RFC 3339, `+00:00`, microseconds
        # when there are any), in C: 8,760 took 1.2 ms where the comprehension took 5.8
        # (tests/schema/test_series.py compares them). Offsets with seconds would differ.
        encoded: list[str] = orjson.loads(orjson.dumps(values))
        return encoded
    return [v.isoformat() for v in values]


def _decimals(values: list[Decimal]) -> list[str]:
    return [format(v, "f") for v in values]  # `domain.plain`, inlined: thousands of points


def _floats(values: list[float | None]) -> list[float | None]:
    return values


SERIES_SCALARS: dict[object, ScalarDefinition] = {
    DateTimeSeries: strawberry.scalar(
        name="DateTimeSeries",
        serialize=_datetimes,
        parse_value=_output_only,
        description="An array of ISO-8601 date-times, serialised as one value.",
    ),
    DecimalSeries: strawberry.scalar(
        name="DecimalSeries",
        serialize=_decimals,
        parse_value=_output_only,
        description="An array of exact decimal strings, serialised as one value.",
    ),
    NullableFloatSeries: strawberry.scalar(
        name="NullableFloatSeries",
        serialize=_floats,
        parse_value=_output_only,
        description="An array of numbers, null where a bucket has no value; one value.",
    ),
}
