"""Flatten nested configs into dotted keys with JSON-serialisable values.

Every reader funnels params through ``flatten`` so the index sees one shape whatever the
framework.  Budgets bound the work: YAML aliases can make a small file expand
exponentially ("billion laughs"), and configs can be cyclic.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

MAX_KEYS = 5000
MAX_DEPTH = 24
MAX_LIST = 1000
MAX_STR = 4_000


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.nodes = nodes

    def take(self) -> bool:
        self.nodes -= 1
        return self.nodes >= 0


def jsonable(value: object, *, _budget: _Budget | None = None, _depth: int = 0) -> object:
    """``value`` as plain JSON data: non-finite floats, bytes, dates and others as strings."""
    budget = _budget if _budget is not None else _Budget(MAX_KEYS * 4)
    if not budget.take() or _depth > MAX_DEPTH:
        return "<truncated>"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_STR else value[:MAX_STR] + "..."
    if isinstance(value, bytes):
        return value[:MAX_STR].decode("utf-8", "backslashreplace")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {
            str(k): jsonable(v, _budget=budget, _depth=_depth + 1)
            for k, v in list(value.items())[:MAX_LIST]
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)[:MAX_LIST]
        return [jsonable(v, _budget=budget, _depth=_depth + 1) for v in items]
    return str(value)[:MAX_STR]


def flatten(
    mapping: Mapping[Any, Any], *, sep: str = ".", numbers: bool = False
) -> dict[str, object]:
    """Nested mappings as ``{"optimizer.lr": 0.001}``; lists stay (JSON-able) lists.

    Empty nested mappings are kept as ``{}`` so the key does not vanish.  With
    ``numbers`` a float leaf stays a float, NaN and infinities too (for metrics: a loss
    that became NaN is the run's last value, not a string to skip).
    """
    out: dict[str, object] = {}
    budget = _Budget(MAX_KEYS * 4)

    def walk(node: Mapping[Any, Any], prefix: str, depth: int, seen: set[int]) -> None:
        for key, value in node.items():
            if len(out) >= MAX_KEYS:
                return
            name = f"{prefix}{sep}{key}" if prefix else str(key)
            if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
                if id(value) in seen:
                    out[name] = "<cycle>"
                    continue
                walk(value, name, depth + 1, seen | {id(value)})
            elif numbers and isinstance(value, float):
                out[name] = value
            else:
                out[name] = jsonable(value, _budget=budget)

    walk(mapping, "", 0, {id(mapping)})
    return out
