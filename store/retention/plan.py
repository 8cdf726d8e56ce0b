"""The retention plan: for every checkpoint, keep or remove, and every reason why.

Planning never touches the files.  A plan is saved as JSON with each removal's identity
(size, mtime_ns, inode, hash), so ``apply`` acts on exactly what was previewed and skips
anything that changed since, and with the identity of every unit it keeps in a run it
removes from, so ``apply`` can tell that the run still has what the plan left it.
A saved plan is read as hostile input: every field is checked before anything uses it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import heapq
import json
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from math import isfinite
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

import platformdirs
import sqlite_utils

from store import fsops
from store.errors import ArtlensError
from store.gcpause import collector_paused
from store.paths import display, key, prefix_range, unkey
from store.retention import rowpump, saved_plans
from store.retention.candidates import (
    STRAIGHT_THROUGH,
    Candidate,
    FolderRow,
    Member,
    RunInfo,
    artifacts_source,
    attach_members,
    candidates_for_root,
    checkpoint_links,
    load_runs,
    member_fields,
    rows_query,
)
from store.retention.globs import GlobSet, compile_globs
from store.retention.policy import INVALID_POLICY, KeepRules, Policy, format_age
from store.root import is_url
from store.safefile import read_fd

PLAN_VERSION = 2
"""Version 2 lists the units a plan keeps in each run it removes from (``kept_units``);
apply re-checks them, so a plan of version 1 is refused rather than applied unchecked."""
MAX_PLAN_BYTES = 1 << 30
"""A saved plan larger than this is refused, never read in part."""

PINNED = "pinned"
LIVE_NEWEST = "live run's newest"
TRAINER_BEST = "trainer's best_model_checkpoint"
TRAINER_BEST_PREFIX = "trainer's best"
TRAINER_BEST_NAMED = "trainer's best (by its name)"
"""A file the trainer names as its best (``best.pt``, ``model_best.pth.tar``, MMEngine's
``best_*.pth``): no state of the trainer's was read to say so."""
"""What every reason for a trainer's own record of its best starts with (HF's, Lightning's)."""
OVER_BUDGET = "over budget"
NO_RULE = "no retention rule applies"
KEPT_BY_NO_RULE = "kept by no rule"


class PlanError(ArtlensError):
    """A plan that cannot be made, saved or loaded; the message is one line."""


class PinSource(Protocol):
    """Anything that lists pins per root (``store.userstate.UserState`` does)."""

    def pin_entries(self, root: Path | str) -> Iterable[Any]: ...


@dataclass(slots=True)
class RunTotals:
    root: str
    run_path: str
    kept: int = 0
    removed: int = 0
    bytes_kept: int = 0
    bytes_removed: int = 0


@dataclass(slots=True)
class RootTotals:
    root: str
    policy: str
    kept: int = 0
    removed: int = 0
    bytes_kept: int = 0
    bytes_removed: int = 0
    total_bytes: int = 0
    """Everything the index holds under the root, checkpoints or not."""
    budget: int | None = None
    over_budget_after: int = 0
    """Bytes still over the budget after the plan (everything left is protected)."""


@dataclass(slots=True)
class FsTotals:
    dev: int
    roots: list[str]
    free_now: int | None
    free_after_purge: int | None
    """Moving to the trash frees nothing; this is after ``purge`` of these items: what they
    take on disk now (``disk_freed``), not their sizes (a sparse 1 TiB file may take
    nothing).  None when that could not be measured."""
    bytes_freed: int = 0


@dataclass
class Plan:
    id: str
    created: float
    now: float
    items: list[Candidate]
    runs: list[RunTotals] = field(default_factory=list)
    roots: list[RootTotals] = field(default_factory=list)
    filesystems: list[FsTotals] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    """Checkpoint-named symlinks (never counted) and what each points at; raw text."""
    path: Path | None = None
    """Where the plan was saved, once saved."""
    helper_roots: list[str] = field(default_factory=list)
    """Roots some of whose rows a helper process read (``rowpump``)."""

    @property
    def removals(self) -> list[Candidate]:
        return [item for item in self.items if not item.keep]

    @property
    def bytes_freed(self) -> int:
        return sum(item.size for item in self.items if not item.keep)

    def save(self, path: Path | str | None = None) -> Path:
        """Write the plan (removals with their identities, the units kept in the runs it
        removes from, and the totals) as JSON, through a fresh temporary file of its own:
        a link or file planted at a temporary name is never written through."""
        target = Path(path) if path is not None else default_plan_dir() / f"{self.id}.json"
        with collector_paused():
            # built in a function of its own: its lists are freed when it returns, before
            # the collector runs again (alive, they made the next allocation walk them all)
            data = self._encoded()
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, _NEW_FILE, 0o600)
            try:
                with open(fd, "wb", closefd=False) as out:
                    out.write(data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise PlanError(
                f"cannot save plan to {display(str(target))}: {exc.strerror or exc}"
            ) from None
        self.path = target
        if target.parent == default_plan_dir():  # artlens's own folder: kept bounded
            saved_plans.prune(target.parent, target.name)
        return target

    def _encoded(self) -> bytes:
        """The plan as JSON bytes (see ``save``)."""
        root_index: dict[str, int] = {}
        rows = []
        runs_removed_from: set[tuple[str, int, str]] = set()
        for item in self.items:
            if item.keep:
                continue
            index = root_index.setdefault(item.root, len(root_index))
            runs_removed_from.add((item.root, item.run_id, item.run_path))
            rows.append(
                [
                    index,
                    item.run_id,
                    item.run_path,
                    item.path,
                    item.is_dir,
                    item.size,
                    item.mtime_ns,
                    item.inode,
                    item.ftype,
                    item.hash,
                    item.reasons,
                    member_fields(item.members),
                ]
            )
        kept_rows = []
        if runs_removed_from:
            for item in self.items:
                if item.keep and (item.root, item.run_id, item.run_path) in runs_removed_from:
                    kept_rows.append(
                        [
                            root_index[item.root],
                            item.run_id,
                            item.run_path,
                            item.path,
                            item.is_dir,
                            item.size,
                            item.mtime_ns,
                            item.inode,
                            item.ftype,
                        ]
                    )
        payload = {
            "version": PLAN_VERSION,
            "id": self.id,
            "created": self.created,
            "now": self.now,
            "kept": sum(1 for item in self.items if item.keep),
            "item_roots": list(root_index),
            "item_columns": list(_ITEM_COLUMNS),
            "removals": rows,
            "kept_columns": list(_KEPT_COLUMNS),
            "kept_units": kept_rows,
            "runs": [_fields(r) for r in self.runs],
            "roots": [_fields(r) for r in self.roots],
            "filesystems": [_fields(f) for f in self.filesystems],
            "warnings": self.warnings,
            "links": self.links,
        }
        return json.dumps(payload, separators=(",", ":")).encode("utf-8", "surrogatepass")


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

_ITEM_COLUMNS = (
    "root",
    "run_id",
    "run_path",
    "path",
    "is_dir",
    "size",
    "mtime_ns",
    "inode",
    "ftype",
    "hash",
    "reasons",
    "members",
)
_KEPT_COLUMNS = _ITEM_COLUMNS[:9]
"""A kept unit's row: what apply needs to tell it is still there as planned."""


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def default_plan_dir() -> Path:
    return Path(platformdirs.user_state_dir("artlens")) / "plans"


def load_plan(path: Path | str, *, follow_symlinks: bool = False) -> Plan:
    """A saved plan: its removals and the units it keeps in the runs it removes from
    (what ``apply`` needs), every field checked; ``PlanError`` (one line naming the plan
    and the field) otherwise.  A symlink is refused unless ``follow_symlinks`` (a path
    the user named, rather than one in artlens's own plans folder)."""
    with collector_paused(kept=True):  # JSON and items of 500,000 removals, no cycle
        return _load_plan(path, follow_symlinks=follow_symlinks)


class _Bad(Exception):
    """A saved plan not in the shape artlens writes; the message names the field."""


def _load_plan(path: Path | str, *, follow_symlinks: bool = False) -> Plan:
    try:
        data = _parsed(_read_plan_file(os.fspath(path), follow_symlinks))
        plan = _plan_of(data)
    except _Bad as exc:
        raise PlanError(f"cannot load plan {display(os.fspath(path))}: {exc}") from None
    plan.path = Path(path)
    return plan


def _read_plan_file(path: str, follow_symlinks: bool) -> bytes:
    """The bytes of a plan file: a regular file only, opened without blocking (a FIFO or
    a device never stalls or wakes anything) and no larger than ``MAX_PLAN_BYTES``."""
    try:
        st = os.stat(path) if follow_symlinks else os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise _Bad("it is a symlink; give the file it points to")
        if not stat.S_ISREG(st.st_mode):
            raise _Bad("not a regular file")
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(path, flags if follow_symlinks else flags | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise _Bad("it is a symlink; give the file it points to") from None
        raise _Bad(exc.strerror or "cannot be opened") from None
    try:
        st = os.fstat(fd)  # what was opened, whatever the path holds by now
        if not stat.S_ISREG(st.st_mode):
            raise _Bad("not a regular file")
        if st.st_size > MAX_PLAN_BYTES:
            raise _Bad(f"larger than {MAX_PLAN_BYTES} bytes")
        data, more = read_fd(fd, MAX_PLAN_BYTES, block=1 << 24)
    except OSError as exc:
        raise _Bad(exc.strerror or "cannot be read") from None
    finally:
        os.close(fd)
    if more:
        raise _Bad(f"larger than {MAX_PLAN_BYTES} bytes")
    return data


def _parsed(raw: bytes) -> dict[str, Any]:
    """The plan's JSON object; a plan of another version says so."""
    try:
        data = json.loads(raw.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise _Bad("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _Bad(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise _Bad("not a plan (JSON nested too deeply)") from None
    except ValueError:  # a number of thousands of digits
        raise _Bad("not a plan (a number too long)") from None
    if not isinstance(data, dict) or "version" not in data:
        raise _Bad("not an artlens plan")
    version = data["version"]
    if type(version) is int and 0 < version < PLAN_VERSION:
        raise _Bad(f"a plan from an older artlens (version {version}): plan again")
    if version != PLAN_VERSION or type(version) is not int:
        raise _Bad("not a plan this artlens can read (an unknown version)")
    return data


_PLAN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,80}")
_I64 = 1 << 63
_TEXT_LIMIT = 1 << 16
_FUTURE_SLACK = 300.0
"""Seconds a plan's creation time may lie ahead of the clock (apply re-checks ctimes
against it)."""


def _field(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise _Bad(f"{name} is missing")
    return data[name]


def _int(value: Any, what: str, low: int = 0, high: int = _I64 - 1) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Bad(f"{what} is not a whole number from {low} to {high}")
    return value


def _number(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not isfinite(value) or value < 0:
        raise _Bad(f"{what} is not a time")
    return float(value)


def _text(value: Any, what: str) -> str:
    """A string artlens could have written: no NUL, bounded, and every character one a
    file name can hold (a lone surrogate outside ``surrogateescape``'s is refused)."""
    if type(value) is not str or "\0" in value or len(value) > _TEXT_LIMIT:
        raise _Bad(f"{what} is not text")
    if not value.isascii():
        try:
            value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise _Bad(f"{what} is not text") from None
    return value


def _texts(value: Any, what: str) -> list[str]:
    if type(value) is not list:
        raise _Bad(f"{what} is not a list")
    return [_text(v, f"{what} entry {n}") for n, v in enumerate(value, 1)]


def _rows(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise _Bad(f"{what} is not a list")
    return value


_CLEAN_PATH = re.compile(r"(?:(?!\.\.?/)[^/\0]+/)*(?!\.\.?\Z)[^/\0]+")
"""What ``fsops.parts_of`` accepts, in one C pass: parts neither empty, '.' nor '..'."""


def _rel(value: Any, what: str, *, empty: bool = False) -> str:
    """A clean relative path (``empty`` allows '', the root's own run)."""
    if _clean(value):
        return str(value)
    text = _text(value, what)
    if empty and text == "":
        return text
    try:
        fsops.parts_of(text)
    except fsops.UnsafePath as exc:
        raise _Bad(f"{what} is {exc}") from None
    return text


def _root(value: Any, what: str) -> str:
    """An absolute, normalised path (as the index stores a root) or a bucket URL."""
    text = _text(value, what)
    if is_url(text):
        return text
    if not text.startswith("/") or os.path.normpath(text) != text:
        raise _Bad(f"{what} is not an absolute, normalised path")
    return text


class _Rows:
    """Checks the rows of ``removals`` and ``kept_units``.  Messages are made only for a
    row that fails, and text that repeats (run paths, reasons) is checked once: checked,
    half a million rows load in about a third more time than they did unchecked."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots
        self.texts: set[str] = set()
        self.run_paths: set[str] = set()

    def unit(self, row: Any, what: str, number: int, width: int) -> Candidate:
        """The first nine fields of a row, as a unit (the caller sets the rest): at once
        when every field is as artlens writes it, else through ``_checked``, which names
        the field that is not (or, for a run path not seen yet, checks and takes it)."""
        if type(row) is list and len(row) == width:
            root, run_id, run_path, path, is_dir, size, mtime_ns, inode, ftype = row[:9]
            if (
                type(root) is int
                and 0 <= root < len(self.roots)
                and type(run_id) is int
                and 0 <= run_id < _I64
                and type(size) is int
                and 0 <= size < _I64
                and type(mtime_ns) is int
                and -_I64 <= mtime_ns < _I64
                and type(inode) is int
                and 0 <= inode < 1 << 64
                and (
                    ftype == "dir"
                    if is_dir is True
                    else is_dir is False and (ftype == "file" or ftype == "symlink")
                )
                and type(run_path) is str
                and run_path in self.run_paths
                and _clean(path)
            ):
                return Candidate(
                    self.roots[root],
                    run_id,
                    run_path,
                    "",
                    False,
                    path,
                    is_dir,
                    size,
                    mtime_ns,
                    inode,
                    ftype,
                    None,
                )
        return self._checked(row, what, number, width)

    def _checked(self, row: Any, what: str, number: int, width: int) -> Candidate:
        if type(row) is not list or len(row) != width:
            raise _Bad(f"{what} row {number} does not have {width} fields")
        root, run_id, run_path, path, is_dir, size, mtime_ns, inode, ftype = row[:9]
        where = f"{what} row {number}"
        if type(root) is not int or not 0 <= root < len(self.roots):
            raise _Bad(f"{where}, root is not the number of an entry of item_roots")
        if type(run_path) is not str or run_path not in self.run_paths:
            self.run_paths.add(_rel(run_path, f"{where}, run_path", empty=True))
        if type(is_dir) is not bool:
            raise _Bad(f"{where}, is_dir is not true or false")
        if ftype != ("dir" if is_dir else "file") and (is_dir or ftype != "symlink"):
            raise _Bad(f"{where}, ftype is not {'dir' if is_dir else 'file or symlink'}")
        _numbers(where, run_id, size, mtime_ns, inode)
        return Candidate(
            self.roots[root],
            run_id,
            run_path,
            "",
            False,
            _rel(path, f"{where}, path"),
            is_dir,
            size,
            mtime_ns,
            inode,
            ftype,
            None,
        )

    def removal(self, row: Any, number: int) -> Candidate:
        item = self.unit(row, "removals", number, len(_ITEM_COLUMNS))
        digest, reasons, members = row[9:]
        where = f"removals row {number}"
        if digest is not None and not _short_ascii(digest):
            _text(digest, f"{where}, hash")
        item.hash = digest
        if type(reasons) is not list:
            raise _Bad(f"{where}, reasons is not a list")
        for reason in reasons:
            if type(reason) is not str or reason not in self.texts:
                self.texts.add(_text(reason, f"{where}, reasons"))
        item.reasons = reasons
        item.keep = False
        if type(members) is not list:
            raise _Bad(f"{where}, members is not a list")
        if members and not item.is_dir:
            raise _Bad(f"{where}, members are listed for a file")
        inside = item.path + "/"
        listed = []
        for count, member in enumerate(members, 1):
            if type(member) is not list or len(member) != 6:
                raise _Bad(f"{where} member {count} does not have 6 fields")
            path, size, mtime_ns, inode, ftype, digest = member
            if (
                type(size) is int
                and 0 <= size < _I64
                and type(mtime_ns) is int
                and -_I64 <= mtime_ns < _I64
                and type(inode) is int
                and 0 <= inode < 1 << 64
                and (ftype == "file" or ftype == "symlink")
                and _clean(path)
                and path.startswith(inside)
                and (digest is None or _short_ascii(digest))
            ):
                listed.append(Member(path, size, mtime_ns, inode, ftype, digest))
                continue
            if ftype != "file" and ftype != "symlink":
                raise _Bad(f"{where} member {count}, ftype is not file or symlink")
            _numbers(f"{where} member {count}", 0, size, mtime_ns, inode)
            if type(path) is not str or not path.startswith(inside):
                raise _Bad(f"{where} member {count}, path is not inside {display(item.path)}")
            _rel(path, f"{where} member {count}, path")
            if digest is not None:
                _text(digest, f"{where} member {count}, hash")
            listed.append(Member(path, size, mtime_ns, inode, ftype, digest))
        item.members = listed
        return item


def _clean(path: Any) -> bool:
    """A clean relative path in ASCII (what nearly every path is), checked in C."""
    return (
        type(path) is str
        and len(path) <= 4096
        and path.isascii()
        and _CLEAN_PATH.fullmatch(path) is not None
    )


def _short_ascii(text: Any) -> bool:
    """A hash as artlens writes one: short ASCII text without a NUL."""
    return type(text) is str and len(text) <= 256 and text.isascii() and "\0" not in text


def _numbers(where: str, run_id: Any, size: Any, mtime_ns: Any, inode: Any) -> None:
    """A row's run id, size, mtime_ns and inode: whole numbers in their ranges."""
    for name, value, low, high in (
        ("run_id", run_id, 0, _I64 - 1),
        ("size", size, 0, _I64 - 1),
        ("mtime_ns", mtime_ns, -_I64, _I64 - 1),
        ("inode", inode, 0, (1 << 64) - 1),
    ):
        if type(value) is not int or not low <= value <= high:
            raise _Bad(f"{where}, {name} is not a whole number from {low} to {high}")


def _totals(value: Any, what: str, kind: type[Any]) -> list[Any]:
    """``runs``, ``roots`` or ``filesystems``: objects with exactly ``kind``'s fields."""
    made = []
    for number, entry in enumerate(_rows(value, what), 1):
        where = f"{what} entry {number}"
        if type(entry) is not dict or set(entry) != set(kind.__slots__):
            raise _Bad(f"{where} does not have the fields {', '.join(kind.__slots__)}")
        fields: dict[str, Any] = {}
        for name in kind.__slots__:
            value = entry[name]
            label = f"{where}, {name}"
            if name == "roots":
                fields[name] = [_root(r, label) for r in _texts(value, label)]
            elif name == "root":
                fields[name] = _root(value, label)
            elif name == "run_path":
                fields[name] = _rel(value, label, empty=True)
            elif name == "policy":
                fields[name] = _text(value, label)
            elif name == "dev":
                fields[name] = _int(value, label, -1, (1 << 64) - 1)
            elif name in ("budget", "free_now", "free_after_purge") and value is None:
                fields[name] = None
            else:
                fields[name] = _int(value, label)
        made.append(kind(**fields))
    return made


def _plan_of(data: dict[str, Any]) -> Plan:
    """A plan of this version from its JSON object, every field checked."""
    plan_id = _text(_field(data, "id"), "id")
    if not _PLAN_ID.fullmatch(plan_id):
        raise _Bad("id is not a plan id")
    created = _number(_field(data, "created"), "created")
    if created > time.time() + _FUTURE_SLACK:
        raise _Bad("created is in the future")
    now = _number(_field(data, "now"), "now")
    if _field(data, "item_columns") != list(_ITEM_COLUMNS):
        raise _Bad("item_columns are not this version's")
    if _field(data, "kept_columns") != list(_KEPT_COLUMNS):
        raise _Bad("kept_columns are not this version's")
    roots = [
        _root(r, f"item_roots entry {n}")
        for n, r in enumerate(_rows(_field(data, "item_roots"), "item_roots"), 1)
    ]
    rows = _Rows(roots)
    removal = rows.removal
    items = [
        removal(row, number)
        for number, row in enumerate(_rows(_field(data, "removals"), "removals"), 1)
    ]
    kept_rows = _rows(_field(data, "kept_units"), "kept_units")
    if kept_rows:
        removed = {(item.root, item.path) for item in items}
        for number, row in enumerate(kept_rows, 1):
            unit = rows.unit(row, "kept_units", number, len(_KEPT_COLUMNS))
            if (unit.root, unit.path) in removed:
                raise _Bad(f"kept_units row {number} is also a removal")
            items.append(unit)
    return Plan(
        plan_id,
        created,
        now,
        items,
        runs=_totals(_field(data, "runs"), "runs", RunTotals),
        roots=_totals(_field(data, "roots"), "roots", RootTotals),
        filesystems=_totals(_field(data, "filesystems"), "filesystems", FsTotals),
        warnings=_texts(_field(data, "warnings"), "warnings"),
        links=_texts(data.get("links", []), "links"),
    )


class Pins:
    """Pinned paths and globs of one root: a pinned run pins all its checkpoints, and a
    pinned file pins the checkpoint folder that holds it (``holders``).  ``others``: the
    pins of other indexed roots that hold the same files (a root around this one, inside
    it, or the same folder under another name), each with how a path of this root reads
    in that root (None: not one of its paths)."""

    def __init__(
        self, exact: Iterable[str], globs: Iterable[str], *, unknown: bool = False
    ) -> None:
        self.unknown = unknown
        """Its policy file could not be read: any path may be pinned, so every one is."""
        self.exact = frozenset(p.strip("/") for p in exact)
        self.holders = frozenset(pin[:cut] for pin in self.exact for cut in _cuts(pin))
        """The folders above each exact pin: removing one would remove the pinned path."""
        self.globs: GlobSet | None = compile_globs(globs)
        self._folders: dict[str, bool] = {}
        self.others: list[tuple[Callable[[str], str | None], Pins]] = []

    def __bool__(self) -> bool:
        return self.unknown or bool(self.exact) or self.globs is not None or bool(self.others)

    def covers(self, relpath: str) -> bool:
        """True when the path, or a folder holding it, is pinned (here or in a root that
        holds the same file)."""
        cut = relpath.rfind("/")
        return (
            self.unknown
            or self._matches(relpath)
            or (cut > 0 and self._folder_pinned(relpath[:cut]))
            or self._others_pin(relpath, holders=False)
        )

    def _others_pin(self, relpath: str, *, holders: bool) -> bool:
        """Whether another root's pins cover ``relpath`` (with ``holders``: or a pinned
        path lies inside it)."""
        for read, pins in self.others:
            there = read(relpath)
            if there is not None and (
                pins.covers(there) or (holders and (there in pins.exact or there in pins.holders))
            ):
                return True
        return False

    def _folder_pinned(self, folder: str) -> bool:
        known = self._folders.get(folder)
        if known is None:
            cut = folder.rfind("/")
            known = self._matches(folder) or (cut > 0 and self._folder_pinned(folder[:cut]))
            self._folders[folder] = known
        return known

    def _matches(self, relpath: str) -> bool:
        return relpath in self.exact or (self.globs is not None and self.globs.matches(relpath))


def _own_pins(pins: Pins) -> Pins:
    """``pins`` without the other roots'."""
    own = Pins((), (), unknown=pins.unknown)
    own.exact, own.holders, own.globs, own._folders = (
        pins.exact,
        pins.holders,
        pins.globs,
        pins._folders,
    )
    return own


def _cuts(path: str) -> Iterator[int]:
    """Where each folder above ``path`` ends (``a/b/c``: 1, 3)."""
    cut = path.find("/")
    while cut > 0:
        yield cut
        cut = path.find("/", cut + 1)


def _pins_for(
    root: str,
    pins: PinSource | Mapping[str, Iterable[str]] | None,
    policy: Policy,
    nesting: _Nesting | None = None,
    policy_of: Callable[[str], Policy] | None = None,
    warnings: list[str] | None = None,
) -> Pins:
    """The pins of ``root``: the user's and its policy's globs; with ``nesting``, also
    those of every indexed root that holds the same files (with ``policy_of``, their
    policies' globs too): a pin protects a file whichever root it was made in.  A related
    root whose policy file is broken may pin anything: the files it holds are all kept
    (said in ``warnings``)."""
    exact: list[str] = []
    globs: list[str] = list(policy.pin)
    if pins is None:
        pass
    elif isinstance(pins, Mapping):
        exact.extend(pins.get(root, ()))
    else:
        for entry in pins.pin_entries(root):
            (globs if getattr(entry, "is_glob", False) else exact).append(str(entry.path))
    found = Pins(exact, globs)
    for other, read in nesting.related(root) if nesting is not None else ():
        their_policy = policy_of(other) if policy_of else Policy()
        theirs = _pins_for(other, pins, their_policy)
        theirs.unknown = their_policy.source == INVALID_POLICY
        if theirs.unknown and warnings is not None:
            warnings.append(
                f"{display(root)}: the indexed root {display(other)} holds these files and "
                "its policy file is broken (its pins are unknown): what it holds is kept"
            )
        if theirs:
            found.others.append((read, theirs))
    return found


def decide_run(
    units: list[Candidate],
    rules: KeepRules,
    *,
    now: float,
    pinned: Callable[[Candidate], bool],
    protect_live_newest: bool = True,
    budget_set: bool = False,
    pinned_among: Callable[[list[Candidate]], list[int]] | None = None,
) -> list[Candidate]:
    """Decide one run's units (oldest first) in place; return those left for the budget.

    Keep rules are a union.  Units no rule keeps are removed when the run has a keep rule;
    with only a budget they wait for the root's budget pass; with neither they stay.
    ``pinned_among`` (``_pins_among``), when given, answers ``pinned`` for the whole run
    at once.  Each rule finds the few units it keeps (by index, or a pass in C over the
    run) before the one Python pass over every unit that settles it.
    """
    has_rules = rules.any_rule()
    count = len(units)
    if rules.keep_last:
        reason = f"latest {rules.keep_last}"
        for unit in units[max(0, count - rules.keep_last) :]:
            unit.reasons.append(reason)
    live = protect_live_newest and count > 0 and units[-1].live
    resumed = resumed_session(units) if rules.keep_last or live else []
    if rules.keep_last and resumed:
        # the numbers say the higher-numbered units are newest, the mtimes that a session
        # resumed from an earlier checkpoint wrote these after them: which is current is
        # not proven, so keep-last keeps the newest of both
        again = f"latest {rules.keep_last} {RESUMED}"
        for unit in resumed[-rules.keep_last :]:
            if not unit.reasons:
                unit.reasons.append(again)
    if rules.keep_best and rules.metric:
        values = list(map(_METRIC, units))
        alone = not rules.keep_last and rules.keep_within is None
        # Ties go to the newer unit: it saw more training for the same score.
        if values.count(None) == count and alone:
            # no unit has a value and keep-best is the run's only rule: which is best is
            # unknown, so none is removed for it (beside keep-last or keep-within, those
            # rules say what goes, as the user asked)
            idle = f"no {rules.metric} value to tell the best (keep_best idle)"
            for unit in units:
                unit.reasons.append(idle)
        elif rules.keep_best == 1 and values and None not in values and isfinite(sum(values)):
            # the usual keep_best = 1, every unit scored, no NaN: the best value and its
            # last place, found in C
            best = min(values) if rules.mode != "max" else max(values)
            unit = units[len(values) - 1 - values[::-1].index(best)]
            unit.reasons.append(best_reason(rules.metric, unit))
        else:
            scored = [u for u in units if u.metric is not None]
            sign = 1.0 if rules.mode != "max" else -1.0
            # Plain tuples compare without a Python call per unit; nsmallest is
            # sorted()[:n] without the sort.
            order = heapq.nsmallest(
                rules.keep_best, [(sign * (u.metric or 0.0), -i) for i, u in enumerate(scored)]
            )
            for _score, negative_index in order:
                unit = scored[-negative_index]
                unit.reasons.append(best_reason(rules.metric, unit))
            if alone and len(scored) < count:
                # keep-best alone, some units unscored: nothing says those are worse than
                # the best, so none goes for it (as when no unit has a value)
                unranked = unranked_reason(rules.metric)
                for unit in units:
                    if unit.metric is None:
                        unit.reasons.append(unranked)
        if not alone and count and units[-1].live:
            # a live run's metric log lags its checkpoints (Lightning's CSVLogger writes
            # every 100 steps): a unit newer than every scored one may be the best yet
            # (a run that logged no value of it at all leaves keep_best idle, as above)
            after = max((i for i, v in enumerate(values) if v is not None), default=-1) + 1
            waiting = f"no {rules.metric} logged for it yet (live run)"
            for unit in units[after:] if after else ():
                if unit.metric is None and not unit.reasons:
                    unit.reasons.append(waiting)
    # Then, in each unit's reasons in this order: younger, live newest, trainer's best;
    # pinned goes first of all.
    if rules.keep_within is not None and count:
        keep_within = rules.keep_within
        horizon_ns = (now - keep_within) * 1e9
        if max(map(_MTIME, units)) > horizon_ns:  # else none is young enough
            within = f"younger than {format_age(keep_within)}"
            for unit in units:
                if unit.mtime_ns > horizon_ns:
                    unit.reasons.append(within)
                    unit.expires = unit.mtime_ns / 1e9 + keep_within
    if live:
        units[-1].reasons.append(LIVE_NEWEST)
        if resumed and resumed[-1] is not units[-1]:  # what the live session wrote last
            resumed[-1].reasons.append(LIVE_NEWEST)
    if any(map(_TRAINER_BEST, units)):
        for unit in units:
            if unit.trainer_best:
                unit.reasons.append(trainer_best_reason(unit))
    if pinned_among is not None:
        for index in pinned_among(units):
            units[index].reasons.insert(0, PINNED)
    else:
        for unit in units:
            if pinned(unit):
                unit.reasons.insert(0, PINNED)
    pool: list[Candidate] = []
    if has_rules:
        for unit in units:
            reasons = unit.reasons
            if reasons:
                unit.keep = True
            else:
                unit.keep = False
                reasons.append(KEPT_BY_NO_RULE)
                if unit.dead_after is not None:
                    reasons.append(dead_session_reason(unit.dead_after))
        return pool
    for unit in units:
        reasons = unit.reasons
        unit.keep = True
        if reasons:
            continue
        if budget_set:
            pool.append(unit)
        else:
            reasons.append(NO_RULE)
    return pool


RESUMED = "written after higher-numbered ones (resumed from an earlier checkpoint?)"
"""Why keep-last kept a unit of a run whose mtimes and numbers disagree (``resumed_session``)."""


def resumed_session(units: list[Candidate]) -> list[Candidate]:
    """The units (oldest first) that a session resumed from an earlier checkpoint wrote,
    when the mtimes say so: the numbered unit written last is not the highest-numbered
    (``last.ckpt``-like units aside), and these were written after every higher-numbered
    one.  A resumed training saves again from its starting point while a dead session's
    later checkpoints stay on disk; by number those look newest, and keep-last kept them
    and removed what a resume would continue from.  Empty when the newest by number is
    the one written last (every run that was not resumed from an earlier point), and in a
    bucket, where an object's time is when it was uploaded (a sync's order, a restore's
    copy), not when the training wrote it."""
    if not units or is_url(units[0].root):
        return []
    tail = units[-1]
    numbered_tail = not tail.is_last and (tail.step is not None or tail.epoch is not None)
    if numbered_tail and tail.mtime_ns >= max(map(_MTIME, units)):  # the usual run, in C
        return []
    numbered = [u for u in units if not u.is_last and (u.step is not None or u.epoch is not None)]
    if len(numbered) < 2:
        return []
    mtimes = list(map(_MTIME, numbered))
    newest = max(mtimes)
    written_last = len(mtimes) - 1 - mtimes[::-1].index(newest)
    if written_last == len(numbered) - 1:
        return []
    horizon = max(mtimes[written_last + 1 :])
    return [u for u in numbered[: written_last + 1] if u.mtime_ns > horizon]


def dead_session_reason(step: int) -> str:
    """Why a unit ordered before the others is not the current session's (``dead_after``)."""
    return (
        f"a dead session's: the training was resumed from an earlier checkpoint and its"
        f" current session is at step {step}"
    )


def trainer_best_reason(unit: Candidate) -> str:
    """Why a unit the trainer calls its best is kept: the HF Trainer's state names a
    ``checkpoint-N/`` folder, a Lightning ModelCheckpoint's a file by its monitor, and a
    file with no such state is so by its name."""
    if unit.best_monitor is not None:
        return lightning_best_reason(unit.best_monitor)
    return TRAINER_BEST if unit.is_dir else TRAINER_BEST_NAMED


def lightning_best_reason(monitor: str) -> str:
    """Why a unit a Lightning ModelCheckpoint's ``best_model_path`` names is kept."""
    return f"{TRAINER_BEST_PREFIX}_model_path (ModelCheckpoint monitoring {monitor})"


def unranked_reason(metric: str) -> str:
    """Why keep-best alone kept a unit it cannot rank: it has no value of ``metric``."""
    return f"no {metric} value to rank it (keep_best keeps it)"


def best_reason(metric: str, unit: Candidate) -> str:
    """Why keep-best kept ``unit``, naming the metric whose value was read: its
    val_/eval_ twin, when that is what was logged, with the asked one after it."""
    read_as = unit.metric_name
    if read_as is None:
        return f"best {metric} {unit.metric:.6g}"
    return f"best {read_as} {unit.metric:.6g} (for {metric})"


_MTIME = attrgetter("mtime_ns")
_METRIC = attrgetter("metric")
_TRAINER_BEST = attrgetter("trainer_best")


def apply_budget(pool: list[Candidate], budget: int, total_after_rules: int) -> int:
    """Remove the oldest unprotected units until the root fits; return bytes still over."""
    over = total_after_rules - budget
    for unit in sorted(pool, key=lambda u: u.mtime_ns):
        if over <= 0:
            unit.reasons.append("within budget")
            continue
        unit.keep = False
        unit.reasons.append(OVER_BUDGET)
        over -= unit.size
    return max(0, over)


def make_plan(
    db: sqlite_utils.Database,
    roots: Iterable[Path | str],
    policy: Policy | Mapping[str, Policy] | Callable[[str], Policy],
    now: float | None = None,
    pins: PinSource | Mapping[str, Iterable[str]] | None = None,
    *,
    pump_after: int | None = rowpump.PUMP_AFTER,
) -> Plan:
    """Decide every checkpoint under ``roots`` (absolute paths of indexed roots).

    ``policy`` is one policy for all roots, a mapping by root path, or a function of it.
    On an index of one root and at least ``pump_after`` artifacts, a helper process reads
    the rows from the other end of the table (``rowpump``); None never starts one.
    """
    now = time.time() if now is None else now
    conn = db.conn
    # made before this connection's snapshot starts, to tell a helper's from a later one
    probe = rowpump.probe_for(conn, after=pump_after) if pump_after is not None else None
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")  # one snapshot: folders and their files agree
    try:
        with collector_paused(kept=True):  # a million small objects, none cyclic
            return _make_plan(db, roots, policy, now, pins, probe)
    finally:
        if own_transaction and conn.in_transaction:
            conn.execute("COMMIT")
        if probe is not None:
            probe.close()


def _make_plan(
    db: sqlite_utils.Database,
    roots: Iterable[Path | str],
    policy: Policy | Mapping[str, Policy] | Callable[[str], Policy],
    now: float,
    pins: PinSource | Mapping[str, Iterable[str]] | None,
    probe: rowpump.Probe | None = None,
) -> Plan:
    plan = Plan(
        f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{uuid.uuid4().hex[:8]}",
        time.time(),
        now,
        [],
    )
    fs_by_dev: dict[int, FsTotals] = {}
    planned = [_planned_root(root_arg) for root_arg in roots]
    nesting: _Nesting | None = None  # read once a root is found in the index
    for root in planned:
        root_policy = _policy_for(policy, root)
        row = db.conn.execute("SELECT id FROM roots WHERE path = ?", (key(root),)).fetchone()
        if row is None:
            plan.warnings.append(f"not indexed: {root}")
            continue
        root_id = int(row[0])
        if nesting is None:
            nesting = _Nesting(db)
        owner = nesting.same_folder_owner(root)
        if owner is not None:
            plan.warnings.append(
                f"{display(root)}: the same folder as the indexed root {display(owner)}: "
                f"its files are planned under {display(owner)} only"
            )
            continue
        inner = nesting.inner(root)
        for inner_root, _rel in inner:
            plan.warnings.append(
                f"{display(root)}: holds the indexed root {display(inner_root)}: its files are "
                f"planned under {display(inner_root)} only, by its policy"
                + ("" if inner_root in planned else " (not in this plan)")
            )
        _warn_unread(db, root_id, root, plan.warnings)
        pump = _start_pump(db, probe, root_id)  # it starts up while the runs load
        runs = load_runs(db, root_id, root)
        folder_rows: list[FolderRow] = []
        by_run, total_row = _units_and_totals(
            db, pump, root_id, root, runs, root_policy, folder_rows, plan.warnings
        )
        if pump is not None and pump.taken:
            plan.helper_roots.append(root)
        if inner:
            _leave_inner(by_run, runs, inner)
        root_pins = _pins_for(
            root,
            pins,
            root_policy,
            nesting,
            lambda other: _policy_for(policy, other),
            plan.warnings,
        )
        pinned = _pinned_check(root_pins)
        pinned_among = _pins_among(root_pins)
        totals = RootTotals(root, root_policy.describe(), budget=root_policy.budget)
        pool: list[Candidate] = []
        for run_id, units in by_run.items():
            run = runs[run_id]
            rules = root_policy.for_run(run.path, run.framework)
            pool.extend(
                decide_run(
                    units,
                    rules,
                    now=now,
                    pinned=pinned,
                    protect_live_newest=root_policy.protect_live_newest,
                    budget_set=root_policy.budget is not None,
                    pinned_among=pinned_among,
                )
            )
            if rules.keep_best:
                unscored = sum(u.metric is None for u in units)
                alone = not rules.keep_last and rules.keep_within is None
                if unscored == len(units):
                    plan.warnings.append(
                        f"{run.path or '.'}: no {rules.metric} value for any checkpoint "
                        f"(keep_best idle{': all kept' if alone else ''})"
                    )
                elif unscored and alone:
                    plan.warnings.append(
                        f"{run.path or '.'}: some checkpoints have no {rules.metric} value "
                        "(keep_best keeps those)"
                    )
        totals.total_bytes = int(total_row[0]) - _inner_bytes(db, root_id, inner)
        has_links = bool(total_row[1])
        if has_links:
            targets = {id(u) for u in _keep_link_targets(db, root_id, root, by_run)}
            if targets:  # by identity: ``in`` on the list compared every field, pool x targets
                pool = [u for u in pool if id(u) not in targets]
        if root_policy.budget is not None:
            removed_by_rules = sum(u.size for units in by_run.values() for u in units if not u.keep)
            totals.over_budget_after = apply_budget(
                pool, root_policy.budget, totals.total_bytes - removed_by_rules
            )
            if totals.over_budget_after:
                plan.warnings.append(
                    f"{root}: still {totals.over_budget_after} bytes over budget; "
                    "everything left is protected"
                )
        removed: list[Candidate] = []
        for run_id, units in by_run.items():
            gone = [unit for unit in units if not unit.keep]
            removed += gone
            bytes_removed = sum([unit.size for unit in gone])
            run_totals = RunTotals(
                root,
                runs[run_id].path,
                len(units) - len(gone),
                len(gone),
                sum([unit.size for unit in units]) - bytes_removed,
                bytes_removed,
            )
            plan.runs.append(run_totals)
            plan.items.extend(units)
            totals.kept += run_totals.kept
            totals.removed += run_totals.removed
            totals.bytes_kept += run_totals.bytes_kept
            totals.bytes_removed += run_totals.bytes_removed
        attach_members(db, root_id, removed, folder_rows)
        del folder_rows
        if has_links:
            plan.links += _describe_links(db, root_id, root, removed, inner)
        plan.roots.append(totals)
        if not is_url(root):  # a bucket frees no disk here
            _account_fs(fs_by_dev, root, totals.bytes_removed, disk_freed(root, removed))
    plan.filesystems = list(fs_by_dev.values())
    return plan


_TOTAL_SQL = (
    "SELECT coalesce(sum(size), 0), count(*) FILTER (WHERE ftype = 'symlink') "
    "FROM {source} WHERE root_id = ?"
)
"""One pass for a root's bytes and whether it holds a link at all: without one, neither
link query of a plan needs to read the table again."""


def _start_pump(
    db: sqlite_utils.Database, probe: rowpump.Probe | None, root_id: int
) -> rowpump.RowPump | None:
    """A helper reading the root's row pass from its last rows, and its totals; None
    without a probe, when it cannot start, or when the index holds other roots (the pass
    then goes through the root's index, in another order than a block's)."""
    if probe is None or artifacts_source(db.conn) != STRAIGHT_THROUGH:
        return None
    try:
        return rowpump.RowPump(
            db.conn,
            probe,
            rows_query(db.conn) + " AND id BETWEEN ? AND ?",
            [_TOTAL_SQL.format(source=STRAIGHT_THROUGH)],
            root_id,
            shape="plan",
        )
    except (OSError, ValueError, RuntimeError):
        return None


def _units_and_totals(
    db: sqlite_utils.Database,
    pump: rowpump.RowPump | None,
    root_id: int,
    root: str,
    runs: dict[int, RunInfo],
    policy: Policy,
    folder_rows: list[FolderRow],
    warnings: list[str],
) -> tuple[dict[int, list[Candidate]], tuple[int, int]]:
    """The root's units by run, and its bytes and link count: the rows read here and by
    the helper when there is one (``rowpump``), else read here in one pass.  What could
    not be read in time is said in ``warnings``."""
    units_of = partial(
        candidates_for_root,
        db,
        root_id,
        root,
        runs=runs,
        metric=_run_metric(policy),
        folder_rows_out=folder_rows,
        reads_state=_may_remove(policy),
    )
    if pump is not None:
        with pump:
            said: list[str] = []
            try:
                by_run = units_of(blocks=pump.row_blocks(), warnings=said)
                (total_bytes, links), *_ = pump.ones()
                warnings += said
                return by_run, (int(total_bytes), int(links))
            except (ValueError, TypeError, IndexError, AttributeError):
                # the helper sent what is not such rows: start again, reading them here
                pump.taken = 0
                folder_rows.clear()
    by_run = units_of(warnings=warnings)
    total_bytes, links = db.conn.execute(
        _TOTAL_SQL.format(source=artifacts_source(db.conn)), (root_id,)
    ).fetchone()
    return by_run, (int(total_bytes), int(links))


def _keep_link_targets(
    db: sqlite_utils.Database, root_id: int, root: str, by_run: dict[int, list[Candidate]]
) -> list[Candidate]:
    """Keep every unit a kept checkpoint folder links into (a save that links its weights
    from an older checkpoint), and what those link into in turn; return them.  Removing
    one would leave the kept checkpoint without its bytes.  Targets are read from the link
    text; one that leads out of the root, or through another link, protects nothing more."""
    units = [u for run_units in by_run.values() for u in run_units]
    # removed by a rule, or kept only until the budget pass decides (no reason yet)
    removable = {u.path: u for u in units if not u.keep or not u.reasons}
    folders = {u.path: u for u in units if u.is_dir}
    if not removable or not folders:
        return []
    links: dict[str, list[str]] = {}  # holding unit's path -> the targets of its links
    base = root.rstrip("/") + "/"
    for path_blob, target in db.conn.execute(
        "SELECT path, link_target FROM artifacts WHERE root_id = ? AND ftype = 'symlink'"
        " AND link_target IS NOT NULL",
        (root_id,),
    ):
        path = bytes(path_blob).decode("utf-8", "surrogateescape")  # as candidates read it
        folder = path.rpartition("/")[0]
        while folder and folder not in folders:
            folder = folder.rpartition("/")[0]
        if folder:
            where = os.path.normpath(os.path.join(base, os.path.dirname(path), str(target)))
            if where.startswith(base):
                links.setdefault(folder, []).append(where[len(base) :])
    holders = [u for u in folders.values() if u.keep and u.path in links]
    protected: list[Candidate] = []
    while holders and removable:
        holder = holders.pop()
        for rel in links.get(holder.path, ()):
            cut = len(rel)
            while cut > 0 and rel[:cut] not in removable:
                cut = rel.rfind("/", 0, cut)
            unit = removable.get(rel[:cut]) if cut > 0 else None
            if unit is None or unit is holder:
                continue
            del removable[unit.path]
            unit.keep = True
            unit.reasons = [r for r in unit.reasons if r != KEPT_BY_NO_RULE]
            unit.reasons.append(f"a link in {holder.path} points into it")
            protected.append(unit)
            if unit.path in links:
                holders.append(unit)
    return protected


def _describe_links(
    db: sqlite_utils.Database,
    root_id: int,
    root: str,
    removals: list[Candidate],
    inner: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """One line per checkpoint-named symlink: what it points at, and whether this plan
    removes its target (the link would then dangle).  ``removals`` are the root's; links
    inside an ``inner`` root are that root's to describe."""
    links = checkpoint_links(db, root_id)
    if inner:
        links = [link for link in links if _inner_of(link[1], inner) is None]
    if not links:
        return []  # the usual case: no set of every removal's path to build
    removed = {os.path.join(root, u.path) for u in removals}
    lines = []
    for _run_id, rel, target in links:
        where = os.path.normpath(os.path.join(root, os.path.dirname(rel), target or ""))
        note = f"{rel} is a symlink to {target!r}, not a checkpoint of its own (never counted)"
        if target is None:
            note = f"{rel} is a symlink (target unknown), not a checkpoint of its own"
        elif where in removed:
            note += "; this plan removes its target, so it will dangle"
        elif not where.startswith(root.rstrip("/") + "/"):
            note += "; it points outside the root"
        lines.append(note)
    return lines


def _planned_root(root_arg: Path | str) -> str:
    """A root as the index stores it: a bucket URL without a trailing slash, else an
    absolute path."""
    root = os.fspath(root_arg)
    return root.rstrip("/") if is_url(root) else os.path.abspath(root)


NESTED_KEPT = "holds the indexed root {}"
"""The reason a checkpoint folder that holds another indexed root is kept: it is not
this root's alone to remove."""


class _Nesting:
    """Which indexed roots lie inside which, and which are one folder under two names.

    Each file is planned once, under the innermost indexed root that holds it: an outer
    root's plan leaves out what an inner root holds (its policy and trash govern those
    files), and of two roots that are the same folder (a link to it, or a path through
    one) only the one named by its real path (else the first by path) is planned.  Pins
    are the exception: a file's pins are those of every root that holds it.  Compared by
    real path, so a root reached through a link nests where it leads; buckets by URL."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        found = [unkey(bytes(path)) for (path,) in db.conn.execute("SELECT path FROM roots")]
        self.real = {root: _real_or_url(root) for root in found}
        # a root named by its own real path first, then by path: the one that plans a
        # folder indexed under two names
        self.roots = sorted(found, key=lambda root: (self.real[root] != root, root))

    def same_folder_owner(self, root: str) -> str | None:
        """The indexed root that is the same folder as ``root`` and plans it (the one
        named by its real path, else the first by path), when that is another root; None
        otherwise."""
        real = self.real.get(root, _real_or_url(root))
        for other in self.roots:
            if self.real[other] == real and is_url(other) == is_url(root):
                return None if other == root else other
        return None

    def inner(self, root: str) -> list[tuple[str, str]]:
        """(inner root, its path relative to ``root``) of every indexed root strictly
        inside ``root``, one of each folder (the one that plans it)."""
        real = self.real.get(root, _real_or_url(root))
        base = real.rstrip("/") + "/"
        found: dict[str, tuple[str, str]] = {}
        for other in self.roots:
            there = self.real[other]
            if is_url(other) != is_url(root) or not there.startswith(base):
                continue
            rel = there[len(base) :].strip("/")
            if rel and rel not in found:
                found[rel] = (other, rel)
        return list(found.values())

    def related(self, root: str) -> list[tuple[str, Callable[[str], str | None]]]:
        """Every other indexed root that holds files of ``root`` (around it, inside it,
        or the same folder), with how a path of ``root`` reads in it."""
        real = self.real.get(root, _real_or_url(root))
        base = real.rstrip("/") + "/"
        found: list[tuple[str, Callable[[str], str | None]]] = []
        for other in self.roots:
            if other == root or is_url(other) != is_url(root):
                continue
            there = self.real[other]
            around = there.rstrip("/") + "/"
            if there == real:
                found.append((other, _same_path))
            elif real.startswith(around):
                found.append((other, functools.partial(_below, real[len(around) :])))
            elif there.startswith(base):
                found.append((other, functools.partial(_inside, there[len(base) :])))
        return found


def roots_sharing_files(db: sqlite_utils.Database, root: str) -> list[str]:
    """Every other indexed root that holds files of ``root`` (around it, inside it, or the
    same folder or prefix): a change ``root`` makes is theirs too."""
    return [other for other, _ in _Nesting(db).related(_planned_root(root))]


def _same_path(path: str) -> str | None:
    return path


def _below(prefix: str, path: str) -> str | None:
    """A path of a root at ``prefix`` in the root around it."""
    return f"{prefix}/{path}"


def _inside(rel: str, path: str) -> str | None:
    """A path in the root at ``rel`` inside this one, or None when not inside it."""
    return path[len(rel) + 1 :] if path.startswith(rel + "/") else None


def _real_or_url(root: str) -> str:
    if is_url(root):
        return root.rstrip("/")
    return os.path.realpath(root)


def _inner_of(path: str, inner: Sequence[tuple[str, str]]) -> str | None:
    """The inner root that holds ``path`` (root-relative), or None."""
    for inner_root, rel in inner:
        if path == rel or path.startswith(rel + "/"):
            return inner_root
    return None


def _leave_inner(
    by_run: dict[int, list[Candidate]],
    runs: Mapping[int, RunInfo],
    inner: Sequence[tuple[str, str]],
) -> None:
    """Take out of ``by_run`` (in place) every unit an inner root holds: that root plans
    it.  A checkpoint folder that holds an inner root stays, kept (``NESTED_KEPT``).  Only
    the runs at or above an inner root are looked through unit by unit."""
    for run_id in list(by_run):
        run_path = runs[run_id].path
        if _inner_of(run_path, inner) is not None:
            del by_run[run_id]
            continue
        if not any(run_path == "" or rel.startswith(run_path + "/") for _, rel in inner):
            continue
        units = []
        for unit in by_run[run_id]:
            if _inner_of(unit.path, inner) is not None:
                continue
            if unit.is_dir:
                held = [r for r, rel in inner if rel.startswith(unit.path + "/")]
                if held:
                    unit.reasons.append(NESTED_KEPT.format(display(held[0])))
            units.append(unit)
        if units:
            by_run[run_id] = units
        else:
            del by_run[run_id]


def _inner_bytes(db: sqlite_utils.Database, root_id: int, inner: Sequence[tuple[str, str]]) -> int:
    """The bytes the root's index holds inside its inner roots (counted under those)."""
    rels = [rel for _, rel in inner]
    total = 0
    for rel in rels:
        if any(rel.startswith(other + "/") for other in rels):
            continue  # inside another inner root: counted with it
        low, high = prefix_range(key(rel))
        (size,) = db.conn.execute(
            f"SELECT coalesce(sum(size), 0) FROM {artifacts_source(db.conn)} "
            "WHERE root_id = ? AND path >= ? AND path < ?",
            (root_id, low, high),
        ).fetchone()
        total += int(size)
    return total


def _policy_for(
    policy: Policy | Mapping[str, Policy] | Callable[[str], Policy], root: str
) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        return policy.get(root, Policy())
    return policy(root)


def _run_metric(policy: Policy) -> Callable[[RunInfo], str | None]:
    def metric(run: RunInfo) -> str | None:
        return policy.for_run(run.path, run.framework).metric

    return metric


def _may_remove(policy: Policy) -> Callable[[RunInfo, int], bool]:
    """Whether ``policy`` may remove any of a run's ``count`` units (a budget may; no rule
    does not; keep-last alone not when it keeps them all): only then is what a trainer
    saved of its best worth reading.  A plan with no policy reads none."""
    if policy.budget is not None:
        return lambda run, count: True

    def may(run: RunInfo, count: int) -> bool:
        rules = policy.for_run(run.path, run.framework)
        return rules.any_rule() and not (rules.keep_last and count <= rules.keep_last)

    return may


def _pinned_check(pins: Pins) -> Callable[[Candidate], bool]:
    if not pins:
        return lambda unit: False
    if pins.others:  # roots that nest, some pinning: each unit asked in full
        own = _pinned_check(_own_pins(pins))
        return lambda unit: own(unit) or pins._others_pin(unit.path, holders=True)
    exact, globs, folder_pinned = pins.exact, pins.globs, pins._folder_pinned
    holders = pins.holders
    folders = pins._folders
    fullmatch = globs.regex.fullmatch if globs is not None else None
    needles = (globs.needles if globs is not None else None) or ("",)
    bounded = globs.bounded if globs is not None else ()

    def pinned(unit: Candidate) -> bool:
        """``pins.covers(unit.path)``, inlined: it runs once per checkpoint.  The globs'
        literals come first (a substring test costs a fraction of the regex), then the
        folder's cached answer."""
        path = unit.path
        if path in exact or path in holders:
            return True
        if fullmatch is not None:
            for needle in needles:
                if needle in path:
                    if fullmatch(path) is not None:
                        return True
                    break
        if bounded and any(n in path and m.fullmatch(path) for n, m in bounded):
            return True
        cut = path.rfind("/")
        if cut <= 0:
            return False
        folder = path[:cut]
        known = folders.get(folder)
        return folder_pinned(folder) if known is None else known

    return pinned


def _pins_among(pins: Pins) -> Callable[[list[Candidate]], list[int]]:
    """Which units of one run are pinned (their indices, in order): what ``_pinned_check``
    says of each, asked of a whole run.  Every path of the run is looked through once, in
    C, for what could pin one (a glob's literal, an exact pin as the path or a folder
    above it); a unit is checked alone only when its run holds such a thing."""
    if not pins:
        return lambda units: []
    if pins.others:
        check = _pinned_check(pins)
        return lambda units: [index for index, unit in enumerate(units) if check(unit)]
    exact, globs = pins.exact, pins.globs
    needles = (globs.needles if globs is not None else None) or ("",)
    few = len(exact) <= _FEW_EXACT_PINS
    marks = [("\0" + e + "/", "\0" + e + "\0") for e in exact] if few else []
    marks += [("\0" + h + "\0", "\0" + h + "\0") for h in pins.holders] if few else []
    pinned_or_holding = exact | pins.holders

    def among(units: list[Candidate]) -> list[int]:
        paths = list(map(_PATH, units))
        joined = "\0" + "\0".join(paths) + "\0"  # no path holds a NUL
        maybe = globs is not None and any(needle in joined for needle in needles)
        if not maybe and exact:
            if few:
                maybe = any(inside in joined or whole in joined for inside, whole in marks)
            else:
                folders = {path[:cut] for path in paths if (cut := path.rfind("/")) > 0}
                maybe = not pinned_or_holding.isdisjoint(paths) or any(
                    map(pins._folder_pinned, folders)
                )
        if not maybe:
            return []
        check = _pinned_check(pins)
        return [index for index, unit in enumerate(units) if check(unit)]

    return among


_FEW_EXACT_PINS = 32
"""Up to this many exact pins are looked for one by one in a run's joined paths; more are
looked up by each folder of the run."""
_PATH = attrgetter("path")


def _warn_unread(db: sqlite_utils.Database, root_id: int, root: str, warnings: list[str]) -> None:
    """Say what the scans of ``root`` could not read: checkpoints there are in no plan, kept
    or removed (a run whose checkpoint folder cannot be listed was left out unsaid)."""
    from store.index.query import unreadable_places

    places = (unreadable_places(db.conn, root_id) or {}).get(root_id, [])
    if places:
        first = places[0]
        more = f" and {len(places) - 1} more" if len(places) > 1 else ""
        warnings.append(
            f"{display(root)}: {display(first.path) or '.'}{more} could not be read "
            f"({first.reason}): what they hold is in no plan"
        )


def _account_fs(fs_by_dev: dict[int, FsTotals], root: str, freed: int, on_disk: int | None) -> None:
    """Add a root's removals to its filesystem's totals: ``freed`` bytes of files, which
    give back ``on_disk`` bytes once purged (None: not known, nor is the free space after)."""
    try:
        dev = os.stat(root).st_dev
        vfs = os.statvfs(root)
        free: int | None = vfs.f_bavail * vfs.f_frsize
    except OSError:
        dev, free = -1, None
    fs = fs_by_dev.get(dev)
    if fs is None:
        fs = fs_by_dev[dev] = FsTotals(dev, [], free, free)
    fs.roots.append(root)
    fs.bytes_freed += freed
    if fs.free_after_purge is not None:
        fs.free_after_purge = None if on_disk is None else fs.free_after_purge + on_disk


DISK_FREED_SECONDS = 0.5
"""Time a plan spends measuring what its removals take on disk, per root."""


def disk_freed(root: str, units: Iterable[Candidate]) -> int | None:
    """What purging ``units`` (removed files and checkpoint folders of ``root``) gives back
    to the filesystem, measured now with an lstat per file: its blocks (``st_blocks *
    512``), not its size, so a sparse 1 TiB checkpoint frees what it takes, maybe nothing;
    a file hard-linked from elsewhere frees nothing.  None when a file cannot be measured
    (gone since the scan, not readable) or measuring takes over ``DISK_FREED_SECONDS``
    (some 300,000 files; the plan must not wait on it): never a guess."""
    base = os.fsencode(root)
    inodes: dict[tuple[int, int], list[int]] = {}  # (dev, ino) -> [blocks, links, met]
    deadline = time.monotonic() + DISK_FREED_SECONDS
    measured = 0
    for unit in units:
        for rel in [member.path for member in unit.members] if unit.is_dir else [unit.path]:
            measured += 1
            if not measured % 1024 and time.monotonic() > deadline:
                return None
            try:
                st = os.lstat(base + b"/" + os.fsencode(rel))
            except OSError:
                return None
            found = inodes.setdefault((st.st_dev, st.st_ino), [st.st_blocks * 512, st.st_nlink, 0])
            found[2] += 1
    return sum(blocks for blocks, links, met in inodes.values() if met >= links)


GROUPED_AFTER = 3
"""More runs than this with the same warning share one line (``plan.warnings`` lists each)."""


def grouped_warnings(warnings: Sequence[str]) -> list[str]:
    """The plan's warnings, those that differ only in the run they name (``run: what``)
    as one line naming the first few: 6,000 runs without a metric are one warning."""
    by_text: dict[str, list[str]] = {}
    for warning in warnings:
        where, colon, what = warning.partition(": ")
        by_text.setdefault(what if colon else warning, []).append(where if colon else "")
    lines = []
    for what, wheres in by_text.items():
        if len(wheres) <= GROUPED_AFTER or "" in wheres:
            lines += [f"{where}: {what}" if where else what for where in wheres]
            continue
        shown = ", ".join(wheres[:GROUPED_AFTER])
        lines.append(f"{shown} and {len(wheres) - GROUPED_AFTER} more: {what}")
    return lines
