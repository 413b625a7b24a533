"""Long lists and series completed in slices give graphql-core's own answers — values, nulls
and errors at the same paths — and the event loop gets turns while they complete."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from chainfolio.schema import slices
from chainfolio.schema.series import SERIES_SCALARS, DateTimeSeries
from chainfolio.schema.slices import SlicedExecutionContext

START = datetime(2026, 1, 1, tzinfo=UTC)
COUNT = 3 * slices.LONG + 7


@strawberry.type
class Point:
    at: datetime
    value: int
    broken: int  # None in one row: its error must come out where graphql-core puts it


@strawberry.type
class Series:
    times: DateTimeSeries
    points: list[Point]
    maybe: list[Point | None]
    numbers: list[int]
    gappy: list[int | None]


def _rows(broken_at: int | None) -> Series:
    points = [
        Point(at=START + timedelta(minutes=5 * k), value=k, broken=None if k == broken_at else k)  # type: ignore[arg-type]
        for k in range(COUNT)
    ]
    return Series(
        times=DateTimeSeries([p.at for p in points]),
        points=points,
        maybe=[*points],
        numbers=[p.broken for p in points],
        gappy=[p.broken for p in points],
    )


@strawberry.type
class Query:
    @strawberry.field
    def series(self) -> Series:
        return _rows(None)

    @strawberry.field
    def broken(self) -> Series:
        return _rows(COUNT - 3)


def _schema(context: type[Any]) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        execution_context_class=context,
        config=StrawberryConfig(scalar_map=SERIES_SCALARS),
    )


DOCUMENTS = [
    "{ series { times points { at value } } }",
    "{ series { points { value broken } maybe { value } } }",
    "{ broken { times maybe { value broken } } }",  # nullable items: nulls and errors
    "{ broken { points { value broken } } }",  # non-null items: the error bubbles up
    "{ series { t: times times } }",
    "{ series { numbers gappy } }",  # long lists of leaves, in the lean loop
    "{ broken { gappy } }",
    "{ broken { numbers } }",  # a null in a non-null leaf list: graphql-core's error
]


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_sliced_answers_equal_graphql_core(document: str) -> None:
    stock = await _schema(StrawberryGraphQLCoreExecutionContext).execute(document)
    sliced = await _schema(SlicedExecutionContext).execute(document)
    assert sliced.data == stock.data
    assert [e.formatted for e in sliced.errors or []] == [e.formatted for e in stock.errors or []]


async def test_the_loop_gets_turns_while_a_long_list_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slices, "BUDGET_S", 0.0)  # a turn at every look at the clock
    turns = 0
    done = asyncio.Event()

    async def count_turns() -> None:
        nonlocal turns
        while not done.is_set():
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    started = time.perf_counter()
    result = await _schema(SlicedExecutionContext).execute("{ series { times points { value } } }")
    done.set()
    await counter
    assert result.errors is None
    assert result.data is not None
    assert len(result.data["series"]["points"]) == COUNT
    # one turn per 50 list items and per 500 series items, at least
    assert turns >= COUNT // 50, (turns, time.perf_counter() - started)
