"""Compiled selections (`schema.compiled`) give graphql-core's own answers, values, nulls and
errors alike, on the first sight of a document (not compiled), the second (compiled) and after.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.types.base_scalars import DecimalDefinition

from chainfolio.core.domain import plain
from chainfolio.schema.compiled import LONG
from chainfolio.schema.document_limits import ParserCache
from chainfolio.schema.execution import _COMPILED, _SEEN_ONCE
from chainfolio.schema.slices import SlicedExecutionContext


@strawberry.enum
class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


@strawberry.type
class Leg:
    name: str
    amount: Decimal
    price: Decimal | None
    side: Side
    count: int
    flag: bool
    note: str | None = None
    broken: int = 0  # holds None or a string in some rows: graphql-core's errors must come out

    @strawberry.field
    def label(self) -> str:
        return f"{self.name}:{self.count}"

    @strawberry.field
    def raising(self) -> int:
        if self.count == 2:
            raise ValueError("no raising for two")
        return self.count

    @strawberry.field
    def nothing(self) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    async def later(self) -> int:
        await asyncio.sleep(0)
        return self.count * 10

    @strawberry.field
    def described(self, info: strawberry.Info) -> str:
        return f"{info.field_name}:{self.name}"


LEGS = [
    Leg(name="a", amount=Decimal("1E+4"), price=None, side=Side.BUY, count=1, flag=True),
    Leg(name="b", amount=Decimal("0.10"), price=Decimal(3), side=Side.SELL, count=2, flag=False),
    Leg(
        name="c",
        amount=Decimal(-1),
        price=Decimal("2.5"),
        side=Side.BUY,
        count=3,
        flag=True,
        note="n",
    ),
]
BROKEN = [dataclasses.replace(LEGS[0], broken=None), dataclasses.replace(LEGS[1], broken="x")]  # type: ignore[arg-type]


@strawberry.type
class Book:
    title: str
    legs: list[Leg]
    lead: Leg | None
    numbers: list[int]
    maybe_legs: list[Leg | None]

    @strawberry.field
    def top(self) -> Leg:
        return self.legs[0]

    @strawberry.field
    def sorted_legs(self) -> list[Leg]:
        return sorted(self.legs, key=lambda leg: -leg.count)


def _book(legs: list[Leg], lead: Leg | None = None) -> Book:
    return Book(
        title="t",
        legs=legs,
        lead=lead,
        numbers=[leg.count for leg in legs],
        maybe_legs=[legs[0], None] if legs else [],
    )


@strawberry.type
class Query:
    @strawberry.field
    def book(self) -> Book:
        return _book(LEGS, LEGS[2])

    @strawberry.field
    def empty(self) -> Book:
        return _book(LEGS[:1])

    @strawberry.field
    def broken(self) -> Book:
        return _book(BROKEN)

    @strawberry.field
    def long(self) -> Book:
        return _book([dataclasses.replace(LEGS[n % 3], count=n) for n in range(LONG + 7)])

    @strawberry.field
    def books(self) -> list[Book]:
        return [_book(LEGS), _book(LEGS[1:], LEGS[0])]

    @strawberry.field
    def missing(self) -> Book | None:
        return None


def _schema(context: type[Any]) -> strawberry.Schema:
    decimal = dataclasses.replace(DecimalDefinition, serialize=plain)
    return strawberry.Schema(
        query=Query,
        execution_context_class=context,
        # one parse per document, as the app's schema: the same nodes on every request
        extensions=[lambda: ParserCache(maxsize=64)],
        config=StrawberryConfig(scalar_map={Decimal: decimal}),
    )


STOCK = _schema(StrawberryGraphQLCoreExecutionContext)
COMPILED = _schema(SlicedExecutionContext)

DOCUMENTS = [
    # compiled: attributes, `self` methods, nested objects and lists, aliases, fragments
    "{ book { title legs { name amount price side count flag note label } lead { name } } }",
    "{ book { t: title title l: legs { n: name name } top { label } sortedLegs { count } } }",
    "{ book { ...B } } fragment B on Book { title legs { ...L } } fragment L on Leg { name }",
    "{ book { ... on Book { numbers maybeLegs { name } } __typename legs { __typename } } }",
    "{ books { title lead { name side } legs { label } } empty { lead { name } } }",
    "{ missing { title } book { title } }",
    # not the plain case: graphql-core answers (errors, async and info resolvers, arguments)
    "{ book { legs { name raising } } }",
    "{ book { legs { nothing } } }",
    "{ book { lead { nothing } title } }",
    "{ broken { legs { name broken } } }",
    "{ broken { lead { name } legs { count } } book { title } }",
    "{ book { legs { name later } } }",
    "{ book { legs { described } } }",
    "query($s: Boolean!) { book { title @skip(if: $s) legs { name @include(if: $s) } } }",
    "query($s: Boolean!) { book { ... @include(if: $s) { title } legs { count } } }",
    # over LONG items: the sliced completion
    "{ long { title legs { name count } numbers } }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("skip", [False, True])
async def test_compiled_answers_equal_graphql_core(document: str, skip: bool) -> None:
    variables = {"s": skip}
    stock = await STOCK.execute(document, variable_values=variables)
    for _ in range(3):  # first sight, compiled, compiled and cached
        ours = await COMPILED.execute(document, variable_values=variables)
        assert ours.data == stock.data
        assert [e.formatted for e in ours.errors or []] == [e.formatted for e in stock.errors or []]


def _compiled_types() -> set[str]:
    return {
        kind.name
        for (kind, _), (_, build) in _COMPILED.items()
        if build is not None and build is not _SEEN_ONCE
    }


async def test_the_plain_selections_are_compiled_on_second_sight() -> None:
    _COMPILED.clear()
    document = "{ book { title top { label } lead { side } } }"
    await COMPILED.execute(document)
    assert _compiled_types() == set()  # seen once: a document parsed per request never pays
    await COMPILED.execute(document)
    assert _compiled_types() == {"Book", "Leg"}
    # a list's items are the same selection over and over: compiled from its second item
    _COMPILED.clear()
    await COMPILED.execute("{ book { legs { name amount } } }")
    assert _compiled_types() == {"Leg"}


async def test_an_async_field_keeps_its_object_on_graphql_core() -> None:
    _COMPILED.clear()
    for _ in range(2):
        await COMPILED.execute("{ book { title legs { later } lead { name } } }")
    assert _compiled_types() == {"Leg"}  # `lead { name }`; `legs { later }` is async: not Book
