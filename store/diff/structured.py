"""Diffs of parsed configs (JSON, YAML, TOML) by key path, blind to key order and layout.

Two configs that differ only in formatting or key order are equal here; what changed is
reported as ``a.b[2].c`` paths so the UI can show one line per change.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from store.diff._io import DiffError, FileRef, read_capped, ref_name
from store.safeparse import NestingError, load_json, load_toml

ChangeKind = Literal["added", "removed", "changed", "type_changed"]
MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 200
MAX_CHANGES = 100_000
MAX_VISITS = 2_000_000
"""YAML aliases can make a small file expand exponentially; stop walking past this."""
STRUCTURED_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


@dataclass(frozen=True)
class Change:
    path: str
    kind: ChangeKind
    old: object = None
    new: object = None


@dataclass
class StructuredDiff:
    format: str
    changes: list[Change]
    equal: bool
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _key_part(key: object) -> str:
    text = key if isinstance(key, str) else str(key)
    if not text or any(ch in text for ch in ".[]\"'") or text != text.strip():
        return "[" + json.dumps(text) + "]"
    return text


def _join(path: str, key: object) -> str:
    part = _key_part(key)
    if part.startswith("[") or not path:
        return path + part
    return f"{path}.{part}"


def _kind_of(value: object) -> str:
    """The type a change compares: ``10`` and ``10.0`` are equal numbers but not the same
    value in a config (``range(10.0)`` fails), so int and float are kinds of their own."""
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "sequence"
    return type(value).__name__


def _same_scalar(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


class _Walker:
    def __init__(self, limit: int) -> None:
        self.changes: list[Change] = []
        self.limit = limit
        self.notes: list[str] = []
        self.visits = 0
        self.stopped = False
        """The walk gave up before comparing everything: equal is then unknown."""

    def add(self, change: Change) -> None:
        if len(self.changes) < self.limit:
            self.changes.append(change)
        elif len(self.changes) == self.limit:
            self.notes.append(f"more than {self.limit} changes; list cut short")
            self.limit = -1

    def walk(self, a: object, b: object, path: str, depth: int) -> None:
        if a is b:
            return
        self.visits += 1
        if self.visits > MAX_VISITS:
            if self.visits == MAX_VISITS + 1:
                self.stopped = True
                self.notes.append(
                    f"stopped after comparing {MAX_VISITS} values; the rest not compared"
                )
            return
        if depth > MAX_DEPTH:
            if not _same_scalar(a, b):
                self.add(Change(path, "changed", "<nested too deep>", "<nested too deep>"))
            return
        kind_a, kind_b = _kind_of(a), _kind_of(b)
        if kind_a != kind_b:
            self.add(Change(path, "type_changed", a, b))
        elif isinstance(a, dict) and isinstance(b, dict):
            # ``True``, ``1`` and ``1.0`` are one dict key to Python but three YAML keys
            types_a = {key: type(key) for key in a}
            types_b = {key: type(key) for key in b}
            for key in a:
                if key in b and types_b[key] is type(key):
                    self.walk(a[key], b[key], _join(path, key), depth + 1)
                else:
                    self.add(Change(_join(path, key), "removed", a[key], None))
            for key in b:
                if key not in a or types_a[key] is not type(key):
                    self.add(Change(_join(path, key), "added", None, b[key]))
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            for index in range(max(len(a), len(b))):
                sub = f"{path}[{index}]"
                if index >= len(b):
                    self.add(Change(sub, "removed", a[index], None))
                elif index >= len(a):
                    self.add(Change(sub, "added", None, b[index]))
                else:
                    self.walk(a[index], b[index], sub, depth + 1)
        elif not _same_scalar(a, b):
            self.add(Change(path, "changed", a, b))


def diff_structured(a: object, b: object, *, max_changes: int = MAX_CHANGES) -> list[Change]:
    """Changes turning parsed value ``a`` into ``b``, by key path; key order is ignored."""
    walker = _Walker(max_changes)
    walker.walk(a, b, "", 0)
    return walker.changes


def diff_structured_whole(a: object, b: object) -> list[Change]:
    """``diff_structured`` that raises ``DiffError`` when the values are too many to
    compare whole (an empty list then would not mean equal)."""
    walker = _Walker(MAX_CHANGES)
    walker.walk(a, b, "", 0)
    if walker.stopped:
        raise DiffError(f"more than {MAX_VISITS} values, not compared whole")
    return walker.changes


def _load_yaml(text: str) -> object:
    from store.yamlsafe import load_yaml

    return load_yaml(text)


_LOADERS: dict[str, Callable[[str], object]] = {
    "json": load_json,
    "yaml": _load_yaml,
    "toml": load_toml,
}


def structured_format(path: FileRef) -> str | None:
    """``json``/``yaml``/``toml`` from the file name, or None."""
    return STRUCTURED_SUFFIXES.get(os.path.splitext(ref_name(path))[1].lower())


def parse_structured(data: bytes, fmt: str) -> object:
    """Parse config bytes; malformed input raises ``DiffError`` with a one-line message."""
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _LOADERS[fmt](text)
    except NestingError as exc:
        raise DiffError(f"{fmt} {exc}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not first.lower().startswith(f"invalid {fmt}"):  # the YAML loader says so itself
            first = f"invalid {fmt}: {first}"
        raise DiffError(first) from None


def load_structured(path: FileRef, fmt: str | None = None) -> object:
    """Parse a JSON/YAML/TOML file (at most ``MAX_CONFIG_BYTES``); raises ``DiffError``."""
    fmt = fmt or structured_format(path)
    if fmt is None:
        raise DiffError(f"{ref_name(path)!r} is not JSON, YAML or TOML by name")
    data, capped = read_capped(path, MAX_CONFIG_BYTES)
    if capped:
        raise DiffError(f"config larger than {MAX_CONFIG_BYTES} bytes")
    return parse_structured(data, fmt)


def diff_structured_files(
    path_a: FileRef, path_b: FileRef, fmt: str | None = None
) -> StructuredDiff:
    """Key-path diff of two config files; raises ``DiffError`` when one cannot be parsed.

    Each file is parsed by its own extension unless ``fmt`` is given, so ``config.json``
    and ``config.yaml`` holding the same values are equal.
    """
    fmt_a = fmt or structured_format(path_a) or structured_format(path_b)
    fmt_b = fmt or structured_format(path_b) or fmt_a
    if fmt_a is None or fmt_b is None:
        raise DiffError("cannot tell the config format from the file names")
    walker = _Walker(MAX_CHANGES)
    walker.walk(load_structured(path_a, fmt_a), load_structured(path_b, fmt_b), "", 0)
    label = fmt_a if fmt_a == fmt_b else f"{fmt_a}/{fmt_b}"
    equal = not walker.changes and not walker.stopped
    return StructuredDiff(label, walker.changes, equal, walker.notes)
