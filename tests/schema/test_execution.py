"""The plain-leaf shortcut gives graphql-core's own answers: values, nulls and errors alike."""

from __future__ import annotations

import dataclasses
import enum
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.types.base_scalars import DecimalDefinition

from chainfolio.core.domain import plain
from chainfolio.schema.execution import LeanExecutionContext


@strawberry.enum
class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class Never(BasePermission):
    message = "not allowed"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Item:
    name: str
    amount: Decimal
    price: Decimal | None
    side: Side
    count: int
    broken: int  # holds None or a string in some rows: graphql-core's errors must come out
    secret: str = strawberry.field(permission_classes=[Never], default="s")

    @strawberry.field
    def doubled(self, times: int = 2) -> int:
        return self.count * times


ROWS = [
    Item(name="a", amount=Decimal("1E+4"), price=None, side=Side.BUY, count=1, broken=5),
    Item(name="b", amount=Decimal("0.10"), price=Decimal(3), side=Side.SELL, count=2, broken=None),  # type: ignore[arg-type]
    Item(name="c", amount=Decimal(-1), price=Decimal("2.5"), side=Side.BUY, count=3, broken="x"),  # type: ignore[arg-type]
]


class Duck:
    """Read as an Item by the default resolvers, with a `count` that raises."""

    name = "d"
    amount = Decimal(1)
    price = None
    side = Side.SELL
    broken = 1

    @property
    def count(self) -> int:
        raise ValueError("count unavailable")


@strawberry.type
class Group:
    title: str
    members: list[Item]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ROWS

    @strawberry.field
    def mixed(self) -> list[Item]:
        return [ROWS[0], Duck()]  # type: ignore[list-item]

    @strawberry.field
    def maybe(self) -> list[Item | None]:
        return [ROWS[0], None]

    @strawberry.field
    def amounts(self) -> list[Decimal]:
        return [r.amount for r in ROWS]

    @strawberry.field
    def prices(self) -> list[Decimal | None]:
        return [r.price for r in ROWS]

    @strawberry.field
    def sides(self) -> list[Side]:
        return [r.side for r in ROWS]

    @strawberry.field
    def counts(self) -> list[int]:
        return [1, None, 3]  # type: ignore[list-item]

    @strawberry.field
    def bad_counts(self) -> list[int]:
        return [1, "x", 3]  # type: ignore[list-item]

    @strawberry.field
    def groups(self) -> list[Group]:
        return [Group(title="g", members=ROWS[:2]), Group(title="h", members=[])]

    @strawberry.field
    def first(self) -> Item | None:
        return ROWS[0]


def _schema(context: type[Any]) -> strawberry.Schema:
    decimal = dataclasses.replace(DecimalDefinition, serialize=plain)
    return strawberry.Schema(
        query=Query,
        execution_context_class=context,
        config=StrawberryConfig(scalar_map={Decimal: decimal}),
    )


DOCUMENTS = [
    "{ items { name amount price side count } }",
    "{ items { n: name a: amount name } first { side __typename } }",
    "{ items { ...F } } fragment F on Item { name price }",
    "{ items { ... on Item { count side } } }",
    "query($s: Boolean!) { items { name @skip(if: $s) count @include(if: $s) } }",
    "{ items { name broken } }",
    "{ first { broken } items { count } }",
    "{ items { name secret } }",
    "{ items { doubled d3: doubled(times: 3) } }",
    # lists completed in one loop, and the cases that send a list back to graphql-core
    "{ mixed { name side } }",
    "{ mixed { name count } }",
    "{ maybe { name amount } }",
    "{ items { __typename name } }",
    "{ groups { title members { name amount } } }",
    "{ items { name ...on Item { n: name price } } }",
    # lists of scalars and enums in one loop, and the items that send them back
    "{ amounts prices sides }",
    "{ counts }",
    "{ badCounts }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_lean_answers_equal_graphql_core(document: str) -> None:
    variables = {"s": False}
    stock = await _schema(StrawberryGraphQLCoreExecutionContext).execute(
        document, variable_values=variables
    )
    lean = await _schema(LeanExecutionContext).execute(document, variable_values=variables)
    assert lean.data == stock.data
    assert [e.formatted for e in lean.errors or []] == [e.formatted for e in stock.errors or []]


async def test_errors_come_out_where_graphql_core_puts_them() -> None:
    result = await _schema(LeanExecutionContext).execute("{ items { name broken } }")
    assert result.data is None  # a null in a non-null list item bubbles up to `items`
    assert result.errors
    assert result.errors[0].path == ["items", 1, "broken"]
    assert "Cannot return null for non-nullable field Item.broken" in result.errors[0].message
    wrong = await _schema(LeanExecutionContext).execute("{ first { broken } items { count } }")
    assert wrong.data == {
        "first": {"broken": 5},
        "items": [{"count": 1}, {"count": 2}, {"count": 3}],
    }
