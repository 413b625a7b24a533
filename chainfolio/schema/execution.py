"""A leaner execution of plain leaf fields: the attribute read and the scalar's serialisation.

graphql-core executes every field the same way: it looks the field up, builds a `ResolveInfo`,
coerces arguments, calls Strawberry's resolver wrapper (which calls `getattr`), checks for an
awaitable, then completes the value through the non-null, list, leaf and object branches. For
a portfolio answer of 36 holdings that is some 200 fields, and the profile of an uncached
`portfolio` request put half its time there (docs/BENCHMARKS.md). Most of those fields are
*plain leaves*: a Strawberry field with no resolver, no arguments, no permission classes or
field extensions, returning a scalar or an enum. For those this context reads the attribute and
serialises it directly; whenever anything is not the plain case — a null for a non-null field,
a serialisation error, an exception from the attribute, a field with arguments or directives —
it hands the field to graphql-core's own `execute_field`, which produces exactly the error or
value it always did. The answers are the same bytes (tests/schema/test_execution.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_Plan = tuple[str, Callable[[Any], Any], bool]
"""A plain leaf: the Python attribute, the serialiser, whether null is allowed."""

_NOT_PLAIN = ("", repr, False)  # a marker: this field takes graphql-core's path


def _plan(parent_type: GraphQLObjectType, name: str) -> _Plan:
    field = parent_type.fields.get(name)
    if field is None or field.args or not getattr(field.resolve, "_is_default", False):
        return _NOT_PLAIN
    definition = field.extensions.get("strawberry-definition")
    if (
        definition is None
        or definition.base_resolver is not None
        or definition.permission_classes
        or definition.extensions
        or definition.default_resolver is not getattr
    ):
        return _NOT_PLAIN
    kind = field.type
    nullable = not isinstance(kind, GraphQLNonNull)
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if not isinstance(kind, GraphQLScalarType | GraphQLEnumType):
        return _NOT_PLAIN
    return definition.python_name, kind.serialize, nullable


_PLANS: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, _Plan]] = weakref.WeakKeyDictionary()
"""Per object type (of whichever schema), per field name: its plan, made on first use."""


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with the plain-leaf shortcut."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A plain leaf read and serialised here; every other field as graphql-core does."""
        node = field_details_list[0].node
        plans = _PLANS.get(parent_type)
        if plans is None:
            plans = _PLANS[parent_type] = {}
        plan = plans.get(node.name.value)
        if plan is None:
            plan = plans[node.name.value] = _plan(parent_type, node.name.value)
        if plan is not _NOT_PLAIN and not node.arguments and not node.directives:
            attribute, serialize, nullable = plan
            try:
                value = getattr(source, attribute)
                if value is None:
                    if nullable:
                        return None
                else:
                    serialized = serialize(value)
                    if serialized is not None and serialized is not Undefined:
                        return serialized
            except Exception:  # noqa: S110 - graphql-core's path reports it
                pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
