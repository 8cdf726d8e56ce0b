"""JSON text made ahead of printing, for lists a command writes by the hundred thousand."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring
from math import isfinite

quote: Callable[[str], str] = encode_basestring
"""A string as ``json.dumps(..., ensure_ascii=False)`` writes it: the same function."""


class EncodedItems:
    """A JSON list whose items are JSON text already, one line each: ``emit_json`` writes
    them as they are.  Not a list, so that no encoder takes the texts for strings."""

    __slots__ = ("texts",)

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)


def number(value: object) -> str:
    """``None``, a bool, an int or a float as ``json.dumps`` writes it (``NaN`` and
    ``Infinity`` too, as it does by default); anything else as ``json.dumps`` writes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if isfinite(value):
            return float.__repr__(value)
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False, default=str)  # what no field should hold
