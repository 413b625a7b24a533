"""Depth, alias and cost limits of a GraphQL document, measured in time linear in its size.

Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk every fragment spread anew, so a
document of a few dozen fragments that each spread the next twice takes exponential time to
validate and blocks the event loop (40 levels: hours). Here each fragment is measured once
and its measure reused wherever it is spread.

They run before graphql-core's validation rules (`LimitedValidation`), and a document over
them is refused without running those: some (overlapping fields) are quadratic in the number
of fields.

Cost = one per selected field, fragments expanded (as execution would), plus a weight per
root field that reads a series or runs analytics: depth and aliases bound a document's
shape, cost bounds the work it asks for (e.g. one expensive field under 30 aliases).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import ParserCache as StrawberryParserCache
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

# Extra cost of root fields beyond their one: they read many rows or compute analytics.
ROOT_WEIGHTS: Mapping[str, int] = {
    "portfolio": 10,
    "history": 50,
    "performance": 50,
    "compare": 50,
    "allocation": 10,
    "rebalance": 25,
}


@dataclass(frozen=True, slots=True)
class Measure:
    """What a selection set asks for, fragments expanded."""

    cost: int = 0
    depth: int = 0  # nesting of its deepest field (root fields are at 0)
    aliases: int = 0

    def plus(self, other: Measure, *, depth: int) -> Measure:
        """Both together, with `depth` as the deeper of the two."""
        return Measure(self.cost + other.cost, depth, self.aliases + other.aliases)


class _Measurer:
    """Measures one document's selection sets; each fragment once (memoised)."""

    def __init__(self, context: ValidationContext) -> None:
        self._context = context
        self._fragments: dict[tuple[str, bool], Measure] = {}

    def of(self, selection_set: SelectionSetNode | None, *, root: bool) -> Measure:
        """The measure of a selection set (`root`: its fields are the operation's)."""
        total = Measure()
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                name = selection.name.value
                inner = self.of(selection.selection_set, root=False)
                own = Measure(
                    1 + (ROOT_WEIGHTS.get(name, 0) if root else 0) + inner.cost,
                    0,
                    (1 if selection.alias else 0) + inner.aliases,
                )
                # introspection (`__schema`, `__type`) is exempt from the depth limit
                nested = 1 + inner.depth if selection.selection_set else 0
                depth = 0 if name.startswith("__") else nested
                total = total.plus(own, depth=max(total.depth, depth))
            else:
                if isinstance(selection, InlineFragmentNode):
                    inner = self.of(selection.selection_set, root=root)
                else:
                    assert isinstance(selection, FragmentSpreadNode)
                    inner = self._fragment(selection.name.value, root=root)
                total = total.plus(inner, depth=max(total.depth, inner.depth))
        return total

    def _fragment(self, name: str, *, root: bool) -> Measure:
        key = (name, root)
        if key not in self._fragments:
            self._fragments[key] = Measure()  # a cycle (reported by another rule) adds nothing
            fragment = self._context.get_fragment(name)
            self._fragments[key] = self.of(fragment.selection_set if fragment else None, root=root)
        return self._fragments[key]


def document_limits_rule(
    *, max_depth: int, max_aliases: int, max_cost: int
) -> type[ValidationRule]:
    """A validation rule refusing operations over any of the three limits."""

    class DocumentLimits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            measure = _Measurer(self.context).of(node.selection_set, root=True)
            name = f"'{node.name.value}'" if node.name else "the operation"
            if measure.depth > max_depth:
                self.report_error(
                    GraphQLError(f"{name} is nested deeper than the limit of {max_depth}", node)
                )
            if measure.aliases > max_aliases:
                self.report_error(
                    GraphQLError(
                        f"{name} uses {measure.aliases} aliases, over the limit of {max_aliases}",
                        node,
                    )
                )
            if measure.cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"{name} costs {measure.cost}, over the limit of {max_cost}: "
                        "ask for fewer fields or split the query",
                        node,
                    )
                )

    return DocumentLimits


class LimitedValidation(SchemaExtension):
    """Validation in two steps: the document limits (linear), then, only for a document within
    them, every other rule, cached by document (in place of strawberry's ValidationCache)."""

    def __init__(self, limits: type[ValidationRule], *, maxsize: int = 256) -> None:
        super().__init__()
        self._limits = (limits,)
        self._validate = _cached_validation(maxsize)

    def on_validate(self) -> Iterator[None]:
        """Sets the validation errors, so strawberry does not validate again."""
        context = self.execution_context
        assert context.graphql_document is not None
        schema = context.schema._schema
        # both steps cached by document (the parser cache hands out the same node for the
        # same text): the limits walk cost a tenth of an uncached portfolio request
        errors = self._validate(schema, context.graphql_document, self._limits)
        context.pre_execution_errors = errors or self._validate(
            schema, context.graphql_document, tuple(context.validation_rules)
        )
        yield


@lru_cache
def _cached_validation(maxsize: int) -> Callable[..., list[GraphQLError]]:
    # one cache per size for the process, like strawberry's ValidationCache
    return lru_cache(maxsize=maxsize)(validate_document)


class ParserCache(StrawberryParserCache):
    """Strawberry's parser cache, minus its one flaw: it parses before the parsing step's
    error handling, so a syntax error escaped it. Over HTTP that still became an error
    answer, but a subscription over websockets got a bare "complete" and a logged traceback.
    Here a document that does not parse is left to strawberry's own parse, whose error is
    answered as the protocol says (graphql-transport-ws: close with 4400 and the message)."""

    def on_parse(self) -> Iterator[None]:
        """Parse through the cache; on a syntax error leave the document unset."""
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield
