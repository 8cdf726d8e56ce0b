"""Flatten nested configs into dotted keys with JSON-serialisable values.

Every reader funnels params through ``flatten`` so the index sees one shape whatever the
framework.  Budgets bound the work: YAML aliases can make a small file expand
exponentially ("billion laughs"), and configs can be cyclic.

Nothing is lost without a word.  Keys that name one param once joined (``{"a.b": 1,
"a": {"b": 2}}``, or ``1`` beside ``"1"``) each keep their value, the later ones as
``a.b (#2)``, ``a.b (#3)``...; keys past ``MAX_KEYS`` are counted, and a value cut to its
budgets is named.  While a run is read (``collect``), each of these is reported as a
``Note`` for the run's warnings and meta (``store.frameworks._load``), so a diff never
calls two runs equal where a cut could hide a difference.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

MAX_KEYS = 5000
MAX_DEPTH = 24
MAX_LIST = 1000
MAX_STR = 4_000
MAX_COUNT = MAX_KEYS * 20
"""Keys visited past ``MAX_KEYS`` to count those not kept; past it the count is a floor."""
CUT = "<truncated>"
"""A value past the nesting or node budget (named in a ``Note``)."""


@dataclass
class Note:
    """Something ``flatten`` (or a reader) could not keep as it was, for the run's warnings."""

    part: str
    """``params`` or ``metrics``."""
    message: str
    cut: int = 0
    """Keys not kept at all (past ``MAX_KEYS``, or a reader's own cap)."""
    at_least: bool = False
    """``cut`` is a floor: counting stopped at its own budget."""
    values: list[str] = field(default_factory=list)
    """Names kept whose values were cut (items past ``MAX_LIST``, nesting, budgets): each
    value holds a marker ``is_cut`` finds."""


_notes: ContextVar[list[Note] | None] = ContextVar("flatten_notes", default=None)


@contextmanager
def collect() -> Iterator[list[Note]]:
    """The ``Note``s of every ``flatten`` (and ``report``) while the block runs."""
    found: list[Note] = []
    token = _notes.set(found)
    try:
        yield found
    finally:
        _notes.reset(token)


_MORE = re.compile(r"<\d+ more (?:items|keys) not read>")
_MORE_TEXT = re.compile(r"<(?:\d+ )?more bytes not read>\Z")
"""The end of a text read in part (``cut_text``)."""


def is_cut(value: object, nodes: int = MAX_KEYS * 4) -> bool:
    """Whether ``value`` (JSON data from ``jsonable``) holds a marker of a part cut short
    (``CUT``, ``<N more items not read>``): two such values may differ past the cut.  A
    value too large to look through counts as cut."""
    stack = [value]
    while stack:
        nodes -= 1
        if nodes < 0:
            return True
        item = stack.pop()
        if isinstance(item, str):
            if item == CUT or _MORE.fullmatch(item):
                return True
            if item.endswith(" not read>") and _MORE_TEXT.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def report(note: Note) -> None:
    """Add ``note`` to the collecting run's notes (nothing outside ``collect``)."""
    found = _notes.get()
    if found is not None and len(found) < 1000:
        found.append(note)


def numbered(name: str, taken: set[str], tried: dict[str, int] | None = None) -> str:
    """``name`` when free, else ``name (#2)``, ``name (#3)``... (the first free); taken.

    ``tried`` (kept by a caller that numbers many repeats of one name against one
    ``taken``, which only grows) remembers where each name's numbers are free from: 5,000
    keys joining to one name cost 12 million tries, 17 s, without it."""
    number = tried.get(name, 2) if tried is not None else 2
    found = name
    while found in taken:
        found = f"{name} (#{number})"
        number += 1
    if tried is not None:
        tried[name] = number
    taken.add(found)
    return found


class Budget:
    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.cut = 0
        """Values cut short (items past ``MAX_LIST``, nesting or nodes past the budget)."""

    def take(self) -> bool:
        self.nodes -= 1
        return self.nodes >= 0


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _long_text(text: str) -> str:
    """A string past ``MAX_STR`` as its head, its length and a hash of the whole (two long
    strings that differ past the head still differ), at most ``MAX_STR`` characters: the
    same text again is kept as it is."""
    if len(text) <= MAX_STR:
        return text
    digest = _digest(text.encode("utf-8", "surrogatepass"))
    tail = f"… ({len(text)} characters, blake2b {digest})"
    return text[: MAX_STR - len(tail)] + tail


def cut_text(text: str, more: int | None) -> str:
    """A text a reader read only in part (a file past its cap; ``more`` bytes left, when
    known): the text, as its head and a hash of what was read when long, ending in a marker
    ``is_cut`` finds (``<N more bytes not read>``), at most ``MAX_STR`` characters.  Two
    texts equal as far as read are then not known equal: they may differ past the cut."""
    marker = f"<{more} more bytes not read>" if more is not None else "<more bytes not read>"
    if len(text) + len(marker) + 2 <= MAX_STR:
        return f"{text}… {marker}"
    digest = _digest(text.encode("utf-8", "surrogatepass"))
    tail = f"… ({len(text)} characters read, blake2b {digest}) {marker}"
    return text[: MAX_STR - len(tail)] + tail


def jsonable(
    value: object,
    *,
    floats: bool = False,
    _budget: Budget | None = None,
    _depth: int = 0,
) -> object:
    """``value`` as plain JSON data: non-finite floats, bytes, dates and others as strings;
    with ``floats`` a non-finite float stays one (a param: ``lr: .nan`` is not ``lr: nan``,
    and the index stores both apart; ``--json`` names it ``"NaN"``).

    A long string keeps a hash of its whole text; keys of a mapping that are one string
    (``1`` and ``"1"``) stay apart (``1 (#2)``, or the first number no key of the mapping
    names, in any order of the keys); items past ``MAX_LIST`` end in a marker
    item counting them (``Budget.cut`` counts every value cut)."""
    budget = _budget if _budget is not None else Budget(MAX_KEYS * 4)
    if not budget.take() or _depth > MAX_DEPTH:
        budget.cut += 1
        return CUT
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if floats or math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _long_text(value)
    if isinstance(value, bytes):
        if len(value) <= MAX_STR:
            return value.decode("utf-8", "backslashreplace")
        head = value[: MAX_STR - 80].decode("utf-8", "backslashreplace")
        return f"{head}… ({len(value)} bytes, blake2b {_digest(value)})"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        pairs = list(value.items())
        kept = canonical(pairs[:MAX_LIST])
        out: dict[str, object] = {}
        # every key's own name is taken before a repeat is numbered: a real key named
        # ``1 (#2)`` keeps its name, whatever the order of the keys
        taken = {str(k) for k, _ in kept}
        tried: dict[str, int] = {}
        for k, v in kept:
            name = str(k)
            if name in out:
                name = numbered(name, taken, tried)
            out[name] = jsonable(v, floats=floats, _budget=budget, _depth=_depth + 1)
        if len(pairs) > MAX_LIST:
            budget.cut += 1
            out[numbered("<more>", taken)] = f"<{len(pairs) - MAX_LIST} more keys not read>"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        shown = [
            jsonable(v, floats=floats, _budget=budget, _depth=_depth + 1) for v in items[:MAX_LIST]
        ]
        if len(items) > MAX_LIST:
            budget.cut += 1
            shown.append(f"<{len(items) - MAX_LIST} more items not read>")
        return shown
    return _long_text(str(value))


def canonical(pairs: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``pairs`` with those whose keys are one string once written ordered by their key's
    type, not by the file's order, so that the same keys get the same names in any order;
    other pairs keep their order."""
    pairs = list(pairs)
    names = [str(k) for k, _ in pairs]
    if len(set(names)) == len(names):
        return pairs
    groups: dict[str, list[tuple[Any, Any]]] = {}
    for name, pair in zip(names, pairs, strict=True):
        groups.setdefault(name, []).append(pair)
    return [
        pair for group in groups.values() for pair in sorted(group, key=lambda p: _key_rank(p[0]))
    ]


def _key_rank(key: object) -> tuple[bool, str, str]:
    """Strings first, then other key types by name (``"1"`` before ``1``)."""
    return (not isinstance(key, str), type(key).__name__, str(key))


@dataclass
class _Leaf:
    name: str
    rank: tuple[int, tuple[tuple[bool, str, str], ...]]
    value: object


def flatten(
    mapping: Mapping[Any, Any], *, sep: str = ".", numbers: bool = False, source: str = ""
) -> dict[str, object]:
    """Nested mappings as ``{"optimizer.lr": 0.001}``; lists stay (JSON-able) lists.

    Empty nested mappings are kept as ``{}`` so the key does not vanish.  With
    ``numbers`` a float leaf stays a float, NaN and infinities too (for metrics: a loss
    that became NaN is the run's last value, not a string to skip).

    Leaves whose joined names are one (``a.b`` and ``a`` > ``b``) are all kept: the one
    with the fewest keys (then string keys first) as ``a.b``, the others as ``a.b (#2)``...,
    whatever the file's order.  Keys past ``MAX_KEYS`` are counted, values cut to their
    budgets named: each said in a ``Note`` to ``collect`` (``source`` names the file).
    """
    part = "metrics" if numbers else "params"
    leaves: list[_Leaf] = []
    budget = Budget(MAX_KEYS * 4)
    cut_values: list[str] = []
    state = {"cut": 0, "visits": 0, "stopped": False}

    def add(name: str, path: tuple[Hashable, ...], value: object) -> None:
        if len(leaves) >= MAX_KEYS:
            state["cut"] += 1
            return
        rank = (len(path), tuple(_key_rank(k) for k in path))
        if numbers and isinstance(value, float):
            leaves.append(_Leaf(name, rank, value))
            return
        before = budget.cut
        leaves.append(_Leaf(name, rank, jsonable(value, floats=True, _budget=budget)))
        if budget.cut > before:
            cut_values.append(name)

    def walk(
        node: Mapping[Any, Any], path: tuple[Hashable, ...], depth: int, seen: set[int]
    ) -> None:
        for key, value in node.items():
            state["visits"] += 1
            if state["visits"] > MAX_COUNT:
                state["stopped"] = True
                return
            here = (*path, key)
            name = sep.join(str(k) for k in here)
            if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
                if id(value) in seen:
                    add(name, here, "<cycle>")
                    continue
                walk(value, here, depth + 1, seen | {id(value)})
                if state["stopped"]:
                    return
            else:
                add(name, here, value)

    walk(mapping, (), 0, {id(mapping)})
    out = _distinct(leaves, part, sep, source)
    where = f"{source}: " if source else ""
    cut = int(state["cut"])
    if cut or state["stopped"]:
        more = f"{cut} or more" if state["stopped"] else str(cut)
        report(
            Note(
                part,
                f"{where}{more} {part} past the first {MAX_KEYS} not read (not compared)",
                cut=max(cut, 1),
                at_least=bool(state["stopped"]),
            )
        )
    if cut_values:
        named = ", ".join(cut_values[:5]) + (" ..." if len(cut_values) > 5 else "")
        report(
            Note(
                part,
                f"{where}{len(cut_values)} {part} with values too large or deep to keep whole"
                f" ({named}): a difference past the cut is not seen",
                values=cut_values,
            )
        )
    return out


def _distinct(leaves: list[_Leaf], part: str, sep: str, source: str) -> dict[str, object]:
    """The leaves by name, those sharing a name numbered (``a.b (#2)``) and said."""
    groups: dict[str, list[_Leaf]] = {}
    for leaf in leaves:
        groups.setdefault(leaf.name, []).append(leaf)
    if len(groups) == len(leaves):
        return {leaf.name: leaf.value for leaf in leaves}
    taken = set(groups)
    tried: dict[str, int] = {}
    out: dict[str, object] = {}
    shared: list[str] = []
    for name, group in groups.items():
        if len(group) == 1:
            out[name] = group[0].value
            continue
        ordered = sorted(group, key=lambda leaf: leaf.rank)
        out[name] = ordered[0].value
        names = [name]
        for leaf in ordered[1:]:
            renamed = numbered(name, taken, tried)
            out[renamed] = leaf.value
            names.append(renamed)
        also = ", ".join(names[1:3]) + (", ..." if len(names) > 3 else "")
        shared.append(f"{name} and {also}")
    where = f"{source}: " if source else ""
    report(
        Note(
            part,
            f"{where}keys that give one name once joined with {sep!r} are kept apart, "
            f"as NAME (#2)...: {'; '.join(shared[:3])}"
            + (f"; {len(shared) - 3} more" if len(shared) > 3 else ""),
        )
    )
    return out
