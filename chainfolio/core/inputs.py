"""Checks every input passes at the edge (REST, GraphQL, websockets) and stored values on read.

PostgreSQL refuses text with NUL and would store decimals no later step can serialise
(`1e400` USD is no JSON number); unpaired surrogates cannot be encoded at all. Values are
refused here with a 400 and a message naming the field, before any of that happens.
"""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from chainfolio.core.errors import InvalidInput

# Digits after the point and in all a decimal input may have: far beyond any price, weight or
# amount, far within PostgreSQL's numeric and a float's range.
MAX_FRACTION_DIGITS = 36
MAX_DIGITS = 78  # uint256 base units fit
MAX_JSON_DEPTH = 32

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})  # control characters, lone surrogates


def has_control_chars(text: str) -> bool:
    """Whether `text` holds a control character (NUL, newline, escape …) or a lone surrogate."""
    return any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in text)


def checked_text(value: str, *, name: str, max_chars: int, code: str = "BAD_REQUEST") -> str:
    """`value` when at most `max_chars` long and free of control characters, else a 400."""
    if len(value) > max_chars:
        raise InvalidInput(f"{name} longer than {max_chars} characters", code=code)
    if has_control_chars(value):
        raise InvalidInput(f"{name} must not contain control characters", code=code)
    return value


def checked_decimal(
    value: Decimal, *, name: str, low: Decimal, high: Decimal, code: str = "BAD_REQUEST"
) -> Decimal:
    """`value` when finite, within [`low`, `high`] and of sane precision, else a 400."""
    if not value.is_finite():
        raise InvalidInput(f"{name} must be a finite number", code=code)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", code=code)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -MAX_FRACTION_DIGITS or len(value.as_tuple().digits) > MAX_DIGITS:
        raise InvalidInput(
            f"{name} has more than {MAX_FRACTION_DIGITS} digits after the point", code=code
        )
    return value


def finite_decimal(text: str) -> Decimal:
    """A finite Decimal from a numeric string (the GraphQL `Decimal` scalar), else ValueError."""
    try:
        parsed = Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError("not a decimal number") from exc
    if not parsed.is_finite():
        raise ValueError("a Decimal must be finite (no NaN or Infinity)")
    return parsed


def json_depth_within(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether decoded JSON nests at most `max_depth` arrays/objects (iteratively: no recursion
    limit to hit on the way)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def decode_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON decoded, refusing documents nested deeper than `max_depth` as malformed."""
    decoded = orjson.loads(data)
    if not json_depth_within(decoded, max_depth):
        text = data if isinstance(data, str) else data.decode(errors="replace")
        raise json.JSONDecodeError(f"JSON nested deeper than {max_depth} levels", text, 0)
    return decoded
