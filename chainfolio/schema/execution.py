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

Objects go further: an object's selection whose fields are all attributes or simple `self`
methods, of scalar, enum, object or list type, is compiled once per document into a Python
function (`schema.compiled`) that builds the object's answer — the portfolio, each of its
holdings, chains and assets — without graphql-core's per-field and per-item completion (path
keys, `complete_value` branches, `execute_fields`). Any value that is not the plain case sends
the object (or the whole list) back to graphql-core, which then answers exactly as before
(tests/schema/test_compiled.py).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from typing_extensions import override

from chainfolio.schema.compiled import (
    Build,
    Selected,
    compile_selection,
    field_source,
    free_of_directives,
)

_Plan = tuple[str, Callable[[Any], Any], bool]
"""A plain leaf: the Python attribute, the serialiser, whether null is allowed."""

_NOT_PLAIN = ("", repr, False)  # a marker: this field takes graphql-core's path


def _plan(parent_type: GraphQLObjectType, name: str) -> _Plan:
    field = parent_type.fields.get(name)
    source = None if field is None else field_source(field)
    if source is None or source[0] != "attribute":
        return _NOT_PLAIN
    kind = field.type
    nullable = not isinstance(kind, GraphQLNonNull)
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if not isinstance(kind, GraphQLScalarType | GraphQLEnumType):
        return _NOT_PLAIN
    return source[1], kind.serialize, nullable


_PLANS: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, _Plan]] = weakref.WeakKeyDictionary()
"""Per object type (of whichever schema), per field name: its plan, made on first use."""


_COMPILED: dict[tuple[GraphQLObjectType, tuple[int, ...]], tuple[list[Any], Build | None]] = {}
"""Per object type and selection (the identities of its field nodes, which a document keeps
while its parse is cached; the nodes are held here so an identity is not reused): the
compiled selection, or None when it is not compilable. Cleared when it grows past
`_COMPILED_MAX` (a server sees a few dozen distinct documents)."""
_COMPILED_MAX = 4096


def _seen_once(_source: Any) -> Any:
    raise AssertionError  # a marker, never called


_SEEN_ONCE: Build = _seen_once


def _plans_of(parent_type: GraphQLObjectType) -> dict[str, _Plan]:
    plans = _PLANS.get(parent_type)
    if plans is None:
        plans = _PLANS[parent_type] = {}
    return plans


def _plan_of(parent_type: GraphQLObjectType, name: str) -> _Plan:
    plans = _plans_of(parent_type)
    plan = plans.get(name)
    if plan is None:
        plan = plans[name] = _plan(parent_type, name)
    return plan


def is_leaf_list(item_type: Any) -> bool:
    """Whether a list's items are scalars or enums (`leaf_list` may answer it)."""
    kind = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    return isinstance(kind, GraphQLScalarType | GraphQLEnumType)


def plain_items(items: list[Any] | tuple[Any, ...], build: Build) -> list[Any] | None:
    """Each item's answer from its compiled selection, or None when one is not the plain
    case (graphql-core then completes the list)."""
    try:
        return [build(item) for item in items]
    except Exception:  # NotPlain or a raising attribute: graphql-core's path reports it
        return None


def leaf_list(item_type: Any, items: list[Any] | tuple[Any, ...]) -> list[Any] | None:
    """A list of scalars or enums serialised in one loop (a year of hourly `history` values is
    8,760 of them), or None when it is not that or an item is not the plain case (a null for a
    non-null item, a serialisation that fails): graphql-core then reports it as before."""
    nullable = not isinstance(item_type, GraphQLNonNull)
    kind = item_type if nullable else item_type.of_type
    if not isinstance(kind, GraphQLScalarType | GraphQLEnumType):
        return None
    serialize = kind.serialize
    answer: list[Any] = []
    append = answer.append
    try:
        for item in items:
            if item is None:
                if not nullable:
                    return None
                append(None)
                continue
            serialized = serialize(item)
            if serialized is None or serialized is Undefined:
                return None
            append(serialized)
    except Exception:  # graphql-core's path reports it
        return None
    return answer


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
        plan = _plan_of(parent_type, node.name.value)
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

    long_scalars: frozenset[str] = frozenset()
    """Scalars whose one value is a whole array: compiled only up to `LONG` items."""

    @override
    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """An object whose selection compiles (`schema.compiled`) answered by its compiled
        function; any other, or any value that is not the plain case, as graphql-core does."""
        build = self.compiled(return_type, field_details_list)
        if build is not None:
            try:
                return build(result)  # type: ignore[no-any-return]
            except Exception:  # noqa: S110 - graphql-core's path reports it
                pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    @override
    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        """A list of compiled objects or of scalars in one loop; every other list as
        graphql-core does."""
        if isinstance(items, list | tuple) and not self.get_stream_usage(field_details_list, path):
            leaves = leaf_list(item_type, items)
            if leaves is not None:
                return leaves
            build = self.item_build(item_type, field_details_list)
            if build is not None:
                answer = plain_items(items, build)
                if answer is not None:
                    return answer
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def item_build(self, item_type: Any, field_details_list: Any) -> Build | None:
        """The compiled selection of a list's items when each is a non-null object."""
        if not isinstance(item_type, GraphQLNonNull) or not isinstance(
            item_type.of_type, GraphQLObjectType
        ):
            return None
        return self.compiled(item_type.of_type, field_details_list)

    def compiled(self, return_type: GraphQLObjectType, field_details_list: Any) -> Build | None:
        """The compiled selection of `return_type` under these field nodes (compiled on first
        sight, kept per document), or None when it does not compile."""
        key = (return_type, tuple([id(d.node) for d in field_details_list]))
        entry = _COMPILED.get(key)
        if entry is not None and entry[1] is not _SEEN_ONCE:
            return entry[1]
        # compiled on second sight: a document parsed anew for every request (its parse not
        # cached) never repeats its nodes, and is not worth compiling
        build = _SEEN_ONCE if entry is None else self._compile(return_type, field_details_list)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = ([d.node for d in field_details_list], build)
        return None if build is _SEEN_ONCE else build

    def _compile(self, return_type: GraphQLObjectType, field_details_list: Any) -> Build | None:
        manager = self.middleware_manager
        if (manager is not None and manager.middlewares) or return_type.is_type_of is not None:
            return None
        for details in field_details_list:
            if (
                details.defer_usage is not None
                or details.fragment_variable_values is not None
                or not free_of_directives(details.node.selection_set, self.fragments, set())
            ):
                return None
        grouped, new_defers, forbidden = self.collect_subfields(return_type, field_details_list)
        if new_defers or forbidden:
            return None
        fields: list[Selected] = []
        for key, details in grouped.items():
            first: FieldDetails = details[0]
            name = first.node.name.value
            if any(
                d.node.arguments
                or d.node.directives
                or d.defer_usage is not None
                or d.fragment_variable_values is not None
                or d.node.name.value != name
                for d in details
            ):
                return None
            field = return_type.fields.get(name)
            if field is None and name != "__typename":
                return None
            fields.append(
                (key, name, field, functools.partial(self.compiled, field_details_list=details))
            )
        return compile_selection(fields, return_type.name, self.long_scalars)
