"""Keys a run's YAML or JSON file repeats in one mapping, and the params and metrics they
make uncertain.

``lr: 0.001`` ... ``lr: 0.002`` in one ``hparams.yaml``: PyYAML and ``json`` keep the
last value without a word, other loaders (ruamel, OmegaConf, strict JSON parsers) refuse
the file and some keep the first, so which value the training code read is not known from
the file.  While ``read_run`` reads a run, ``_io.read_json``/``read_yaml`` report every
repeat here (``watch``); the run's warnings name each, and when a repeat's values differ
the run is read once more as a loader keeping the first value would read it
(``first_wins``).  Every param and metric that comes out otherwise is recorded in the
run's meta (``REPEATED_KEYS``), for the UI and for ``artlens diff``, which calls it
ambiguous where the two readings compare two runs differently (``store.diff.runs``).

The common case, a file without a repeat, costs only the repeat-detecting loader: the
second reading happens only for a run whose files repeat a key with different values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store.frameworks import model
from store.safeparse import MAX_REPEATS, Index, Repeat

if TYPE_CHECKING:
    from store.frameworks.model import RunInfo

REPEATED_KEYS = model.REPEATED_KEYS
"""``{"params": {name: entry}, "metrics": {name: entry}}`` for every param and metric whose
value depends on which value of a repeated key counts.  An entry holds ``files`` (the
run's files that repeat a key with different values), ``keys`` (those repeats, as
``lr (first 0.001, last 0.002)``), and ``first``: the value when the first value counts (a
metric's ``{"last", "best"}``), absent when the param or metric is then absent;
``unknown: true`` instead when that value is not known (values not read)."""

MAX_NAMED = 10
"""Params (and metrics) a run's warnings name one by one; the rest are counted."""
MAX_ENTRIES = 500
"""Params (and metrics) recorded with their first-wins value; past this, ``unknown``."""
MAX_FIRST_NODES = 20_000
"""Values (JSON nodes) of first-wins values kept in meta in all; past this, ``unknown``."""
MAX_FIRST_DEPTH = 16
"""Nesting of a first-wins value kept in meta (meta is capped at 24 levels)."""
UNREAD_VALUE = "<value of a repeated key not read>"
"""Stands, in the second reading, for a repeated key's first value the loader did not
build (past its budgets): whatever the reader makes of it differs from the last value."""


class NotKnown(ValueError):
    """A file's first-wins reading cannot be built (which key a repeat is cannot be
    placed in the loaded values): the second reading treats it as unreadable."""


@dataclass
class FileRepeats:
    rel: str
    repeats: list[Repeat]
    more: int
    """Repeats past those listed (values not examined)."""

    @property
    def differs(self) -> bool:
        """Whether a first-wins reading may differ from the last-wins one."""
        return bool(self.more) or any(
            not r.read or not _strict_equal(r.first, r.last) for r in self.repeats
        )


@dataclass
class Watch:
    first_wins: bool
    files: list[FileRepeats] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Files the second reading could not build as a first-wins loader would."""


_watch: ContextVar[Watch | None] = ContextVar("repeats_watch", default=None)


def watching() -> bool:
    """True while a run is read (a loader then reports the keys a document repeats)."""
    return _watch.get() is not None


@contextmanager
def watch(*, first_wins: bool = False) -> Iterator[Watch]:
    """Collect the repeats of the files read (and with ``first_wins``, read each as a
    loader keeping a repeated key's first value would)."""
    state = Watch(first_wins)
    token = _watch.set(state)
    try:
        yield state
    finally:
        _watch.reset(token)


def seen(
    rel: str, value: Any, repeats: list[Repeat], more: int, at: tuple[object, ...] = ()
) -> Any:
    """A document ``_io`` loaded: recorded when it repeats a key, and in a first-wins
    reading returned as such a loader builds it; raises ``NotKnown`` when that cannot be
    built.  ``at``: where ``value`` sits in the file when it is one part of it (a
    JSON-lines log's line ``Index(n)``): its repeats are recorded under that path, with
    those of the file's other parts."""
    state = _watch.get()
    if state is None or not (repeats or more):
        return value
    placed = [Repeat((*at, *r.path), r.key, r.count, r.first, r.last, r.read) for r in repeats]
    known = next((f for f in state.files if f.rel == rel), None)
    if known is None and len(state.files) < 100:
        state.files.append(FileRepeats(rel, placed, more))
    elif known is not None and at:  # another part of a file already seen
        room = max(0, MAX_REPEATS - len(known.repeats))
        known.repeats += placed[:room]
        known.more += more + len(placed) - len(placed[:room])
    if not state.first_wins:
        return value
    try:
        return _first_wins(value, repeats, more)
    except NotKnown:
        if rel not in state.unknown:
            state.unknown.append(rel)
        raise


def _first_wins(value: Any, repeats: list[Repeat], more: int) -> Any:
    """``value`` (loaded afresh: changed in place, so a YAML alias shares the change) with
    each repeated key's first value, the deepest first (an outer repeat then replaces a
    mapping an inner one changed, as a first-wins loader keeps the outer first value)."""
    if more:
        raise NotKnown("more repeated keys than examined")
    for repeat in sorted(repeats, key=lambda r: len(r.path), reverse=True):
        holder = value
        for part in repeat.path:
            holder = _child(holder, part)
        if not isinstance(holder, dict) or repeat.key not in holder:
            raise NotKnown("a repeated key is not where the loaded values have it")
        holder[repeat.key] = repeat.first if repeat.read else UNREAD_VALUE
    return value


def _child(holder: Any, part: object) -> Any:
    if isinstance(part, Index):
        if isinstance(holder, list) and 0 <= part < len(holder):
            return holder[part]
    elif isinstance(holder, dict) and part in holder:
        return holder[part]
    raise NotKnown("a repeated key is not where the loaded values have it")


def _strict_equal(a: object, b: object) -> bool:
    """Equal values of the same types all the way down (``1`` is not ``1.0`` nor
    ``true`` here: a reader may keep them apart); NaN is never equal."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return False


# --- what the run says -------------------------------------------------------------------


def shown(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def key_path(repeat: Repeat) -> str:
    """The repeated key's path as a config diff names it (``opt.lr``, ``log_history[3].loss``)."""
    from store.diff.structured import repeat_path

    return repeat_path(repeat) or "(root)"


def describe(repeat: Repeat) -> str:
    """``lr (first 0.001, last 0.002)``."""
    if not repeat.read:
        return f"{key_path(repeat)} (values not read)"
    return f"{key_path(repeat)} (first {shown(repeat.first)}, last {shown(repeat.last)})"


def repeat_warnings(files: list[FileRepeats]) -> list[str]:
    """One line per repeated key of the run's files (as a config diff says it), and per
    file the repeats not examined; at most 20 keys a file."""
    lines: list[str] = []
    for found in files:
        for repeat in found.repeats[:20]:
            counted = describe(repeat).partition(" (")[2].rstrip(")")
            lines.append(
                f"{found.rel}: key {key_path(repeat)} appears {repeat.count} times in one "
                f"mapping ({counted}); loaders disagree on which value counts"
            )
        left = len(found.repeats) - min(len(found.repeats), 20) + found.more
        if left:
            lines.append(f"{found.rel}: {left} more repeated key(s) not named")
    return lines


_MISSING = object()


def _same(a: object, b: object) -> bool:
    """Equal as JSON would write them (NaN equal to NaN: one reading against the other)."""
    if a is _MISSING or b is _MISSING:
        return a is b
    try:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(
            b, sort_keys=True, default=str
        )
    except (TypeError, ValueError):
        return repr(a) == repr(b)


class _Budget:
    def __init__(self) -> None:
        self.nodes = MAX_FIRST_NODES

    def fits(self, value: object) -> bool:
        """Whether ``value`` is small and shallow enough to keep in meta (and takes it)."""
        count = 0
        stack: list[tuple[object, int]] = [(value, 0)]
        while stack:
            item, depth = stack.pop()
            count += 1
            if depth > MAX_FIRST_DEPTH or count > self.nodes:
                return False
            if isinstance(item, dict):
                if len(item) > 1000:
                    return False
                stack.extend((v, depth + 1) for v in item.values())
            elif isinstance(item, (list, tuple)):
                if len(item) > 1000:
                    return False
                stack.extend((v, depth + 1) for v in item)
            elif isinstance(item, str) and len(item) > 5000:  # a param's: 4,000 and "..."
                return False
        self.nodes -= count
        return True


class _Sources:
    """Which differing repeats (and files) a param or metric most likely comes from: those
    whose key is a dotted part of its name (``lr`` of ``model.opt.lr``), else all of them.
    Built once per run: a file repeating a thousand keys makes a thousand params."""

    def __init__(self, differing: list[FileRepeats]) -> None:
        self.all_files = [f.rel for f in differing]
        self.more = sum(f.more for f in differing)
        self.by_key: dict[str, list[tuple[str, str]]] = {}
        self.all_keys: list[str] = []
        self.floats: dict[str, dict[str, float]] = {}
        """Key -> the non-finite floats its repeats' values hold, by the text a param
        keeps of each (``"inf"``)."""
        for found in differing:
            for repeat in found.repeats:
                if repeat.read and _strict_equal(repeat.first, repeat.last):
                    continue
                said = describe(repeat)
                if len(self.all_keys) < 3:
                    self.all_keys.append(said)
                self.by_key.setdefault(str(repeat.key), []).append((found.rel, said))
                if repeat.read:
                    floats = self.floats.setdefault(str(repeat.key), {})
                    floats.update(_nonfinite([repeat.first, repeat.last]))

    def spelled(self, name: str, value: object) -> object:
        """A param's value as its repeats' values are said: params keep a non-finite float
        as text (``"inf"``), the key's line says the float (``Infinity``), and the param's
        line must say it alike.  Text no repeat of the param holds as a float stays text."""
        parts = {name, *name.split("."), *name.split("/")}
        floats: dict[str, float] = {}
        for part in parts:
            floats.update(self.floats.get(part, {}))
        return _respelled(value, floats, 0) if floats else value

    def of(self, name: str) -> tuple[list[str], list[str]]:
        """(files, keys) for one param or metric name, at most five files, three keys."""
        parts = {name, *name.split("."), *name.split("/")}
        named = [hit for part in sorted(parts) for hit in self.by_key.get(part, ())]
        if named:
            files = list(dict.fromkeys(rel for rel, _ in named))
            keys = list(dict.fromkeys(said for _, said in named))
        else:
            files, keys = self.all_files, self.all_keys
        keys = keys[:3]
        if self.more:
            keys = [*keys, f"{self.more} more not examined"]
        return files[:5], keys


def _nonfinite(values: list[object], nodes: int = 1000) -> dict[str, float]:
    """The non-finite floats among ``values`` (nested ones too, up to ``nodes`` values),
    by their text as a param keeps them."""
    found: dict[str, float] = {}
    stack = list(values)
    while stack and nodes > 0:
        nodes -= 1
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            found[str(item)] = item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _respelled(value: object, floats: dict[str, float], depth: int) -> object:
    if isinstance(value, str):
        return floats.get(value, value)
    if depth > MAX_FIRST_DEPTH:
        return value
    if isinstance(value, list):
        return [_respelled(v, floats, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _respelled(v, floats, depth + 1) for k, v in value.items()}
    return value


def settle(info: RunInfo, pass_one: Watch, read_again: Callable[[], tuple[RunInfo, Watch]]) -> None:
    """Add to ``info`` (the run as read, last value kept) the warnings of its repeated keys,
    and when one has different values, the params and metrics a first-wins reading gives
    otherwise (``REPEATED_KEYS``), each named in a warning.  ``read_again`` reads the run
    as a first-wins loader would."""
    warnings = info.meta.setdefault("warnings", [])
    assert isinstance(warnings, list)
    added = repeat_warnings(pass_one.files)
    differing = [f for f in pass_one.files if f.differs]
    if not differing:
        _extend(warnings, added)
        return
    other, pass_two = read_again()
    unknown = bool(pass_two.unknown)
    rels = [f.rel for f in differing]
    sources = _Sources(differing)
    budget = _Budget()
    recorded: dict[str, dict[str, dict[str, object]]] = {"params": {}, "metrics": {}}
    param_lines: list[str] = []
    for name in sorted(set(info.params) | set(other.params)):
        last = info.params.get(name, _MISSING)
        first = other.params.get(name, _MISSING)
        if _same(last, first):
            continue
        entry = _entry(sources.of(name), differing, unknown, first, budget, len(recorded["params"]))
        recorded["params"][name] = entry
        # a non-finite float a param keeps as text said as the key's line says it
        said_last = last if last is _MISSING else sources.spelled(name, last)
        said_first = first if first is _MISSING else sources.spelled(name, first)
        param_lines.append(_line("param", name, said_last, said_first, entry))
    metric_lines: list[str] = []
    for name in sorted(set(info.metrics) | set(other.metrics)):
        last_m = info.metrics.get(name)
        first_m = other.metrics.get(name)
        last_v = _MISSING if last_m is None else _summary(last_m)
        first_v = _MISSING if first_m is None else _summary(first_m)
        if _same(last_v, first_v):
            continue
        entry = _entry(
            sources.of(name), differing, unknown, first_v, budget, len(recorded["metrics"])
        )
        recorded["metrics"][name] = entry
        # said by the metrics' own last values: NaN as the key's line and the run say it,
        # not as the text ``"nan"`` meta keeps
        said_last = _MISSING if last_m is None else last_m.last
        said_first = _MISSING if first_m is None else first_m.last
        metric_lines.append(_line("metric", name, said_last, said_first, entry))
    for what, lines in (("param", param_lines), ("metric", metric_lines)):
        added += lines[:MAX_NAMED]
        if len(lines) > MAX_NAMED:
            added.append(
                f"{', '.join(rels[:3])}: {len(lines) - MAX_NAMED} more {what}(s) depend on "
                "which value of a repeated key counts"
            )
    _extend(warnings, added)
    if recorded["params"] or recorded["metrics"]:
        info.meta[REPEATED_KEYS] = {k: v for k, v in recorded.items() if v}


def _summary(metric: Any) -> dict[str, object]:
    """A metric's last and best value as meta holds them (NaN as ``"nan"``: JSON)."""
    from store.frameworks.flatten import jsonable

    return {"last": jsonable(metric.last), "best": jsonable(metric.best)}


def _entry(
    source: tuple[list[str], list[str]],
    differing: list[FileRepeats],
    unknown: bool,
    first: object,
    budget: _Budget,
    count: int,
) -> dict[str, object]:
    entry: dict[str, object] = {"files": source[0], "keys": source[1]}
    if unknown or count >= MAX_ENTRIES or any(f.more for f in differing):
        entry["unknown"] = True
    elif first is not _MISSING:
        if budget.fits(first):
            entry["first"] = first
        else:
            entry["unknown"] = True
    return entry


def _line(what: str, name: str, last: object, first: object, entry: dict[str, object]) -> str:
    files = ", ".join(str(f) for f in entry["files"])  # type: ignore[attr-defined]
    now = "absent" if last is _MISSING else shown(last)
    unknown = entry.get("unknown")
    then = "unknown" if unknown else "absent" if first is _MISSING else shown(first)
    return (
        f"{files}: {what} {name} depends on which value of a repeated key counts: "
        f"{now} with the last (shown), {then} with the first"
    )


def _extend(warnings: list[object], lines: list[str]) -> None:
    from store.safetext import printable_surrogates

    for line in lines:
        text = printable_surrogates(" ".join(line.split()))
        if len(text) > 300:
            text = text[:297] + "..."
        if text not in warnings and len(warnings) < 150:
            warnings.append(text)
