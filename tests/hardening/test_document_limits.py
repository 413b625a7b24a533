"""The GraphQL document limits measure fragments as execution would expand them."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from chainfolio.schema import build_schema
from chainfolio.schema.document_limits import document_limits_rule

SCHEMA = build_schema()._schema


def _errors(document: str, *, depth: int = 12, aliases: int = 30, cost: int = 1000) -> list[str]:
    rule = document_limits_rule(max_depth=depth, max_aliases=aliases, max_cost=cost)
    return [error.message for error in validate(SCHEMA, parse(document), [rule])]


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ("{ wallets { id } }", 1),
        ("{ portfolio { holdings { chain } } }", 2),
        (
            "{ ...P } fragment P on Query "
            "{ portfolio { ... on Portfolio { holdings { chain } } } }",
            2,
        ),
        ('{ __type(name: "Query") { fields { type { ofType { ofType { name } } } } } }', 0),
    ],
)
def test_depth_counts_through_fragments_and_skips_introspection(document: str, depth: int) -> None:
    assert _errors(document, depth=depth) == []
    if depth:
        assert _errors(document, depth=depth - 1) == [
            f"the operation is nested deeper than the limit of {depth - 1}"
        ]


def test_aliases_and_cost_count_every_spread() -> None:
    document = """
        query Q { ...W ...W2 }
        fragment W on Query { a: wallets { id } b: wallets { id } }
        fragment W2 on Query { ...W c: history { values } }
    """
    # aliases: W twice (2 + 2) and c; cost: 4 wallets fields x 2, history 1 + 50 + values 1
    assert _errors(document, aliases=5, cost=60) == []
    assert _errors(document, aliases=4, cost=59) == [
        "'Q' uses 5 aliases, over the limit of 4",
        "'Q' costs 60, over the limit of 59: ask for fewer fields or split the query",
    ]
