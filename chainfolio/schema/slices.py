"""Long lists completed, and long series serialised, in slices that yield to the event loop.

graphql-core completes a list item by item in one synchronous loop: two `history(all, 5m)
{ points { timestamp value } }` (20,000 objects, work 500 of 500: the heaviest document the
limits allow) held the loop for some 150 ms, and `/healthz` waited as long (issue 21). A
thread would not help: completion is pure Python and holds the GIL. Here a list longer than
`LONG` items is completed by a coroutine that gives the loop a turn (`await asyncio.sleep(0)`)
whenever it has run `BUDGET_S` since its last turn, so other requests are served every few
milliseconds however fast the machine is (500 points took 4 ms on an idle machine, 15 ms of
CPU under a load of 5). Each item is completed exactly as graphql-core does
(`complete_list_item_value`, same paths, same error handling); only the moments between items
change. Shorter lists take graphql-core's own path untouched.

The series scalars (`schema.series`: a whole array as one leaf) are serialised the same way:
their serialisers map item by item, so a long series is serialised a chunk at a time and
joined, the same array (10,000 ISO date-times took 10-16 ms in one go, and the two series of a
history, of two histories, ran in one loop iteration).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sized
from typing import Any

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
)
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel

from chainfolio.schema.compiled import LONG, Build, field_source
from chainfolio.schema.execution import (
    LeanExecutionContext,
    is_leaf_list,
    leaf_list,
    plain_items,
)
from chainfolio.schema.series import SERIES_SCALARS

BUDGET_S = 0.005
"""Wall time a slice may run before the loop gets a turn."""
_ITEMS_PER_CHECK = 50  # list items completed between two looks at the clock
_SERIES_CHUNK = 500  # series items serialised in one call


class _Turns:
    """Gives the event loop a turn once `BUDGET_S` passed since the last one."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = time.perf_counter() + BUDGET_S

    async def maybe(self) -> None:
        """Yield to the loop if this slice has run its budget."""
        if time.perf_counter() >= self._until:
            await asyncio.sleep(0)
            self._until = time.perf_counter() + BUDGET_S


_SERIES_NAMES = frozenset(definition.name for definition in SERIES_SCALARS.values())
_Series = tuple[str, Callable[[Any], Any]]
"""A series field without resolver or arguments: its Python attribute and serialiser."""
_SERIES_FIELDS: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, _Series]] = (
    weakref.WeakKeyDictionary()
)
"""Per object type: its series fields, found on first use (most types have none)."""


def _series_fields(parent_type: GraphQLObjectType) -> dict[str, _Series]:
    found: dict[str, _Series] = {}
    for name, field in parent_type.fields.items():
        kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        source = field_source(field)
        if (
            isinstance(kind, GraphQLScalarType)
            and kind.name in _SERIES_NAMES
            and source is not None
            and source[0] == "attribute"
        ):
            found[name] = (source[1], kind.serialize)
    return found


class SlicedExecutionContext(LeanExecutionContext):
    """The lean execution context, with long lists and series handled in slices."""

    long_scalars = _SERIES_NAMES

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A series field of more than `LONG` items serialised in slices."""
        fields = _SERIES_FIELDS.get(parent_type)
        if fields is None:
            fields = _SERIES_FIELDS[parent_type] = _series_fields(parent_type)
        if fields:
            node = field_details_list[0].node
            series = fields.get(node.name.value)
            if series is not None and not node.arguments and not node.directives:
                value = getattr(source, series[0], None)
                if isinstance(value, list) and len(value) > LONG:
                    return self._serialize_in_slices(
                        value, series[1], parent_type, source, field_details_list, path
                    )
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    async def _serialize_in_slices(  # noqa: PLR0917 - execute_field's arguments
        self,
        value: list[Any],
        serialize: Callable[[Any], Any],
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
    ) -> Any:
        serialized: list[Any] = []
        turns = _Turns()
        try:
            for start in range(0, len(value), _SERIES_CHUNK):
                if start:
                    await turns.maybe()
                serialized.extend(serialize(value[start : start + _SERIES_CHUNK]))
        except Exception:  # graphql-core's path reports it, as it always did
            completed = super().execute_field(parent_type, source, field_details_list, path, None)
            return await completed if self.is_awaitable(completed) else completed
        return serialized

    def complete_iterable_value(  # noqa: PLR0917 - graphql-core's signature
        self,
        item_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        """A list of more than `LONG` items (not streamed) as a coroutine that yields."""
        if (
            not isinstance(items, Sized)
            or len(items) <= LONG
            or self.get_stream_usage(field_details_list, path) is not None
        ):
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )

        def slow() -> Awaitable[list[Any]]:
            return self._complete_in_slices(
                items,
                path,
                lambda item, into, item_path: self.complete_list_item_value(
                    item, into, item_type, field_details_list, info, item_path, position_context
                ),
                lambda item, item_path: self.complete_awaitable_list_item_value(
                    item, item_type, field_details_list, info, item_path, position_context
                ),
            )

        if isinstance(items, list | tuple):
            build = self.item_build(item_type, field_details_list)
            if build is not None or is_leaf_list(item_type):
                return self._plain_in_slices(items, item_type, build, slow)
        return slow()

    async def _plain_in_slices(
        self,
        items: list[Any] | tuple[Any, ...],
        item_type: GraphQLOutputType,
        build: Build | None,
        slow: Callable[[], Awaitable[list[Any]]],
    ) -> list[Any]:
        """The lean context's one-loop answer (plain objects or leaves), a chunk of
        `_ITEMS_PER_CHECK` items between two looks at the clock; any item that is not the plain
        case sends the whole list to the sliced graphql-core completion."""
        completed: list[Any] = []
        turns = _Turns()
        for start in range(0, len(items), _ITEMS_PER_CHECK):
            if start:
                await turns.maybe()
            chunk = items[start : start + _ITEMS_PER_CHECK]
            done = plain_items(chunk, build) if build is not None else leaf_list(item_type, chunk)
            if done is None:
                return await slow()
            completed.extend(done)
        return completed

    async def _complete_in_slices(
        self,
        items: Iterable[Any],
        path: Path,
        complete_item: Callable[[Any, list[Any], Path], bool],
        complete_awaitable: Callable[[Any, Path], Awaitable[Any]],
    ) -> list[Any]:
        completed: list[Any] = []
        pending: list[int] = []  # indices whose completion is an awaitable
        turns = _Turns()
        try:
            for index, item in enumerate(items):
                if index and index % _ITEMS_PER_CHECK == 0:
                    await turns.maybe()
                item_path = path.add_key(index, None)
                if self.is_awaitable(item):
                    completed.append(complete_awaitable(item, item_path))
                    pending.append(index)
                elif complete_item(item, completed, item_path):
                    pending.append(index)
        except BaseException:
            # as graphql-core does: settle what was started rather than orphan it
            started: list[Awaitable[Any]] = [completed[i] for i in pending]
            if started:
                self.settle_in_background(started)
            raise
        if pending:
            results = await gather_with_cancel(*(completed[i] for i in pending))
            for index, result in zip(pending, results, strict=True):
                completed[index] = result
        return completed
