"""Diffs of parsed configs (JSON, YAML, TOML) by key path, blind to key order and layout.

Two configs that differ only in formatting or key order are equal here; what changed is
reported as ``a.b[2].c`` paths so the UI can show one line per change.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from store.diff._io import DiffError, FileRef, read_capped, ref_name
from store.safeparse import (
    MAX_REPEATS,
    Index,
    NestingError,
    Repeat,
    load_json_line_repeats,
    load_json_repeats,
    load_toml,
)

ChangeKind = Literal["added", "removed", "changed", "type_changed", "ambiguous"]
"""``ambiguous``: a key a file repeats, equal or changed depending on which of its values
the loader keeps (``old``/``new`` are the last ones, what PyYAML and ``json`` keep)."""
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
    warnings: list[str] = field(default_factory=list)
    """Keys a file repeats (loaders disagree on which value counts), by file and path."""
    more: int = 0
    """Changes found past ``MAX_CHANGES``: counted, not in ``changes``."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Parsed:
    """A config's values and the keys it repeats (``more``: repeats past those listed)."""

    value: object
    repeats: list[Repeat] = field(default_factory=list)
    more: int = 0
    lines: bool = False
    """A JSON-lines file: ``value`` is the list of its lines' values."""


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
        self.found = 0
        self.notes: list[str] = []
        self.visits = 0
        self.stopped = False
        """The walk gave up before comparing everything: equal is then unknown."""

    def add(self, change: Change) -> None:
        self.found += 1
        if len(self.changes) < self.limit:
            self.changes.append(change)

    @property
    def more(self) -> int:
        """Changes found past ``limit``: counted, not listed."""
        return self.found - len(self.changes)

    def cut_note(self) -> list[str]:
        if not self.more:
            return []
        return [f"{self.more} more change(s) not listed: only the first {self.limit} are"]

    def _visit(self) -> bool:
        """Count one value compared; False (``stopped``, said once) past ``MAX_VISITS``."""
        self.visits += 1
        if self.visits > MAX_VISITS:
            if not self.stopped:
                self.stopped = True
                self.notes.append(
                    f"stopped after comparing {MAX_VISITS} values; the rest not compared"
                )
            return False
        return True

    def walk(self, a: object, b: object, path: str, depth: int) -> None:
        if a is b:
            return
        if not self._visit():
            return
        if depth > MAX_DEPTH:
            found = self._first_deep_difference(a, b)
            if found is not None:
                self.add(Change(path, *found))
                if DEEP_NOTE not in self.notes:
                    self.notes.append(DEEP_NOTE)
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

    def _first_deep_difference(
        self, a: object, b: object
    ) -> tuple[ChangeKind, object, object] | None:
        """The first difference of two values nested past ``MAX_DEPTH``, by the walk's
        rules (``1``, ``1.0`` and ``true`` are three values, as are keys ``1`` and
        ``true``; Python's ``==`` calls them equal), found by a loop, not recursion: the
        kind of change and the two values that differ (a container as its kind and size).
        None when they are the same, or the visit budget ran out first (``stopped``)."""
        pending: list[tuple[object, object]] = [(a, b)]
        while pending:
            x, y = pending.pop()
            if x is y:
                continue
            if not self._visit():
                return None
            if _kind_of(x) != _kind_of(y):
                return "type_changed", _deep_shown(x), _deep_shown(y)
            if isinstance(x, dict) and isinstance(y, dict):
                types_y = {key: type(key) for key in y}
                if len(x) != len(y) or any(
                    key not in y or types_y[key] is not type(key) for key in x
                ):
                    return "changed", _deep_shown(x), _deep_shown(y)
                pending.extend((value, y[key]) for key, value in x.items())
            elif isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
                if len(x) != len(y):
                    return "changed", _deep_shown(x), _deep_shown(y)
                pending.extend(zip(x, y, strict=True))
            elif not _same_scalar(x, y):
                return "changed", x, y
        return None


DEEP_NOTE = (
    f"values nested more than {MAX_DEPTH} levels deep are compared whole: a change there "
    f"is listed at its level-{MAX_DEPTH} path, with the first values found to differ"
)


def _deep_shown(value: object) -> object:
    """A value past ``MAX_DEPTH`` as a change shows it: a container by kind and size."""
    if isinstance(value, dict):
        return f"<mapping of {len(value)} keys>"
    if isinstance(value, (list, tuple)):
        return f"<sequence of {len(value)} items>"
    return value


def diff_structured(a: object, b: object, *, max_changes: int = MAX_CHANGES) -> list[Change]:
    """Changes turning parsed value ``a`` into ``b``, by key path; key order is ignored."""
    walker = _Walker(max_changes)
    walker.walk(a, b, "", 0)
    return walker.changes


def diff_structured_counted(
    a: object, b: object, *, max_changes: int = MAX_CHANGES
) -> tuple[list[Change], int]:
    """``diff_structured``, and how many changes past ``max_changes`` were not listed."""
    walker = _Walker(max_changes)
    walker.walk(a, b, "", 0)
    return walker.changes, walker.more


def diff_structured_whole(a: object, b: object) -> tuple[list[Change], int]:
    """``diff_structured_counted`` that raises ``DiffError`` when the values are too many
    to compare whole (an empty list then would not mean equal)."""
    walker = _Walker(MAX_CHANGES)
    walker.walk(a, b, "", 0)
    if walker.stopped:
        raise DiffError(f"more than {MAX_VISITS} values, not compared whole")
    return walker.changes, walker.more


def _load_yaml(text: str) -> Parsed:
    from store.yamlsafe import load_yaml_repeats

    return Parsed(*load_yaml_repeats(text, tags=True))


def _load_json(text: str) -> Parsed:
    try:
        return Parsed(*load_json_repeats(text))
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise
        lines = _load_json_lines(text)
        if lines is None:
            raise
        return lines


def _load_json_lines(text: str) -> Parsed | None:
    """A JSON-lines file (a metrics log named ``.json``: Detectron2's ``metrics.json``,
    MMEngine's ``scalars.json``) as the list of its non-blank lines' values, a key a
    line's object repeats at ``[n].key``; None when a line is not JSON."""
    values: list[object] = []
    repeats: list[Repeat] = []
    more = 0
    for line in text.split("\n"):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        try:
            value, found, past = load_json_line_repeats(line)
        except NestingError:
            raise
        except ValueError:
            return None
        at = Index(len(values))
        room = max(0, MAX_REPEATS - len(repeats))
        repeats += [
            Repeat((at, *r.path), r.key, r.count, r.first, r.last, r.read) for r in found[:room]
        ]
        more += past + len(found) - len(found[:room])
        values.append(value)
    return Parsed(values, repeats, more, lines=True)


def _load_toml(text: str) -> Parsed:
    return Parsed(load_toml(text))  # TOML refuses a repeated key: nothing to report


_LOADERS: dict[str, Callable[[str], Parsed]] = {
    "json": _load_json,
    "yaml": _load_yaml,
    "toml": _load_toml,
}


def repeat_path(repeat: Repeat) -> str:
    """The repeated key's path as a change names it (``opt.lr``, ``layers[0].a``)."""
    path = ""
    for part in (*repeat.path, repeat.key):
        path = f"{path}[{int(part)}]" if isinstance(part, Index) else _join(path, part)
    return path


_MISSING = object()


def _at(value: object, parts: tuple[object, ...]) -> object:
    for part in parts:
        if isinstance(part, Index):
            if not isinstance(value, (list, tuple)) or part >= len(value):
                return _MISSING
            value = value[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _same(a: object, b: object) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    walker = _Walker(1)
    walker.walk(a, b, "", 0)
    return not walker.changes and not walker.stopped


def _shown(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


_SEPARATOR = re.compile(r"[.\[]")


class _Paths:
    """Key paths, and whether a path is one of them or lies under one (``a`` holds
    ``a.b`` and ``a[0]``), in time linear in the path, not in how many are held: a file
    repeating thousands of keys is compared against a hundred thousand changes."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.lengths: set[int] = set()
        self.longest = -1

    def add(self, path: str) -> None:
        self.paths.add(path)
        self.lengths.add(len(path))
        self.longest = max(self.longest, len(path))

    def hold(self, path: str) -> bool:
        if path in self.paths:
            return True
        for found in _SEPARATOR.finditer(path, 0, self.longest + 1):
            cut = found.start()
            if cut in self.lengths and path[:cut] in self.paths:
                return True
        return False


def settle_repeats(
    changes: list[Change], a: Parsed, b: Parsed, name_a: str, name_b: str
) -> tuple[list[Change], list[str]]:
    """``changes`` with every key a side repeats, whose comparison depends on which of its
    values the loader keeps (the first, or the last as PyYAML and ``json`` do), as one
    ``ambiguous`` change in place of what the walk said there; and a warning per repeated
    key naming the file and the key's path."""
    warnings: list[str] = []
    repeated: dict[str, tuple[tuple[object, ...], Repeat | None, Repeat | None]] = {}
    for side, parsed, name in ((0, a, name_a), (1, b, name_b)):
        for repeat in parsed.repeats:
            path = repeat_path(repeat)
            if not repeat.read:
                counted = "values not read"
            else:
                counted = f"first {_shown(repeat.first)}, last {_shown(repeat.last)}"
            warnings.append(
                f"{name}: key {path or '(root)'} appears {repeat.count} times in one mapping "
                f"({counted}); loaders disagree on which value counts"
            )
            parts = (*repeat.path, repeat.key)
            entry = repeated.setdefault(path, (parts, None, None))
            repeated[path] = (parts, repeat, entry[2]) if side == 0 else (parts, entry[1], repeat)
        if parsed.more:
            warnings.append(
                f"{name}: {parsed.more} more repeated keys not examined; their values are unknown"
            )
    ambiguous: list[str] = []
    held = _Paths()
    for path in sorted(repeated, key=len):
        if held.hold(path):
            continue
        parts, rep_a, rep_b = repeated[path]
        last_a, last_b = _at(a.value, parts), _at(b.value, parts)
        # a repeat whose values were not read, or whose key is not where the loaded
        # values have it (under a Python tag turned into data): unknown, never equal
        lost = any(
            rep is not None and (last is _MISSING or not rep.read)
            for rep, last in ((rep_a, last_a), (rep_b, last_b))
        )
        first_a = rep_a.first if rep_a is not None else last_a
        first_b = rep_b.first if rep_b is not None else last_b
        if lost or _same(first_a, first_b) != _same(last_a, last_b):
            ambiguous.append(path)
            held.add(path)
    if a.more or b.more:  # repeats not examined: which keys they are is not known either
        return [Change("", "ambiguous")], warnings
    if not ambiguous:
        return changes, warnings

    kept = [change for change in changes if not held.hold(change.path)]
    for path in ambiguous:
        old, new = _at(a.value, repeated[path][0]), _at(b.value, repeated[path][0])
        kept.append(
            Change(
                path,
                "ambiguous",
                None if old is _MISSING else old,
                None if new is _MISSING else new,
            )
        )
    return kept, warnings


def lines_note(a: Parsed, b: Parsed) -> list[str]:
    """What a diff of a JSON-lines file says of it: its values are its lines'."""
    if not (a.lines or b.lines):
        return []
    which = "both files" if a.lines and b.lines else "the old file" if a.lines else "the new file"
    return [f"{which} read as JSON lines: [n] is the n-th non-blank line, counted from 0"]


def structured_format(path: FileRef) -> str | None:
    """``json``/``yaml``/``toml`` from the file name, or None."""
    return STRUCTURED_SUFFIXES.get(os.path.splitext(ref_name(path))[1].lower())


def decode_config(data: bytes, fmt: str) -> str:
    """A config's text; bytes that are not UTF-8 are a ``DiffError``, never replaced: two
    files differing only there (``caf\\xe9`` against ``caf\\xe8``) would read the same,
    and the loaders (``json``, PyYAML, ``tomllib``) refuse them too."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiffError(f"invalid {fmt}: not UTF-8 (byte {exc.start})") from None


def parse_structured(data: bytes, fmt: str) -> object:
    """Parse config bytes; malformed input raises ``DiffError`` with a one-line message."""
    return parse_structured_repeats(data, fmt).value


def parse_structured_repeats(data: bytes, fmt: str) -> Parsed:
    """``parse_structured``, with the keys the document repeats."""
    text = decode_config(data, fmt)
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
    return _load_structured(path, fmt).value


def _load_structured(path: FileRef, fmt: str | None = None) -> Parsed:
    fmt = fmt or structured_format(path)
    if fmt is None:
        raise DiffError(f"{ref_name(path)!r} is not JSON, YAML or TOML by name")
    data, capped = read_capped(path, MAX_CONFIG_BYTES)
    if capped:
        raise DiffError(f"config larger than {MAX_CONFIG_BYTES} bytes")
    return parse_structured_repeats(data, fmt)


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
    parsed_a, parsed_b = _load_structured(path_a, fmt_a), _load_structured(path_b, fmt_b)
    walker = _Walker(MAX_CHANGES)
    walker.walk(parsed_a.value, parsed_b.value, "", 0)
    changes, warnings = settle_repeats(
        walker.changes, parsed_a, parsed_b, ref_name(path_a), ref_name(path_b)
    )
    label = fmt_a if fmt_a == fmt_b else f"{fmt_a}/{fmt_b}"
    equal = not changes and not walker.stopped
    notes = walker.cut_note() + walker.notes + lines_note(parsed_a, parsed_b)
    return StructuredDiff(label, changes, equal, notes, warnings, walker.more)
