"""Object selections compiled once into Python functions, as graphql-jit does for GraphQL.js.

graphql-core completes an object by collecting its sub-fields (hashing AST nodes), then, for
each field, looking it up, building a `ResolveInfo`, calling Strawberry's resolver wrapper and
walking `complete_value`'s branches. For the portfolio's answer that machinery, not the data,
was most of an uncached request's CPU (issue 17). A selection of an object type that holds
only *simple* fields is the same work every time, so it is compiled on first sight into one
generated function `build(source) -> dict`, kept for the life of the document:

* a field without resolver or arguments (an attribute), or a Strawberry method resolver that
  takes nothing but `self` and is synchronous, with no permission classes or field
  extensions;
* whose type is a scalar or enum (serialised by the type's own `serialize`; strings,
  booleans and 32-bit ints that need no conversion are passed through as `serialize` would),
  an object type compiled the same way, or a list of either (at most `LONG` items);
* selected without arguments, directives (on fields or fragments), `@defer` or `@stream`:
  then which fields are selected depends on the document alone, never on variables.

The function does what graphql-core would for the plain case and raises `NotPlain` for
anything else: a null in a non-null position, a serialiser returning nothing, an attribute
or resolver that raises, a list longer than `LONG` or not a list. The caller then completes
the object through graphql-core, which produces exactly the value or the error it always did
(resolvers are only ever the side-effect-free `self` methods above, so running them again
is harmless). The answers are the same bytes (tests/schema/test_compiled.py).
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.pyutils import Undefined

LONG = 500
"""Lists (and series) longer than this are not compiled: they are completed in slices that
yield to the event loop (`schema.slices`)."""

Build = Callable[[Any], Any]
"""A compiled selection: source object → its answer, or `NotPlain`."""


class NotPlain(Exception):
    """This value is not the plain case: graphql-core completes it."""


def free_of_directives(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, Any], seen: set[str]
) -> bool:
    """Whether no field or fragment in this selection (fragments followed, not nested
    selections of fields: their own compilation checks those) carries a directive."""
    if selection_set is None:
        return True
    for selection in selection_set.selections:
        if selection.directives:
            return False
        if isinstance(selection, InlineFragmentNode):
            if not free_of_directives(selection.selection_set, fragments, seen):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue
            seen.add(name)
            details = fragments.get(name)
            definition = getattr(details, "definition", details)
            if definition is None or definition.directives:
                return False
            if not free_of_directives(definition.selection_set, fragments, seen):
                return False
    return True


def field_source(field: Any) -> tuple[str, str] | None:
    """How a compiled function reads a field: ("attribute", python name) for a field without
    resolver, ("method", …) for a synchronous `self`-only Strawberry resolver; None when
    the field takes graphql-core's path."""
    definition = field.extensions.get("strawberry-definition")
    if field.args or definition is None or definition.permission_classes or definition.extensions:
        return None
    resolver = definition.base_resolver
    if resolver is None:
        plain = (
            getattr(field.resolve, "_is_default", False) and definition.default_resolver is getattr
        )
        return ("attribute", definition.python_name) if plain else None
    simple = (
        not definition.is_async
        and not inspect.iscoroutinefunction(resolver.wrapped_func)
        and list(inspect.signature(resolver.wrapped_func).parameters) == ["self"]
    )
    return ("method", definition.python_name) if simple else None


_FAST = {
    GraphQLString: "v.__class__ is str",
    GraphQLBoolean: "v is True or v is False",
    GraphQLInt: "v.__class__ is int and -2147483648 <= v <= 2147483647",
}
"""Values a builtin scalar's `serialize` returns unchanged: passed through without the call."""


class _Writer:
    """The source of one generated function and the names it refers to."""

    def __init__(self, long_scalars: frozenset[str]) -> None:
        self.names: dict[str, Any] = {"NotPlain": NotPlain, "Undefined": Undefined}
        self.lines: list[str] = []
        self.long_scalars = long_scalars

    def name(self, value: Any, prefix: str) -> str:
        key = f"{prefix}{len(self.names)}"
        self.names[key] = value
        return key

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


def _complete(
    w: _Writer,
    depth: int,
    kind: Any,
    target: str,
    compile_object: Callable[[GraphQLObjectType], Build | None],
) -> bool:
    """Code completing `v` (not None) of GraphQL type `kind` into `target`; False when the
    type is not compilable."""
    if isinstance(kind, GraphQLScalarType | GraphQLEnumType):
        serialize = w.name(kind.serialize, "ser")
        if kind.name in w.long_scalars:  # a series scalar: one value holding a whole array
            w.line(depth, f"if v.__class__ is not list or len(v) > {LONG}: raise NotPlain")
        fast = _FAST.get(kind) if isinstance(kind, GraphQLScalarType) else None
        if fast is not None:
            w.line(depth, f"if {fast}: {target} = v")
            w.line(depth, "else:")
            depth += 1
        w.line(depth, f"{target} = {serialize}(v)")
        w.line(depth, f"if {target} is None or {target} is Undefined: raise NotPlain")
        return True
    if isinstance(kind, GraphQLObjectType):
        build = compile_object(kind)
        if build is None:
            return False
        w.line(depth, f"{target} = {w.name(build, 'obj')}(v)")
        return True
    if isinstance(kind, GraphQLList):
        item = kind.of_type
        nullable = not isinstance(item, GraphQLNonNull)
        item_kind = item if nullable else item.of_type
        sub = _Writer(w.long_scalars)
        sub.line(0, "def item(v):")
        if not nullable:
            sub.line(1, "if v is None: raise NotPlain")
        else:
            sub.line(1, "if v is None: return None")
        if not _complete(sub, 1, item_kind, "r", compile_object):
            return False
        sub.line(1, "return r")
        complete_item = _generate(sub, "item")
        w.line(depth, "if v.__class__ is not list and v.__class__ is not tuple: raise NotPlain")
        w.line(depth, f"if len(v) > {LONG}: raise NotPlain")
        w.line(depth, f"{target} = [{w.name(complete_item, 'item')}(x) for x in v]")
        return True
    return False


def _generate(w: _Writer, name: str) -> Build:
    namespace = dict(w.names)
    exec("\n".join(w.lines), namespace)  # noqa: S102 - our own generated source, no input
    build: Build = namespace[name]
    return build


Selected = tuple[str, str, Any, Callable[[GraphQLObjectType], Build | None]]
"""A selected field: response key, field name, graphql-core field (None for `__typename`),
and what compiles its sub-selection for an object type (the caller knows the selection)."""


def compile_selection(
    fields: list[Selected], type_name: str, long_scalars: frozenset[str]
) -> Build | None:
    """The function answering one object's selection (`fields` in answer order), or None when
    some field is not compilable. `long_scalars` are the series scalars, compiled only up to
    `LONG` items."""
    w = _Writer(long_scalars)
    w.line(0, "def build(o):")
    results = []
    for index, (key, name, field, compile_object) in enumerate(fields):
        target = f"r{index}"
        results.append(f"{key!r}: {target}")
        if name == "__typename":
            w.line(1, f"{target} = {type_name!r}")
            continue
        source = field_source(field)
        if source is None:
            return None
        how, python_name = source
        if how == "method":
            resolver = field.extensions["strawberry-definition"].base_resolver.wrapped_func
            w.line(1, f"v = {w.name(resolver, 'fn')}(o)")
        elif python_name.isidentifier() and not keyword.iskeyword(python_name):
            w.line(1, f"v = o.{python_name}")
        else:
            w.line(1, f"v = getattr(o, {python_name!r})")
        kind = field.type
        nullable = not isinstance(kind, GraphQLNonNull)
        if not nullable:
            kind = kind.of_type
        w.line(1, "if v is None:")
        w.line(2, f"{target} = None" if nullable else "raise NotPlain")
        w.line(1, "else:")
        if not _complete(w, 2, kind, target, compile_object):
            return None
    w.line(1, "return {" + ", ".join(results) + "}")
    return _generate(w, "build")
