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

Work = the points the series and analytics fields imply, from their arguments with the
variables of the request (`work_of`): `history` and `compare` one point per interval bucket
of the period (a `history` selecting `points` objects weighs as much per point as `compare`),
`performance` one per hour of it. Checked per request after validation, with
the same limit as the cost: nine `compare(period: "30d", interval: "5m")` cost 500 by shape
but took 1.2 s of CPU; by work each is 442 and only one fits.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    value_from_ast_untyped,
)
from strawberry.extensions import ParserCache as StrawberryParserCache
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from chainfolio.core.periods import INTERVALS, MAX_POINTS, PERIOD_ALIASES, PERIODS

# Extra cost of root fields beyond their one: they read many rows or compute analytics.
ROOT_WEIGHTS: Mapping[str, int] = {
    "portfolio": 10,
    "history": 50,
    "performance": 50,
    "compare": 50,
    "allocation": 10,
    "rebalance": 25,
}


# Points per unit of work of the series and analytics fields, and their default arguments.
_POINTS_PER_WORK: Mapping[str, int] = {"history": 40, "compare": 20, "performance": 40}
# `history { points { … } }`: an object per point, completed field by field, costs as much per
# point as compare (two 10,000-point histories with `points` held the loop longer than one
# compare at 8,640; with the compact arrays only, two are cheaper than that compare)
_OBJECT_POINTS_PER_WORK = 20
_DEFAULTS: Mapping[str, Mapping[str, str | None]] = {
    "history": {"period": "30d", "interval": "1d"},
    "compare": {"period": "30d", "interval": None},
    "performance": {"period": "30d", "interval": "1h"},  # hourly snapshots (no argument)
}
_YEAR = PERIODS["1y"]
_CHART_POINTS = 400  # a compare without interval picks one of at most this many points


def _points(period: object, interval: object) -> int:
    """The buckets `period` at `interval` implies (MAX_POINTS for unknown or unbounded)."""
    if not isinstance(period, str):
        return MAX_POINTS
    key = PERIOD_ALIASES.get(period.strip().lower(), period.strip().lower())
    span = PERIODS.get(key, _YEAR) if key != "all" else None
    if interval is None:
        return _CHART_POINTS
    step = INTERVALS.get(interval.strip().lower()) if isinstance(interval, str) else None
    if span is None or step is None:
        return MAX_POINTS
    return min(MAX_POINTS, math.ceil(span / step))


def work_of(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    """The work an operation's root fields imply with these variables (see the module doc)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return 0  # graphql-core refuses the request
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    work = 0
    for field in _fields(operations[0].selection_set, fragments):
        name = field.name.value
        if name not in _POINTS_PER_WORK:
            continue
        args = dict(_DEFAULTS[name])
        for argument in field.arguments or ():
            if argument.name.value in args:
                args[argument.name.value] = value_from_ast_untyped(
                    argument.value, dict(variables or {})
                )
        points = _points(args["period"], args["interval"])
        per_work = _POINTS_PER_WORK[name]
        if name == "history" and any(
            inner.name.value == "points" for inner in _fields(field.selection_set, fragments)
        ):
            per_work = _OBJECT_POINTS_PER_WORK
        work += math.ceil(points / per_work)
    return work


def _fields(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields a selection set selects itself, through fragments (each spread once)."""
    stack = [selection_set] if selection_set else []
    seen: set[str] = set()
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                spread = selection.name.value
                if spread not in seen and spread in fragments:
                    seen.add(spread)
                    stack.append(fragments[spread].selection_set)


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

    def __init__(self, limits: type[ValidationRule], *, max_work: int, maxsize: int = 256) -> None:
        super().__init__()
        self._limits = (limits,)
        self._max_work = max_work
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
        if not context.pre_execution_errors:
            work = work_of(context.graphql_document, context.operation_name, context.variables)
            if work > self._max_work:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"the operation's series and analytics imply work {work}, over the "
                        f"limit of {self._max_work}: ask for coarser intervals, shorter "
                        "periods or fewer fields"
                    )
                ]
        yield


@lru_cache
def _cached_validation(maxsize: int) -> Callable[..., list[GraphQLError]]:
    # one cache per size for the process, like strawberry's ValidationCache
    return _IdentityCache(maxsize)


class _IdentityCache:
    """`validate_document`'s answers by the identity of schema, document and rules: an
    `lru_cache` hashes its arguments, and a graphql-core node hashes its whole subtree on
    every call (some 240 nodes of the portfolio document, twice per request: a tenth of what
    the GraphQL layer adds to an uncached answer, issue 17). The parser cache hands out the
    same node for the same text, so identity finds what equality did; the arguments are kept
    with the answer, so an identity is not reused while it is cached."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._answers: OrderedDict[
            tuple[int, int, tuple[Any, ...]], tuple[Any, list[GraphQLError]]
        ] = OrderedDict()

    def __call__(
        self, schema: GraphQLSchema, document: DocumentNode, rules: tuple[Any, ...]
    ) -> list[GraphQLError]:
        key = (id(schema), id(document), rules)  # rule classes hash by identity: cheap
        found = self._answers.get(key)
        if found is not None:
            self._answers.move_to_end(key)
            return found[1]
        errors = validate_document(schema, document, rules)
        self._answers[key] = ((schema, document), errors)
        if len(self._answers) > self._maxsize:
            self._answers.popitem(last=False)
        return errors


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
