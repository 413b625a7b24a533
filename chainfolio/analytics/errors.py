"""The one error analytics raises on its own; the API layer maps it to `InsufficientData`."""

from __future__ import annotations


class NotEnoughData(ValueError):
    """The input is too short, or holds no capital at risk, for the asked metric to exist."""
