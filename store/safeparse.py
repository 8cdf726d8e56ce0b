"""JSON and TOML from files and pipes someone else wrote: too deep is malformed, not a crash.

``json`` and ``tomllib`` recurse once per nesting level, so ``[[[[...`` a few thousand
levels deep raises ``RecursionError``, and a huge document may raise ``MemoryError``.
Neither is a ``ValueError``, which is what every reader takes as "malformed", so both
escaped as a traceback (or hid a run where a broad ``except`` swallowed them).  These
loaders raise ``NestingError``, a ``ValueError``, instead: the reader's own handling of a
torn or invalid document then covers a nesting bomb too.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class NestingError(ValueError):
    """A document nested too deeply, or too large, to parse; ``str()`` is one line."""


def _parsed(loads: Callable[[str], T], text: Any) -> T:
    try:
        return loads(text)
    except RecursionError:
        raise NestingError("nested too deeply") from None
    except MemoryError:
        raise NestingError("too large to parse") from None


MAX_REPEATS = 1000
"""Repeated keys a loader reports with their values; past this they are only counted."""


class Index(int):
    """A list index in a ``Repeat`` path (an ``int`` there is a mapping key)."""


@dataclass(frozen=True)
class Repeat:
    """A key one mapping holds more than once (``lr: 0.1`` ... ``lr: 0.2``).

    PyYAML and ``json`` keep the last value without a word; other loaders (ruamel,
    OmegaConf, strict JSON parsers) refuse the file, and some keep the first: which value
    the training code read is not known from the file."""

    path: tuple[object, ...]
    """Keys (and list indexes, as ``Index``) from the document's root to the mapping."""
    key: object
    count: int
    first: object
    last: object
    """The value a last-wins loader (PyYAML, ``json``) kept."""
    read: bool = True
    """False when the values were not built (past the loader's budgets): ``first`` and
    ``last`` are then None, which a key given ``null`` twice also has."""


def repeats_of(path: tuple[object, ...], pairs: list[tuple[Any, Any]]) -> list[Repeat]:
    """The repeated keys among one mapping's ``(key, value)`` pairs, in document order."""
    values: dict[Any, list[Any]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return [
        Repeat(path, key, len(found), found[0], found[-1])
        for key, found in values.items()
        if len(found) > 1
    ]


def load_json(text: str | bytes) -> Any:
    """``json.loads``; any malformed input, a nesting bomb included, raises ``ValueError``."""
    return _parsed(json.loads, text)


def load_json_with(text: str | bytes, **hooks: Any) -> Any:
    """``load_json`` with ``json.loads``'s hooks (``object_pairs_hook``, ``parse_int``, ...)."""
    return _parsed(lambda t: json.loads(t, **hooks), text)


_KEY_COLON = re.compile(r'"[ \t\n\r]*:')
"""A quote, JSON blanks and a colon: every key's colon is one (a string may hold more)."""


def load_json_repeats(text: str | bytes) -> tuple[Any, list[Repeat], int]:
    """``load_json``, and the keys an object repeats (at most ``MAX_REPEATS``, then the
    number past those): ``{"lr": 1, "lr": 2}`` loads as ``{"lr": 2}`` in ``json``, but a
    strict parser refuses it."""
    # The common case first, at little more than ``json.loads``: each pair of the text has
    # one ':' outside strings, right after its key's closing quote (and blanks), so a text
    # with no more ':' (or no more quote-colons) than the loaded objects hold pairs
    # repeats no key.  Only a text that may is parsed again, pair by pair.
    pairs_loaded = 0

    def count(mapping: dict[str, Any]) -> dict[str, Any]:
        nonlocal pairs_loaded
        pairs_loaded += len(mapping)
        return mapping

    data = _parsed(lambda t: json.loads(t, object_hook=count), text)
    if isinstance(text, str):
        if text.count(":") <= pairs_loaded or len(_KEY_COLON.findall(text)) <= pairs_loaded:
            return data, [], 0
    elif text.count(b":") <= pairs_loaded:
        return data, [], 0
    found: list[tuple[dict[str, Any], list[tuple[str, Any]]]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping = dict(pairs)
        if len(mapping) != len(pairs):
            found.append((mapping, pairs))
        return mapping

    data = _parsed(lambda t: json.loads(t, object_pairs_hook=hook), text)
    if not found:
        return data, [], 0
    # where each object with a repeated key sits: a walk with parent links (no path
    # tuple per value), in document order
    where = {id(mapping): pairs for mapping, pairs in found}
    repeats: list[Repeat] = []
    Link = tuple[Any, object] | None
    stack: list[tuple[Any, Link]] = [(data, None)]
    while stack and where:
        value, link = stack.pop()
        if isinstance(value, dict):
            pairs = where.pop(id(value), None)
            if pairs is not None:
                repeats += repeats_of(_unwind(link), pairs)
            stack.extend((v, (link, k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((v, (link, Index(i))) for i, v in reversed(list(enumerate(value))))
    if where:  # objects with a repeat inside a value a later key replaced
        repeats = [_unread_if_holding(r, where.keys()) for r in repeats]
    return data, repeats[:MAX_REPEATS], max(0, len(repeats) - MAX_REPEATS)


def load_json_line_repeats(line: str) -> tuple[Any, list[Repeat], int]:
    """``load_json_repeats`` of one line of a JSON-lines log, faster for the common flat
    object (a metrics row): every pair of the text has a key colon, so a line with no
    more of them than the object's keys holds no pair but those keys, each once."""
    if line.count("{") > 1:  # nested objects: one parse that counts their pairs
        return load_json_repeats(line)
    value = _parsed(json.loads, line)
    if isinstance(value, dict):
        keys = len(value)
        if line.count(":") <= keys or len(_KEY_COLON.findall(line)) <= keys:
            return value, [], 0
    return load_json_repeats(line)


def _unwind(link: tuple[Any, object] | None) -> tuple[object, ...]:
    parts: list[object] = []
    while link is not None:
        link, part = link
        parts.append(part)
    return tuple(reversed(parts))


def load_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``; raises ``TOMLDecodeError`` or ``NestingError`` (both ``ValueError``)."""
    if sys.version_info >= (3, 11):
        import tomllib  # imported by the first TOML read, not by every command
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    return _parsed(tomllib.loads, text)


def _unread_if_holding(repeat: Repeat, ids: Collection[int]) -> Repeat:
    """``repeat``, its values marked not read when its first value holds one of the
    objects ``ids`` (a repeat of its own: a first-wins loader reads that value otherwise
    than ``json`` built it)."""
    stack: list[Any] = [repeat.first]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if id(value) in ids:
                return Repeat(repeat.path, repeat.key, repeat.count, None, None, read=False)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return repeat
