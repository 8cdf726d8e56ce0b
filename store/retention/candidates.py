"""Which files of a run are checkpoints, in which order, with which metric value.

A unit is what retention keeps or removes as a whole: a ``checkpoint-N/`` folder (HF
Trainer), a ``.ckpt`` file, or a file whose name carries an epoch or step
(``epoch=3-step=400.ckpt``, ``model_epoch_5.pt``, ``step_1000.safetensors``).  Order comes
from the number in the name, never from sorting names (``checkpoint-100`` > ``checkpoint-20``),
with mtime as the tie-break; ``last.ckpt`` is the newest by definition.  Configs, metrics and
logs outside such units are never candidates.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from store.csvrows import csv_reader
from store.frameworks import registry
from store.frameworks.registry import Checkpoints, NumberedName, SeriesSource, untrusted_number
from store.paths import display, unkey
from store.retention.rowpump import PlanBlock, plan_block
from store.root import is_url
from store.safefile import read_capped
from store.safeparse import load_json

if TYPE_CHECKING:
    from store.frameworks.lightning import SavedBest

CANDIDATE_KINDS = ("checkpoint", "model")
MAX_TRAINER_STATE_BYTES = 64 << 20
"""trainer_state.json grows with log_history; beyond this it is not read."""
MAX_STATE_PICKLE_BYTES = 4 << 20
"""A Lightning checkpoint whose ``data.pkl`` is larger is not read for its ModelCheckpoint
state (its tensors never are; a real one's pickle is some hundred kB, a scan of 4 MiB
about a second)."""
STATE_SECONDS = 2.0
"""Time one root's plan spends reading Lightning checkpoints for their trainer's best;
the runs left are planned without it, and a warning counts them."""

_CKPT_DIR = re.compile(r"^checkpoint[-_](\d+)$")
_NUMBERS = re.compile(r"([a-z]+)[=_\-]?(\d+)")
"""A word and the number after it, on the lower-cased name (letter runs, so 'unit5' is no
'it 5'); only the words below count."""
_LAST = re.compile(r"^last(?:-v\d+)?\.ckpt$", re.I)
_STEP_WORDS = frozenset({"step", "iter", "iteration", "it", "ckpt", "checkpoint"})
_EPOCH_WORDS = frozenset({"epoch", "ep"})


@dataclass(frozen=True)
class _NameRules:
    """What the registered frameworks say about checkpoint names (``registry.Checkpoints``)."""

    last: frozenset[str]
    best: frozenset[str]
    any_run: tuple[NumberedName, ...]
    own: dict[str, tuple[NumberedName, ...]]


_name_rules: _NameRules | None = None


def _rules() -> _NameRules:
    global _name_rules
    if _name_rules is None:
        entries = registry.entries()
        _name_rules = _NameRules(
            frozenset(n for e in entries for n in e.checkpoints.last_names),
            frozenset(n for e in entries for n in e.checkpoints.best_names),
            tuple(n for e in entries for n in e.checkpoints.numbered if n.any_run),
            {e.name: tuple(n for n in e.checkpoints.numbered if not n.any_run) for e in entries},
        )
    return _name_rules


def _forget_rules() -> None:
    global _name_rules
    _name_rules = None


registry.on_change(_forget_rules)


@dataclass(slots=True)
class Member:
    """One file (or link) inside a checkpoint folder, as the index saw it."""

    path: str
    """Root-relative."""
    size: int
    mtime_ns: int
    inode: int
    ftype: str
    hash: str | None


class MemberRows(Sequence[Member]):
    """A removed checkpoint folder's files, kept as the index rows (``FolderRow``) they came
    in and made ``Member``s when first asked for: a plan lists hundreds of thousands, and
    a plan shown, printed or counted asks for none."""

    __slots__ = ("_made", "_rows")

    def __init__(self, rows: list[FolderRow]) -> None:
        self._rows = rows
        self._made: list[Member] | None = None

    def _members(self) -> list[Member]:
        if self._made is None:
            rows = self._rows
            if not rows:
                self._made = []
                return self._made
            _, blobs, sizes, mtimes, inodes, ftypes, digests, _ = zip(*rows, strict=True)
            self._made = list(
                map(
                    Member,
                    map(bytes.decode, blobs, _repeat("utf-8"), _repeat("surrogateescape")),
                    sizes,
                    mtimes,
                    inodes,
                    ["file" if ftype is None else ftype for ftype in ftypes],
                    digests,
                )
            )
            self._rows = []
        return self._made

    def fields(self) -> list[list[Any]]:
        """Each member's fields, in ``Member``'s order (what a saved plan lists), made
        from the rows without making the members."""
        if self._made is not None:
            return member_fields(self._made)
        return [
            [_decode(blob), size, mtime_ns, inode, "file" if ftype is None else ftype, digest]
            for _, blob, size, mtime_ns, inode, ftype, digest, _ in self._rows
        ]

    def add(self, rows: Iterable[FolderRow]) -> None:
        if self._made is None:
            self._rows += rows
        else:
            self._made += MemberRows(list(rows))

    def __len__(self) -> int:
        return len(self._rows) if self._made is None else len(self._made)

    def __getitem__(self, index: Any) -> Any:
        return self._members()[index]

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members())

    def __repr__(self) -> str:
        return repr(self._members())


def member_fields(members: Sequence[Member]) -> list[list[Any]]:
    """Each member's fields in ``Member``'s order: what a saved plan lists of a folder."""
    if isinstance(members, MemberRows):
        return members.fields()
    return [[m.path, m.size, m.mtime_ns, m.inode, m.ftype, m.hash] for m in members]


@dataclass(slots=True)
class Candidate:
    """One unit that retention may keep or remove."""

    root: str
    run_id: int
    run_path: str
    framework: str
    live: bool
    path: str
    """Root-relative path of the file or checkpoint folder."""
    is_dir: bool
    size: int
    mtime_ns: int
    inode: int
    ftype: str
    hash: str | None
    step: int | None = None
    epoch: int | None = None
    is_last: bool = False
    metric: float | None = None
    metric_source: str | None = None
    trainer_best: bool = False
    members: Sequence[Member] = ()
    """A folder unit's files, once ``attach_members`` listed them (a list); a file unit
    shares one empty tuple (half a million empty lists were 37 MB of a plan)."""
    keep: bool = True
    """The planner's decision (True until a plan says otherwise)."""
    reasons: list[str] = field(default_factory=list)
    """Every rule that kept it, or why it goes."""
    expires: float | None = None
    """When ``keep_within`` stops protecting it (epoch seconds), if that rule applies."""
    metric_name: str | None = None
    """The name ``metric`` was read under when it is not the asked metric's own (asked for
    val_loss, the Trainer logged eval_loss): a reason must name what was read.  None when
    it is the asked name, or there is no value."""
    dead_after: int | None = None
    """Set when the run's current session was resumed from an earlier checkpoint and is at
    this step, below this unit's: it is a dead session's, ordered before the current
    session's units (``_attach_trainer_state``)."""
    best_monitor: str | None = None
    """Set (with ``trainer_best``) when a Lightning ModelCheckpoint's ``best_model_path``
    names this unit: the metric it monitors (``_attach_lightning_best``)."""
    untrusted: bool = False
    """Its name's number is past 64 bits (``registry.untrusted_number``): no step or epoch a
    framework saves at, so not one to order by; such units come first (``order_units``)."""

    @property
    def name(self) -> str:
        return self.path[self.path.rfind("/") + 1 :]


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    root: str
    path: str
    framework: str
    live: bool
    metrics: str
    """The run's metric summaries as the index keeps them (JSON text)."""


FolderRow = tuple[int | None, bytes, int, int, int, str | None, str | None, bytes]
"""run_id, path, size, mtime_ns, inode, ftype (None for 'file'), hash and parent of a row in
a checkpoint folder: a row of ``_ROWS`` whose parent is not NULL."""


def parse_numbers(name: str) -> tuple[int | None, int | None]:
    """(step, epoch) from a checkpoint's file or folder name; None where absent, or past
    64 bits."""
    step, epoch, _ = _name_numbers(name)
    return step, epoch


def _name_numbers(name: str) -> tuple[int | None, int | None, bool]:
    """``parse_numbers``, and whether the name's number was past 64 bits (not trusted)."""
    folder = _CKPT_DIR.match(name)
    if folder:
        digits = folder.group(1)
        if untrusted_number(digits):
            return None, None, True
        return int(digits), None, False
    step, epoch, _, untrusted = _numbers_of(_NUMBERS.findall(name.lower()))
    return step, epoch, untrusted


def is_checkpoint_name(name: str) -> bool:
    """A file that is a checkpoint by its name: ``.ckpt`` or an epoch/step number."""
    lower = name.lower()
    return lower.endswith(".ckpt") or _numbers_of(_NUMBERS.findall(lower))[2]


_VALUE = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"


def metric_from_name(name: str, metric: str) -> float | None:
    """``val_loss=0.213`` inside a file name (Lightning's ``filename`` templates)."""
    found = _name_metric_reader(metric)(name)
    return None if found is None else found[0]


NameMetric = tuple[float, str | None]
"""A value read from a file name, and the name it was read under when that is not the
asked metric's own (``Candidate.metric_name``)."""


def _read_as(name: str, metric: str) -> str | None:
    """``Candidate.metric_name`` of a value read under ``name`` for ``metric``."""
    return None if name == metric else name


def _aliases(metric: str) -> list[str]:
    names = [metric, metric.replace("/", "_"), metric.replace("/", "-")]
    if metric.startswith("val_"):
        names.append("eval_" + metric[4:])
    elif metric.startswith("eval_"):
        names.append("val_" + metric[5:])
    elif not metric.startswith(("train", "test")):
        names.append("eval_" + metric)
    return list(dict.fromkeys(names))


def sort_key_factory(units: list[Candidate]) -> Any:
    """How to order one run's units oldest first: by step if all have one, else by epoch if
    all have one, else by mtime; ``last.ckpt`` always last.  The path settles what is left
    tied, so the order never depends on how the index happens to store its rows."""
    steps = [u.step for u in units]
    if None not in steps:  # the usual run: the key is read in C, no call per unit
        return attrgetter("is_last", "step", "mtime_ns", "path")
    numbered = [u for u in units if not u.is_last and not _unnumbered_best(u)]
    if numbered and all(u.step is not None for u in numbered):
        return lambda u: (u.is_last, u.step if u.step is not None else -1, u.mtime_ns, u.path)
    if numbered and all(u.epoch is not None for u in numbered):
        if None not in [u.epoch for u in units]:
            return attrgetter("is_last", "epoch", "mtime_ns", "path")
        return lambda u: (u.is_last, u.epoch if u.epoch is not None else -1, u.mtime_ns, u.path)
    return lambda u: (u.is_last, u.mtime_ns, u.step or u.epoch or -1, u.path)


def _unnumbered_best(unit: Candidate) -> bool:
    """``best.pt``-like units: no number to order by, kept by their own rule anyway."""
    return unit.trainer_best and unit.step is None and unit.epoch is None


def order_units(units: list[Candidate]) -> list[Candidate]:
    """The units of one run, oldest first; those whose number is past 64 bits before all
    (by path): a hostile name must not make a unit the newest, nor its mtime."""
    steps = list(map(_STEP, units))
    if None not in steps and len(set(steps)) == len(steps) and True not in map(_IS_LAST, units):
        # the usual run: distinct steps and no last, so ``sort_key_factory``'s key never
        # looks past the step; ordering by it alone compares ints, not tuples
        return sorted(units, key=_STEP)
    if True in map(_UNTRUSTED, units):
        untrusted = sorted([u for u in units if u.untrusted], key=_PATH_OF)
        return [*untrusted, *order_units([u for u in units if not u.untrusted])]
    return sorted(units, key=sort_key_factory(units))


_STEP = attrgetter("step")
_IS_LAST = attrgetter("is_last")
_UNTRUSTED = attrgetter("untrusted")
_PATH_OF = attrgetter("path")


def load_runs(db: sqlite_utils.Database, root_id: int, root: str) -> dict[int, RunInfo]:
    rows = db.conn.execute(
        "SELECT id, path, framework, status, metrics FROM runs WHERE root_id = ?", (root_id,)
    )
    return {
        run_id: RunInfo(run_id, root, unkey(bytes(path)), framework, status == "live", metrics)
        for run_id, path, framework, status, metrics in rows
    }


_IN_CKPT_FOLDER = (
    "(instr(parent, X'636865636b706f696e74') > 0 "
    "AND (CAST(parent AS TEXT) GLOB 'checkpoint[-_][0-9]*' "
    "OR CAST(parent AS TEXT) GLOB '*/checkpoint[-_][0-9]*'))"
)
"""Rows inside some ``checkpoint-N`` folder (SQLite filters; Python confirms the component).
The byte search for ``checkpoint`` comes first: it is what the globs need anyway, and it
spares most rows the text cast."""

_MAYBE_IN_CKPT_FOLDER = (
    "(instr(parent, X'636865636b706f696e742d') > 0 OR instr(parent, X'636865636b706f696e745f') > 0)"
)
"""Rows that may be inside a ``checkpoint-N`` folder: ``checkpoint-`` or ``checkpoint_``
somewhere in their folder.  It takes in every row ``_IN_CKPT_FOLDER`` does and some more
(``checkpoint_logs/``); where Python then finds no checkpoint folder, the files are read
again as loose ones.  Two byte searches cost a third less than the globs, which Lightning's
``checkpoints/`` folders, every one, would reach."""


STRAIGHT_THROUGH = "artifacts NOT INDEXED"
"""``artifacts_source`` of an index holding one root: the table read in rowid order."""


def artifacts_source(conn: Any) -> str:
    """``artifacts`` for a query that aggregates or orders its own rows: read straight
    through the table when the index holds one root (a lookup per row through the root_id
    index costs twice a plain pass); through the index when other roots' rows would be read
    for nothing."""
    (roots,) = conn.execute("SELECT count(*) FROM roots").fetchone()
    return STRAIGHT_THROUGH if roots <= 1 else "artifacts"


def _decode(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogateescape")


def candidates_for_root(
    db: sqlite_utils.Database,
    root_id: int,
    root: str,
    *,
    metric: str | Callable[[RunInfo], str | None] | None = None,
    runs: dict[int, RunInfo] | None = None,
    folder_rows_out: list[FolderRow] | None = None,
    blocks: Iterable[PlanBlock] | None = None,
    warnings: list[str] | None = None,
    reads_state: Callable[[RunInfo, int], bool] | None = None,
) -> dict[int, list[Candidate]]:
    """Every run's checkpoint units under one root, oldest first, metrics attached.

    ``metric`` is one name for all runs, or a function giving each run's own.  One pass
    over the root's rows (``_ROWS``) reads the checkpoint files and every row inside a
    checkpoint folder: a folder's size and newest mtime add up its rows; the same rows,
    appended to ``folder_rows_out`` when given, list its files in ``attach_members``, only
    for the folders a plan removes.  ``blocks``, when given, are that pass's rows, read
    and digested elsewhere from the same snapshot (``rowpump``).  ``warnings`` is told
    what could not be read in time (Lightning states past ``STATE_SECONDS``).
    ``reads_state(run, units)``, when given, says which runs' Lightning state to read:
    those a policy may remove a unit from (a state read for a run kept whole is time lost).
    """
    runs = runs if runs is not None else load_runs(db, root_id, root)
    by_run: dict[int, dict[str, Candidate]] = {}
    conn = db.conn
    run_metrics: dict[int, str | None] = {}
    name_readers: dict[str, Callable[[str], NameMetric | None]] = {}
    by_name: dict[str | None, dict[str, NameMetric | None]] = {None: {}}

    def metric_of(run_id: int) -> str | None:
        """The run's metric (asked once per run), with a cache of its values by name."""
        if run_id in run_metrics:
            return run_metrics[run_id]
        name = run_metrics[run_id] = metric(runs[run_id]) if callable(metric) else metric
        if name and name not in name_readers:
            name_readers[name] = _name_metric_reader(name)
            by_name[name] = {}
        return name

    def metric_from(run_metric: str | None, name: str) -> NameMetric | None:
        if not run_metric:
            return None
        known = by_name[run_metric]
        if name in known:
            return known[name]
        found = known[name] = name_readers[run_metric](name)
        return found

    folder_rows: list[FolderRow] = [] if folder_rows_out is None else folder_rows_out
    loose_parents: list[bytes] = []
    folder_numbers: dict[str, tuple[int | None, int | None, bool]] = {}
    untrusted_runs: set[int] = set()
    """Runs with a unit whose number is past 64 bits (said in ``warnings``)."""
    holds_bytes: set[tuple[int, str]] = set()
    """(run, checkpoint folder) pairs with a file that is no link: a folder of links only
    (checkpoint-2/ linking checkpoint-1's weights) is a link, not a unit."""

    def folder_unit(run_id: int, parent_blob: bytes, mtime_ns: int) -> Candidate | None:
        """The unit holding the files of one folder of a run (made on its first folder);
        None when the run is unknown or no ``checkpoint-N`` folder holds the folder."""
        run = runs.get(run_id)
        if run is None:
            return None
        parent = _decode(parent_blob)
        prefix_len = len(run.path) + 1 if run.path else 0
        folder_end = _checkpoint_folder_end(parent[prefix_len:] + "/")
        if folder_end < 0:
            loose_parents.append(parent_blob)
            return None
        unit_path = parent[: prefix_len + folder_end]
        units = by_run.get(run_id)
        if units is None:
            units = by_run[run_id] = {}
        unit = units.get(unit_path)
        if unit is None:
            name = unit_path[unit_path.rfind("/") + 1 :]
            numbers = folder_numbers.get(name)
            if numbers is None:
                numbers = folder_numbers[name] = _name_numbers(name)
            unit = units[unit_path] = Candidate(
                root,
                run_id,
                run.path,
                run.framework,
                run.live,
                unit_path,
                True,
                0,
                mtime_ns,
                0,
                "dir",
                None,
                numbers[0],
                numbers[1],
            )
            if numbers[2]:
                unit.untrusted = True
                untrusted_runs.add(run_id)
            found = metric_from(metric_of(run_id), name)
            if found is not None:
                unit.metric, unit.metric_name = found
                unit.metric_source = "file name"
        return unit

    rules = _rules()
    verdicts: dict[tuple[str, str | None], dict[str, _Verdict | None]] = {}
    """What a file name makes of a unit, by (framework, metric): names repeat across runs."""

    file_made: dict[int, list[Candidate]] = {}
    """Each run's file units, the runs in the order their first one came."""

    def file_units(
        run_id: int,
        paths: Sequence[Any],
        names: Sequence[str],
        sizes: Sequence[Any],
        mtimes: Sequence[Any],
        inodes: Sequence[Any],
        ftypes: Sequence[Any],
        digests: Sequence[Any],
    ) -> None:
        """Make the units of a stretch of one run's file rows (``plan_block``'s columns):
        the loop over rows is in C (``map``), not a Python statement per row."""
        run = runs.get(run_id)
        if run is None:
            return
        run_metric = metric_of(run_id)
        framework = run.framework
        verdict_of = verdicts.setdefault((framework, run_metric), {})
        found: list[Any] = list(map(verdict_of.get, names, _repeat(_UNREAD)))
        if _UNREAD in found:
            entry = registry.get(framework)
            own = entry.checkpoints if entry is not None else None
            reader = name_readers[run_metric] if run_metric else None
            for index, name in enumerate(names):
                if found[index] is _UNREAD:
                    verdict = verdict_of.get(name, _UNREAD)
                    if verdict is _UNREAD:
                        verdict = verdict_of[name] = _file_verdict(
                            name, framework, rules, own, reader
                        )
                    found[index] = verdict
        if None in found:  # not a checkpoint's name: no unit
            keep = [index for index, verdict in enumerate(found) if verdict is not None]
            if not keep:
                return
            paths, sizes, mtimes, inodes, ftypes, digests, found = (
                [column[index] for index in keep]
                for column in (paths, sizes, mtimes, inodes, ftypes, digests, found)
            )
        count = len(paths)
        if ftypes.count(None) == count:
            kinds: Iterable[str] = _repeat("file", count)
        else:
            kinds = ["file" if ftype is None else ftype for ftype in ftypes]
        steps, epochs, lasts, values, sources, bests, read_as, untrusted = zip(*found, strict=True)
        made = list(
            map(
                Candidate,
                _repeat(root, count),
                _repeat(run_id, count),
                _repeat(run.path, count),
                _repeat(framework, count),
                _repeat(run.live, count),
                paths,
                _repeat(False, count),
                sizes,
                mtimes,
                inodes,
                kinds,
                digests,
                steps,
                epochs,
                lasts,
                values,
                sources,
                bests,
            )
        )
        if read_as.count(None) != count:  # a value read under another name than asked
            for unit, name_read in zip(made, read_as, strict=True):
                unit.metric_name = name_read
        if True in untrusted:  # a number past 64 bits: ordered first, said
            untrusted_runs.add(run_id)
            for unit, flag in zip(made, untrusted, strict=True):
                unit.untrusted = flag
        units = file_made.get(run_id)
        if units is None:
            file_made[run_id] = made
        else:
            units += made

    group_units: dict[tuple[int, bytes], Candidate | None] = {}

    def take(blocks: Iterable[PlanBlock], folder_rows: list[FolderRow]) -> None:
        """Make the file units of each block's file stretches; keep its folder rows; add
        each folder stretch's bytes and newest mtime to the unit of its checkpoint folder
        (looked up once per run and folder)."""
        for files, rows, folders in blocks:
            for stretch in files:
                file_units(*stretch)
            folder_rows += rows
            for run_id, parent_blob, size, mtime_ns, holds in folders:
                if run_id is None:
                    continue
                group = (run_id, parent_blob)
                if group in group_units:
                    folder = group_units[group]
                else:
                    folder = group_units[group] = folder_unit(run_id, parent_blob, mtime_ns)
                if folder is not None:
                    _add_to_folder(folder, size, mtime_ns, holds, holds_bytes)

    # Links are never units (see checkpoint_links): SQLite drops them, and sends NULL for
    # the usual ftype 'file' rather than a new string per row.  Rows are taken a block
    # at a time (``plan_block``), not fetched whole first.
    if blocks is None:
        blocks = map(plan_block, _fetched(conn.execute(rows_query(conn), (root_id,))))
    take(blocks, folder_rows)
    for run_id, units in list(by_run.items()):
        # a folder of links only (checkpoint-2/ linking checkpoint-1's weights) is a link,
        # as a file link is: no unit of its own, never taking a keep-last slot
        for unit_path in [p for p in units if (run_id, p) not in holds_bytes]:
            del units[unit_path]
        if not units:
            del by_run[run_id]
    # runs in id order, as SQLite's grouping gave them; then each run first met among
    # the files, at its first checkpoint file
    run_units: dict[int, list[Candidate]] = {
        run_id: list(units.values()) for run_id, units in sorted(by_run.items())
    }
    with_folders = len(run_units)
    # files in folders SQLite's filter took for checkpoint folders, a bounded number of
    # folders a query (SQLite caps a statement's parameters)
    for start in range(0, len(loose_parents), _LOOSE_PARENTS_A_QUERY):
        chunk = loose_parents[start : start + _LOOSE_PARENTS_A_QUERY]
        marks = ",".join("?" * len(chunk))
        loose = conn.execute(
            f"SELECT {_COLUMNS}, NULL FROM artifacts WHERE root_id = ? AND kind IN "
            f"('checkpoint', 'model') AND ftype != 'symlink' AND parent IN ({marks})",
            (root_id, *chunk),
        )
        take(map(plan_block, _fetched(loose)), [])
    for run_id, made in file_made.items():
        before = run_units.get(run_id)
        if before is None:
            run_units[run_id] = made
        else:
            before += made
    ordered: dict[int, list[Candidate]] = {}
    states = _StateReads(time.monotonic() + STATE_SECONDS)
    with_folder_ids = set(list(run_units)[:with_folders])
    # runs by path: the order a plan lists them in, and how the budget settles ties
    for run_id in sorted(run_units, key=lambda run_id: (runs[run_id].path, run_id)):
        made = run_units[run_id]
        if run_id in with_folder_ids and len(made) > 1:
            made = _one_unit_per_path(made)
        run_metric = metric_of(run_id)
        made = _attach_trainer_state(runs[run_id], order_units(made), run_metric)
        if run_id in untrusted_runs and warnings is not None:
            _warn_untrusted(runs[run_id], made, warnings)
        _attach_lightning_best(runs[run_id], made, states, reads_state)
        if run_metric is not None and None in [unit.metric for unit in made]:
            # each of these reads only when some unit has no value yet
            _attach_metrics_csv(runs[run_id], made, run_metric)
            _attach_logged_series(runs[run_id], made, run_metric)
            _attach_framework_series(runs[run_id], made, run_metric)
            _attach_run_metrics(runs[run_id], made, run_metric)
        ordered[run_id] = made
    if states.unread and warnings is not None:
        warnings.append(
            f"{display(root)}: the ModelCheckpoint state of {states.unread} Lightning run(s)"
            f" was not read (over {STATE_SECONDS:g} s): their trainer's best_model_path is"
            " not kept for it"
        )
    return ordered


def _warn_untrusted(run: RunInfo, units: list[Candidate], warnings: list[str]) -> None:
    """Say the units of ``run`` whose number is past 64 bits, which ``order_units`` put first."""
    untrusted = [unit for unit in units if unit.untrusted]
    if untrusted:
        warnings.append(
            f"{display(run.path) or '.'}: {len(untrusted)} checkpoint(s) numbered past 64"
            f" bits, no step or epoch a framework saves at ({display(untrusted[0].name)}):"
            " ordered oldest,"
            " not taken for the newest"
        )


_FETCH_ROWS = 4096
"""Rows a plan read in one process digests at a time (``plan_block``)."""


def _fetched(cursor: Any) -> Iterator[list[tuple[Any, ...]]]:
    """A cursor's rows, ``_FETCH_ROWS`` at a time."""
    return iter(partial(cursor.fetchmany, _FETCH_ROWS), [])


_UNREAD: Any = object()
"""A name not read yet (None is a name read and found no checkpoint's)."""
_repeat = itertools.repeat


def _add_to_folder(
    folder: Candidate, size: int, mtime_ns: int, holds: bool, holds_bytes: set[tuple[int, str]]
) -> None:
    """Add one folder's rows (their bytes, newest mtime, whether one is no link) to the
    checkpoint folder unit holding it."""
    folder.size += size
    if mtime_ns > folder.mtime_ns:
        folder.mtime_ns = mtime_ns
    if holds:
        holds_bytes.add((folder.run_id, folder.path))


def _one_unit_per_path(units: list[Candidate]) -> list[Candidate]:
    """A run's folder units then its file units, one per path: a file row at a folder
    unit's own path (an index caught between a file and a folder of that name) takes the
    folder's place, as assigning it by path in a dict would."""
    if len({unit.path for unit in units}) == len(units):
        return units
    by_path: dict[str, Candidate] = {}
    for unit in units:
        by_path[unit.path] = unit
    return list(by_path.values())


_COLUMNS = "run_id, path, size, mtime_ns, inode, nullif(ftype, 'file'), hash"
_ROWS = (
    f"SELECT {_COLUMNS}, CASE WHEN {_MAYBE_IN_CKPT_FOLDER} THEN parent END FROM {{source}} "
    "WHERE root_id = ? AND ((run_id IS NOT NULL AND kind IN ('checkpoint', 'model') "
    f"AND ftype != 'symlink') OR {_MAYBE_IN_CKPT_FOLDER})"
)
"""In one pass over a root, the checkpoint files outside checkpoint folders, with NULL for a
parent, and every row that may be inside one (a ``FolderRow``, its parent given).  Rows
come in the order of ``artifacts_source``: a plan's order does not follow it (runs go by
path, and ``sort_key_factory`` settles ties by path)."""
_LOOSE_PARENTS_A_QUERY = 500


def rows_query(conn: Any) -> str:
    """The row pass's statement (``_ROWS``) for this index; its one parameter is the root."""
    return _ROWS.format(source=artifacts_source(conn))


def checkpoint_links(db: sqlite_utils.Database, root_id: int) -> list[tuple[int, str, str | None]]:
    """(run id, path, target) of symlinks with checkpoint names, such as Lightning's
    ``last.ckpt``: never a unit of their own and never holding a keep-last slot."""
    rows = db.conn.execute(
        f"SELECT run_id, path, link_target FROM {artifacts_source(db.conn)} WHERE "
        "ftype = 'symlink' AND root_id = ? AND run_id IS NOT NULL AND kind IN "
        f"('checkpoint', 'model') AND NOT {_IN_CKPT_FOLDER} ORDER BY path",
        (root_id,),
    ).fetchall()
    return [(int(r), _decode(bytes(p)), None if t is None else str(t)) for r, p, t in rows]


_Verdict = tuple[int | None, int | None, bool, float | None, str | None, bool, str | None, bool]
"""A checkpoint file's step, epoch, is_last, metric, metric_source and trainer_best (the
trailing fields of its ``Candidate`` in their order, made positionally), then its
``metric_name`` and ``untrusted``."""


def _file_verdict(
    name: str,
    framework: str,
    rules: _NameRules,
    own: Checkpoints | None,
    reader: Callable[[str], NameMetric | None] | None,
) -> _Verdict | None:
    """All a file's name says of it in a run of ``framework`` with the metric ``reader``
    reads; None when the name is no checkpoint's.  It depends on these alone, so one
    answer serves every file of that name."""
    parsed = _parse_file_name(name, framework, rules)
    if parsed is None:
        return None
    step, epoch, is_last, is_best, untrusted = parsed
    if own is not None and own.counts_epochs and epoch is None and step is not None:
        step, epoch = None, step  # timm's checkpoint-<epoch>.pth.tar
    trainer_best = is_best or (
        own is not None and own.best_prefix is not None and name.lower().startswith(own.best_prefix)
    )
    found = reader(name) if reader is not None else None
    if found is None:
        return step, epoch, is_last, None, None, trainer_best, None, untrusted
    return step, epoch, is_last, found[0], "file name", trainer_best, found[1], untrusted


def _parse_file_name(
    name: str, framework: str, rules: _NameRules
) -> tuple[int | None, int | None, bool, bool, bool] | None:
    """(step, epoch, is_last, is_best, untrusted) of a checkpoint file's name, or None when
    it is none; untrusted: its number is past 64 bits, and neither step nor epoch.

    An epoch or step word wins; then every framework's last and best names, then the
    numbered names any run may hold (Detectron2's), then those of the run's own framework
    (Keras' ModelCheckpoint names count epochs from their first number; no other's do).
    """
    lower = name.lower()
    step, epoch, numbered, untrusted = _numbers_of(_NUMBERS.findall(lower))
    if numbered:
        return step, epoch, False, False, untrusted
    if lower in rules.last:
        return None, None, True, False, False
    if lower in rules.best:
        return None, None, False, True, False
    for named in (*rules.any_run, *rules.own.get(framework, ())):
        if (found := named.pattern.match(lower)) is not None:
            digits = found.group(1)
            if untrusted_number(digits):
                return None, None, False, False, True
            if named.counts == "step":
                return int(digits), None, False, False, False
            return None, int(digits), False, False, False
    if not lower.endswith(".ckpt"):
        return None
    return None, None, _LAST.match(name) is not None, False, False


def checkpoint_folder_rows(db: sqlite_utils.Database, root_id: int) -> list[FolderRow]:
    """Every row inside some ``checkpoint-N`` folder of the root, folder by folder (the
    rows ``candidates_for_root`` hands its ``folder_rows_out``)."""
    return db.conn.execute(
        f"SELECT {_COLUMNS}, parent FROM artifacts WHERE root_id = ? AND {_MAYBE_IN_CKPT_FOLDER}",
        (root_id,),
    ).fetchall()


def attach_members(
    db: sqlite_utils.Database,
    root_id: int,
    units: list[Candidate],
    folder_rows: list[FolderRow] | None = None,
) -> None:
    """List the files of each checkpoint folder unit (what apply will compare against).

    A file goes to the outermost unit among the folders holding it, which depends on its
    folder alone: that is decided once per folder, so the files of kept units cost a lookup.
    """
    folders = {u.path: u for u in units if u.is_dir}
    if not folders:
        return
    if folder_rows is None:
        folder_rows = checkpoint_folder_rows(db, root_id)
    owner_of: dict[bytes, Candidate | None] = {}
    # rows come folder by folder: the owner is looked up once per stretch of a folder's
    # rows, and a stretch's rows are handed to it whole (``MemberRows``)
    for parent_blob, stretch in itertools.groupby(folder_rows, _PARENT):
        parent_key = bytes(parent_blob)
        if parent_key in owner_of:
            unit = owner_of[parent_key]
        else:
            unit = owner_of[parent_key] = _outermost_unit(folders, _decode(parent_key))
        if unit is None:
            continue
        members = unit.members
        if isinstance(members, MemberRows):
            members.add(stretch)
        elif members:
            unit.members = [*members, *MemberRows(list(stretch))]
        else:
            unit.members = MemberRows(list(stretch))


_PARENT = itemgetter(7)
"""A ``FolderRow``'s parent."""


def _outermost_unit(folders: dict[str, Candidate], parent: str) -> Candidate | None:
    """The unit whose folder is the shortest of ``parent`` and the folders above it."""
    if not parent:
        return None
    inner = parent + "/"
    cut = inner.find("/")
    while cut >= 0:
        unit = folders.get(inner[:cut])
        if unit is not None:
            return unit
        cut = inner.find("/", cut + 1)
    return None


def _numbers_of(found: list[tuple[str, str]]) -> tuple[int | None, int | None, bool, bool]:
    """(step, epoch, any checkpoint number at all, one of them past 64 bits) from
    ``_NUMBERS`` matches; with one past 64 bits neither: the name orders nothing."""
    step: str | None = None
    epoch: str | None = None
    for word, number in found:
        if word in _STEP_WORDS:
            if step is None:
                step = number
        elif word in _EPOCH_WORDS and epoch is None:
            epoch = number
    if step is None and epoch is None:
        return None, None, False, False
    if (step is not None and untrusted_number(step)) or (
        epoch is not None and untrusted_number(epoch)
    ):
        return None, None, True, True
    return (
        None if step is None else int(step),
        None if epoch is None else int(epoch),
        True,
        False,
    )


_NAME_READERS: dict[str, Callable[[str], NameMetric | None]] = {}


def _name_metric_reader(metric: str) -> Callable[[str], NameMetric | None]:
    """A fast ``metric_from_name`` for one metric, saying which name it read: the asked
    name when the file name holds it, else the first alias it holds (``val_loss`` in
    ``eval_loss=0.3-val_loss=0.2`` is 0.2).  One compiled pattern a name, searched only
    where a substring test finds the name."""
    reader = _NAME_READERS.get(metric)
    if reader is not None:
        return reader
    patterns = [
        (
            alias,
            re.compile(r"(?:^|[-_/ ])" + re.escape(alias) + r"[=_]?" + _VALUE).search,
            _read_as(alias, metric),
        )
        for alias in _aliases(metric)
    ]

    asked, search_asked, _ = patterns[0]
    twins = patterns[1:]

    def read(name: str) -> NameMetric | None:
        # the asked name, then its twins; a substring test before each search
        if asked in name and (match := search_asked(name)) is not None:
            value = float(match.group(1).rstrip("."))
            return (value, None) if math.isfinite(value) else None
        for alias, search, read_as in twins:  # a loop, not a generator: a third the cost
            if alias in name and (match := search(name)) is not None:
                value = float(match.group(1).rstrip("."))
                return (value, read_as) if math.isfinite(value) else None
        return None

    _NAME_READERS[metric] = read
    return read


def _checkpoint_folder_end(inner: str) -> int:
    """Where the first ``checkpoint-N`` folder component of ``inner`` ends, or -1."""
    if "checkpoint" not in inner:
        return -1
    start = 0
    while True:
        cut = inner.find("/", start)
        if cut < 0:
            return -1
        if _CKPT_DIR.match(inner[start:cut]):
            return cut
        start = cut + 1


def _attach_trainer_state(
    run: RunInfo, units: list[Candidate], metric: str | None
) -> list[Candidate]:
    """HF Trainer: metric values from ``log_history`` and the ``best_model_checkpoint``.

    Returns the units oldest first: when the current session was resumed from an earlier
    checkpoint (``_current_session_state``), the dead session's checkpoints past its step
    come first, and the current session's newest last (what a resume continues from)."""
    folders = [u for u in units if u.is_dir]
    if not folders:
        return units
    from store.frameworks.hf import choose_state

    rels = [os.path.join(run.path, "trainer_state.json")]
    rels += [os.path.join(u.path, "trainer_state.json") for u in reversed(folders)]
    state, _, _ = choose_state(rels, lambda rel: read_json_capped(os.path.join(run.root, rel)))
    if state is None:
        return units
    current = _current_session_state(run, folders, state)
    if current is not None:
        reached = _int(current.get("global_step"))
        dead = [u for u in folders if u.step is not None and u.step > reached]
        if dead:
            for unit in dead:
                unit.dead_after = reached
            units = [*dead, *(u for u in units if u.dead_after is None)]
    states = [state] if current is None else [state, current]
    for one in states:  # the dead session's best is a file too: both are protected
        best = one.get("best_model_checkpoint")
        if isinstance(best, str) and best:
            best_name = best.rstrip("/").rsplit("/", 1)[-1]
            for unit in folders:
                if unit.name == best_name:
                    unit.trainer_best = True
    if metric is None:
        return units
    at_step = _history_metric(state.get("log_history"), metric)
    if current is not None:  # the steps it reached were logged (and saved) again by it
        reached = _int(current.get("global_step"))
        at_step = {step: got for step, got in at_step.items() if step > reached}
        at_step.update(_history_metric(current.get("log_history"), metric))
    for unit in folders:
        if unit.metric is None and unit.step is not None and unit.step in at_step:
            unit.metric, unit.metric_name = at_step[unit.step]
            unit.metric_source = "trainer_state.json"
    return units


class _StateReads:
    """The Lightning states read for one root's plan: a deadline, and the runs past it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.unread = 0


_SavedBests = tuple["SavedBest", ...]
_saved_bests: dict[tuple[str, str, int, int, int], _SavedBests] = {}
"""What a state file held, by its root, path and identity in the index (size, mtime_ns,
inode): a checkpoint is never written again in place, and last.ckpt's every save is a new
identity, so a view that plans on each change reads each one once."""
_SAVED_BESTS_KEPT = 4096


def _attach_lightning_best(
    run: RunInfo,
    units: list[Candidate],
    states: _StateReads,
    reads_state: Callable[[RunInfo, int], bool] | None,
) -> None:
    """Lightning: mark the best checkpoint of each monitored ModelCheckpoint, as the state
    saved in the run's newest ``.ckpt`` names it (``lightning.saved_bests``), as the HF
    Trainer's ``best_model_checkpoint`` is.  One file a run, only when its newest unit is
    a ``.ckpt`` file of a local root and ``reads_state`` says so; past the deadline none
    (said by the caller)."""
    if not units:
        return
    newest = units[-1]
    if newest.is_dir or not newest.path.lower().endswith(".ckpt") or is_url(run.root):
        return
    if reads_state is not None and not reads_state(run, len(units)):
        return
    identity = (run.root, newest.path, newest.size, newest.mtime_ns, newest.inode)
    bests = _saved_bests.get(identity)
    if bests is None:
        if time.monotonic() > states.deadline:
            states.unread += 1
            return
        from store.frameworks.lightning import saved_bests

        bests = tuple(saved_bests(Path(run.root), newest.path, MAX_STATE_PICKLE_BYTES))
        if len(_saved_bests) >= _SAVED_BESTS_KEPT:
            _saved_bests.clear()
        _saved_bests[identity] = bests
    if not bests:
        return
    folder = newest.path[: newest.path.rfind("/") + 1]
    by_path = {unit.path: unit for unit in units if not unit.is_dir}
    for best in bests:
        unit = by_path.get(folder + best.name)
        if unit is None:
            continue
        unit.trainer_best = True
        if unit.best_monitor is None:
            unit.best_monitor = best.monitor
        elif best.monitor not in unit.best_monitor.split(", "):
            unit.best_monitor += f", {best.monitor}"


_STATES_STATTED = 64
"""The newest checkpoint folders whose ``trainer_state.json`` mtime is looked at."""


def _current_session_state(
    run: RunInfo, folders: list[Candidate], state: dict[str, Any]
) -> dict[str, Any] | None:
    """The state of a session resumed from an earlier checkpoint, when the highest-step
    ``state`` is a dead session's (``store.frameworks.hf._current_state``): written later at
    a lower step, with a ``log_history`` that parts from ``state``'s.  Its checkpoints
    (those up to its step) were saved again by it, and judged by its own evaluations.  A
    state written later that says no step (``{}``) is passed over, as there."""
    from store.frameworks.hf import by_write_time, history_parting

    rels = [os.path.join(u.path, "trainer_state.json") for u in folders[-_STATES_STATTED:]]
    rels.append(os.path.join(run.path, "trainer_state.json"))
    for newest in by_write_time(Path(run.root), rels):
        other = read_json_capped(os.path.join(run.root, newest))
        if isinstance(other, dict) and _int(other.get("global_step")) < 0:
            continue
        if not isinstance(other, dict) or _int(other.get("global_step")) >= _int(
            state.get("global_step")
        ):
            return None
        parted, _ = history_parting(state.get("log_history"), other.get("log_history"))
        return other if parted is not None else None
    return None


def _history_metric(history: object, metric: str) -> dict[int, NameMetric]:
    """The metric's value at each step of a ``log_history``."""
    if not isinstance(history, list):
        return {}
    names = [(name, _read_as(name, metric)) for name in _aliases(metric)]
    at_step: dict[int, NameMetric] = {}
    for entry in history:
        if not isinstance(entry, dict):
            continue
        step = entry.get("step")
        if not isinstance(step, int):
            continue
        for name, read_as in names:
            value = entry.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    at_step[step] = (float(value), read_as)
                break
    return at_step


MAX_METRICS_CSV_BYTES = 64 << 20
"""A run's ``metrics.csv`` beyond this is not read for checkpoint metrics."""


def _attach_metrics_csv(run: RunInfo, units: list[Candidate], metric: str) -> None:
    """Lightning's CSVLogger: the metric logged in the checkpoint's epoch (else its step).

    ModelCheckpoint saves after validation, so the last value of the metric in epoch E is
    the one ``epochE-...ckpt`` was judged by, whatever its ``filename`` template says.
    """
    if not any(u.metric is None and (u.epoch is not None or u.step is not None) for u in units):
        return
    path = os.path.join(run.root, run.path, "metrics.csv")
    try:
        data, cut = read_capped(path, MAX_METRICS_CSV_BYTES)
    except OSError:
        return
    if cut:
        return
    rows = csv_reader(data.decode("utf-8", "replace"))
    try:
        logged = [h.strip() for h in next(rows)]
    except (StopIteration, csv.Error):
        return
    header = [h.lower() for h in logged]
    aliases = [a.lower() for a in _aliases(metric)]
    column = next((header.index(a) for a in aliases if a in header), None)
    if column is None:
        return
    read_as = _read_as(logged[column], metric)
    epoch_col = header.index("epoch") if "epoch" in header else None
    step_col = header.index("step") if "step" in header else None
    by_epoch: dict[int, float] = {}
    by_step: dict[int, float] = {}
    try:
        for row in rows:
            if len(row) != len(header):  # a cell lost or added: the value may be another's
                continue
            value = _float(row[column])
            if value is None:
                continue
            if epoch_col is not None:
                epoch = _whole(row[epoch_col])
                if epoch is not None:
                    by_epoch[epoch] = value
            if step_col is not None:
                step = _whole(row[step_col])
                if step is not None:
                    by_step[step] = value
    except csv.Error:
        return
    for unit in units:
        if unit.metric is not None:
            continue
        if unit.epoch is not None and unit.epoch in by_epoch:
            unit.metric, unit.metric_source = by_epoch[unit.epoch], "metrics.csv"
        elif unit.epoch is None and unit.step is not None and unit.step in by_step:
            unit.metric, unit.metric_source = by_step[unit.step], "metrics.csv"
        else:
            continue
        unit.metric_name = read_as


def _series_source(run: RunInfo) -> SeriesSource | None:
    entry = registry.get(run.framework)
    return entry.checkpoints.series if entry is not None else None


def _logged_metric(
    run: RunInfo, metric: str
) -> tuple[dict[str, list[tuple[int, float]]], list[tuple[int, float]], str | None] | None:
    """The run's series as its framework's reader logs them, the metric's points, and
    the name they were logged under when it is not ``metric`` (``Candidate.metric_name``)."""
    from store.frameworks import read_metric_series
    from store.frameworks._common import orphans_kept
    from store.frameworks.model import RunSpec

    spec = RunSpec(path=run.path, framework=run.framework, name=run.path, experiment=None)
    with orphans_kept():  # a dead session's checkpoints are judged by its own rows
        series = read_metric_series(Path(run.root), spec)
    name = next((a for a in _aliases(metric) if a in series), None)
    if name is None or not series[name]:
        return None
    return series, series[name], _read_as(name, metric)


def _attach_logged_series(run: RunInfo, units: list[Candidate], metric: str) -> None:
    """The metric and the logged ``epoch`` scalar, joined by step, for frameworks whose
    series source counts ``logged epoch`` (Lightning's TensorBoardLogger)."""
    source = _series_source(run)
    if (
        source is None
        or source.counts != "logged epoch"
        or not any(u.metric is None and (u.epoch is not None or u.step is not None) for u in units)
    ):
        return
    logged = _logged_metric(run, metric)
    if logged is None:
        return
    series, points, read_as = logged
    epochs = sorted(series.get("epoch", []))
    by_epoch: dict[int, float] = {}
    by_step: dict[int, float] = {}
    cursor, epoch = 0, None
    for step, value in sorted(points, key=lambda p: p[0]):
        while cursor < len(epochs) and epochs[cursor][0] <= step:
            epoch = int(epochs[cursor][1])
            cursor += 1
        by_step[step] = value
        if epoch is not None:
            by_epoch[epoch] = value
    for unit in units:
        if unit.metric is not None:
            continue
        if unit.epoch is not None and unit.epoch in by_epoch:
            unit.metric, unit.metric_source = by_epoch[unit.epoch], source.label
        elif unit.epoch is None and unit.step is not None and unit.step in by_step:
            unit.metric, unit.metric_source = by_step[unit.step], source.label
        else:
            continue
        unit.metric_name = read_as


def _attach_framework_series(run: RunInfo, units: list[Candidate], metric: str) -> None:
    """The metric its reader logged at the checkpoint's epoch or step, as the run's
    framework's series source says (Ultralytics, timm, MMEngine, Detectron2, Keras)."""
    source = _series_source(run)
    if (
        source is None
        or source.counts == "logged epoch"
        or not any(u.metric is None for u in units)
    ):
        return
    logged = _logged_metric(run, metric)
    if logged is None:
        return
    which, offset = source.counts, source.offset
    at = {step: value for step, value in logged[1] if math.isfinite(value)}
    read_as = logged[2]
    for unit in units:
        if unit.metric is not None:
            continue
        if which == "epoch" or (which == "either" and unit.epoch is not None):
            number = unit.epoch
        else:
            number = unit.step
        if number is not None and number + offset in at:
            unit.metric, unit.metric_source = at[number + offset], source.label
            unit.metric_name = read_as


def _float(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _whole(cell: str) -> int | None:
    value = _float(cell)
    return int(value) if value is not None and value == int(value) else None


def _attach_run_metrics(run: RunInfo, units: list[Candidate], metric: str) -> None:
    """The run's own metric summary, when its step is a checkpoint's step."""
    if not any(u.metric is None for u in units):
        return
    try:
        summaries = json.loads(run.metrics)
    except (ValueError, TypeError):
        return
    if not isinstance(summaries, dict):
        return
    for name in _aliases(metric):
        summary = summaries.get(name)
        if not isinstance(summary, dict):
            continue
        step, value = summary.get("step"), summary.get("last")
        if not isinstance(step, int) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, bool) or not math.isfinite(value):
            continue
        read_as = _read_as(name, metric)
        for unit in units:
            if unit.metric is None and unit.step == step:
                unit.metric, unit.metric_source = float(value), "run metrics"
                unit.metric_name = read_as
        return


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def read_json_capped(path: str | Path, limit: int = MAX_TRAINER_STATE_BYTES) -> Any:
    """A small JSON file, or None: never a FIFO or link, never more than ``limit`` bytes."""
    try:
        data, cut = read_capped(path, limit)
        if cut:
            return None
        return load_json(data.decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
