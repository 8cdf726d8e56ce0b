"""The framework contract: one typed entry per framework, declared in its own module.

Everything that needs to know about frameworks (detection and its overlap rules, the
watcher's marker names, checklist defaults, artifact kinds, retention's checkpoint names
and metric sources) reads the entries here, so a new framework is one module with an
``ENTRY`` plus its fixtures.  ``store.frameworks`` registers the built-in entries; a test
or plug-in adds its own with ``register`` and takes it away with the function it returns.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec

Detect = Callable[[DetectContext], Iterable[RunSpec]]
Fallback = Callable[[DetectContext, list[str]], Iterable[RunSpec]]
Load = Callable[[RootLike, RunSpec], Loaded]
LoadInto = Callable[[RootLike, RunSpec, Loaded], None]


STEP_LIMIT = 1 << 63
"""A checkpoint number from here up is no step or epoch a framework saved at (theirs are
int64): a name carrying one is not trusted to say it is new."""


def untrusted_number(digits: str) -> bool:
    """Whether a checkpoint name's number is past 64 bits; the usual one, up to 18 digits,
    costs a length test (retention reads every checkpoint name)."""
    return len(digits) > 18 and int(digits) >= STEP_LIMIT


@dataclass(frozen=True)
class NumberedName:
    """A checkpoint file name that carries its number in a framework's own way."""

    pattern: re.Pattern[str]
    """Matched on the lower-cased file name; group 1 is the number (its digits; one past
    64 bits is not trusted, ``untrusted_number``)."""
    counts: Literal["step", "epoch"]
    any_run: bool = False
    """Also in other frameworks' runs (a name no other library writes); else only in its own."""


@dataclass(frozen=True)
class SeriesSource:
    """Where retention finds the metric a checkpoint was judged by, in the run's own series."""

    label: str
    """The file the series comes from, as a plan names it."""
    counts: Literal["step", "epoch", "either", "logged epoch"]
    """Which checkpoint number is the series' step (``either``: the epoch when the name has
    one); ``logged epoch``: the series holds an ``epoch`` scalar joined to the metric by step."""
    offset: int = 0
    """Series step minus checkpoint number (Ultralytics saves ``epoch9.pt`` in its step 10)."""


@dataclass(frozen=True)
class Checkpoints:
    """How retention reads a framework's checkpoint names."""

    last_names: frozenset[str] = frozenset()
    """Lower-cased names that are the newest checkpoint by definition, in any run."""
    best_names: frozenset[str] = frozenset()
    """Lower-cased names of the framework's own best checkpoint, kept like the Trainer's."""
    best_prefix: str | None = None
    """In its own runs, numbered names starting with this are its best (MMEngine)."""
    numbered: tuple[NumberedName, ...] = ()
    counts_epochs: bool = False
    """A lone number in its checkpoint names (``checkpoint-7``) is an epoch, not a step."""
    series: SeriesSource | None = None


@dataclass(frozen=True)
class Framework:
    """One framework's contract with the rest of artlens."""

    name: str
    """As stored in the index (``runs.framework``) and written in configs."""
    display: str
    priority: int
    """Lower wins when several frameworks claim one folder; also the detection order."""
    load: Load
    detect: Detect | None = None
    fallback: Fallback | None = None
    """Detection after every other framework, given the paths they took (generic runs)."""
    adds_to_runs: LoadInto | None = None
    """What it adds to other frameworks' runs read from a folder it also marks (Hydra's
    config into their params)."""
    owns_subtree: bool = False
    """Nothing is detected inside its runs."""
    owns_children: re.Pattern[str] | None = None
    """Child folders whose names match belong to its run with all below (HF checkpoints)."""
    joins_outer: bool = False
    """Its runs inside another run belong to that run (bare TensorBoard folders)."""
    keeps_inner: bool = False
    """Runs inside its runs stay their own even where ``joins_outer`` says otherwise (Hydra)."""
    hands_to_inner: bool = False
    """A run of it with exactly one other run inside gives that run its folder (and its name
    and experiment when the inner run is named after its own folder), and is no run itself:
    a Hydra job folder around one trainer run is one run (Hydra)."""
    markers: frozenset[str] = frozenset()
    """File names whose arrival or removal can make or unmake one of its runs."""
    marker_patterns: tuple[str, ...] = ()
    """Regular expressions (whole name) for the same, where names vary."""
    config_markers: frozenset[str] = frozenset()
    """Marker names whose content, not only presence, decides its runs (the root's
    ``.artlens.toml`` ``[runs]``): a change to one re-detects the runs, as an arrival does."""
    busy_markers: frozenset[str] = frozenset()
    """The same, for files rewritten all the time (MLflow's database, at every metric
    logged): a change to one re-detects the runs in a scan of the whole root (``artlens
    index``, the watcher's reconcile), not in every event batch, where each re-detection
    would read the whole root's listing."""
    counted_suffixes: tuple[str, ...] = ()
    """Lower-cased name endings its detection counts without their being markers: such a
    file arriving outside every run, or leaving one of its runs, can make or unmake one
    of its runs (a generic run is a folder holding any artifact-looking file)."""
    counted_folder: Callable[[str], bool] | None = None
    """Whether a folder name may be part of the path of one of its runs (generic: no
    hidden folder, no ``venv`` or ``node_modules``); None: any.  A counted file arriving
    below a folder that may not makes none of its runs there, nor anywhere below."""
    checklist: tuple[str, ...] = ()
    """What a complete run of it leaves behind (see ``store.checklist``)."""
    kinds: Mapping[str, str] = field(default_factory=dict)
    """Lower-cased file name, or extension with its dot, -> artifact kind."""
    checkpoints: Checkpoints = Checkpoints()


_entries: dict[str, Framework] = {}
_ordered: tuple[Framework, ...] = ()
_listeners: list[Callable[[], None]] = []


def register(entry: Framework) -> Callable[[], None]:
    """Add a framework; returns the call that removes it again.

    A name or priority already taken, or a kind that contradicts one already given, is a
    ValueError: two frameworks must never disagree silently.  Meant for import time and
    tests: a scan running on another thread meanwhile may see the old set or the new one.
    """
    if entry.name in _entries:
        raise ValueError(f"framework {entry.name!r} is already registered")
    for named in entry.checkpoints.numbered:
        if named.pattern.groups < 1:  # retention reads the number from group 1
            raise ValueError(f"{entry.name!r}: {named.pattern.pattern!r} has no group 1")
    for source in entry.marker_patterns:
        try:  # alone (one that only compiles joined to others would escape its group),
            with warnings.catch_warnings():  # and as marker_pattern wraps it: no global
                warnings.simplefilter("error")  # flags there (Python 3.10 only warns, and
                re.compile(source)  # the flag then applies to every framework's markers)
                re.compile(_whole(source))
        except (re.error, Warning) as exc:
            raise ValueError(f"{entry.name!r}: bad marker pattern {source!r}: {exc}") from None
    for other in _entries.values():
        if other.priority == entry.priority:
            raise ValueError(f"{entry.name!r} and {other.name!r} share priority {entry.priority}")
        for key, kind in entry.kinds.items():
            if other.kinds.get(key, kind) != kind:
                raise ValueError(f"{entry.name!r} says {key!r} is {kind}, {other.name!r} not")
    _entries[entry.name] = entry
    _changed()

    def undo() -> None:
        if _entries.get(entry.name) is entry:
            del _entries[entry.name]
            _changed()

    return undo


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every change, for modules that precompute from the entries."""
    _listeners.append(listener)


def _changed() -> None:
    global _ordered
    _ordered = tuple(sorted(_entries.values(), key=lambda e: e.priority))
    for listener in _listeners:
        listener()


def entries() -> tuple[Framework, ...]:
    """Every registered framework, most specific (lowest priority) first."""
    return _ordered


def names() -> tuple[str, ...]:
    return tuple(e.name for e in _ordered)


def get(name: str) -> Framework | None:
    return _entries.get(name)


def marker_pattern() -> re.Pattern[bytes]:
    """One pattern for every entry's ``marker_patterns`` (file names as bytes)."""
    sources = [p for e in _ordered for p in e.marker_patterns]
    if not sources:
        return re.compile(rb"(?!)")
    return re.compile(b"|".join(_whole(s) for s in sources))


def _whole(source: str) -> bytes:
    """One marker pattern as a match of the whole name: its own group, anchored at both ends
    (``\\Z``: ``$`` would also match before a final newline)."""
    return b"^(?:" + source.encode() + b")\\Z"
