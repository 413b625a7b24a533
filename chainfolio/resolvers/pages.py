"""Cursor pagination (the Relay connection convention) over lists in a fixed order.

A cursor is the opaque, URL-safe form of the item's sort key, so `after` means "after this
key": an item added or removed before the cursor neither repeats nor skips one on the next page.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

import orjson

from chainfolio.core.errors import InvalidInput

T = TypeVar("T")
Key = tuple[str | int | bool | Decimal, ...]

DEFAULT_PAGE = 50
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page: each item with its cursor, and whether more follow or precede."""

    edges: list[tuple[str, T]]
    has_next_page: bool
    has_previous_page: bool
    total_count: int

    @property
    def end_cursor(self) -> str | None:
        """The last item's cursor: the next page's `after`."""
        return self.edges[-1][0] if self.edges else None


def page_size(first: int | None) -> int:
    """`first`/`limit` checked: 1 to MAX_PAGE, DEFAULT_PAGE when not given."""
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(f"page size must be 1 to {MAX_PAGE}, got {first}", code="INVALID_PAGE")
    return first


def encode_cursor(kind: str, key: Key) -> str:
    """The cursor of the item with this sort key in a list of `kind`."""
    values = [str(v) if isinstance(v, Decimal) else v for v in key]
    return base64.urlsafe_b64encode(orjson.dumps([kind, *values])).decode().rstrip("=")


def _values(kind: str, cursor: str) -> list[object]:
    """The key values a cursor of `kind` carries, or INVALID_CURSOR."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raw = None
    if not (isinstance(raw, list) and raw[:1] == [kind]):
        raise _invalid(cursor)
    return raw[1:]


def _invalid(cursor: str) -> InvalidInput:
    return InvalidInput(f"not a cursor of this list: {cursor!r}", code="INVALID_CURSOR")


def decode_cursor(kind: str, cursor: str, like: Key) -> Key:
    """The sort key in `cursor`, typed like `like` (a key of the same list), or INVALID_CURSOR."""
    values = _values(kind, cursor)
    try:
        return tuple(_typed(v, type(sample)) for v, sample in zip(values, like, strict=True))
    except (ValueError, TypeError, InvalidOperation):
        raise _invalid(cursor) from None


def _typed(value: object, kind: type) -> str | int | bool | Decimal:
    if kind is Decimal and isinstance(value, str):
        return Decimal(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, kind) and isinstance(value, str | bool):
        return value
    raise TypeError(kind)


def paginate(
    kind: str,
    items: Sequence[T],
    key: Callable[[T], Key],
    *,
    first: int | None,
    after: str | None,
) -> Page[T]:
    """The page of `first` items after the cursor `after`, in the order of `key`."""
    size = page_size(first)
    keyed = sorted(((key(item), item) for item in items), key=lambda pair: pair[0])
    start = 0
    if after is not None and keyed:
        cursor_key = decode_cursor(kind, after, keyed[0][0])
        start = bisect.bisect_right(keyed, cursor_key, key=lambda pair: pair[0])
    elif after is not None:  # nothing to page through; still a cursor of this kind
        _values(kind, after)
    chosen = keyed[start : start + size]
    return Page(
        edges=[(encode_cursor(kind, k), item) for k, item in chosen],
        has_next_page=start + size < len(keyed),
        has_previous_page=start > 0,
        total_count=len(keyed),
    )
