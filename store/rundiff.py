"""Glue from the index to the diff engines: run sides, run diffs and file versions.

``store.diff`` compares plain data and never touches the index; this module reads a run's
params, metrics and artifact hashes from SQLite, its package list from the environment
files it holds (bounded reads of regular files only), and lists every version of one
run-relative file across runs, plus the earlier hashes of files overwritten in place.
A run of this machine is checked against its disk first (``store.diff.ondisk``): the
index may be behind it, and a diff must compare what is there now.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import sqlite_utils

from store import paths
from store.diff import (
    RunDiff,
    RunSide,
    StaleFile,
    diff_runs,
    metric_direction,
    parse_conda_env,
    parse_requirements,
)
from store.diff._io import DiffError, FileRef, read_capped
from store.diff.checkpoints import Folder, summarize_checkpoints
from store.diff.ondisk import Indexed, Moved, Rehash, disk_state
from store.frameworks.model import CUT_PARAMS, REPEATED_KEYS, UNREAD_PARTS
from store.index.query import RunRow, iso, list_runs

MAX_ENV_BYTES = 1 << 20
"""Bytes read from one environment file; a requirements list is never bigger."""
MAX_ENV_FILES = 20
MAX_CONFIG_COMPARE = 4 << 20
"""Changed configs up to this size are parsed to tell a reordering from a real change."""
MAX_CONFIG_FILES = 200
"""Changed config files compared by value in one run diff."""
_REQUIREMENTS = re.compile(r"^requirements([-_.][\w.-]*)?\.txt$", re.I)
_CONDA = frozenset({"conda.yaml", "conda.yml", "environment.yml", "environment.yaml"})

Side = Literal["a", "b"]
Reader = Callable[[str, int], tuple[bytes, bool]]
"""Reads at most N bytes of a run's file (and whether it holds more); raises DiffError.
Local runs read the disk; a remote host's runs read over its transport."""


def relative_key(run: RunRow, key: bytes) -> bytes:
    """``key`` (relative to the root) made relative to the run folder."""
    if not run.path:
        return key
    prefix = run.path + b"/"
    return key[len(prefix) :] if key.startswith(prefix) else key


def _env_parser(name: str) -> str | None:
    lower = name.lower()
    if _REQUIREMENTS.match(lower):
        return "requirements"
    if lower in _CONDA:
        return "conda"
    return None


def _read_env(
    run: RunRow,
    found: list[tuple[bytes, str]],
    warnings: list[str],
    read: Reader = read_capped,
    names: _Names | None = None,
    unread: set[str] | None = None,
) -> dict[str, str]:
    """Packages from the run's environment files; shallower files win on conflicts.  A
    file not read whole adds "env" to ``unread``."""
    packages: dict[str, str] = {}
    ordered = sorted(found, key=lambda item: (-item[0].count(b"/"), item[0]))
    if len(ordered) > MAX_ENV_FILES:  # its packages are known in part: never "unchanged"
        warnings.append(
            f"{run.name}: {len(ordered)} environment files; the {MAX_ENV_FILES} shallowest "
            f"read, {len(ordered) - MAX_ENV_FILES} not"
        )
        if unread is not None:
            unread.add("env")
    for key, parser in ordered[-MAX_ENV_FILES:]:
        full = run.root + b"/" + key
        shown = paths.display(names.shown(key) if names else relative_key(run, key))
        try:
            data, capped = read(os.fsdecode(full), MAX_ENV_BYTES)
        except DiffError as exc:
            warnings.append(f"{run.name}: {shown}: {exc}")
            if unread is not None:
                unread.add("env")
            continue
        if capped:
            warnings.append(f"{run.name}: {shown}: only the first {MAX_ENV_BYTES} bytes read")
            if unread is not None:
                unread.add("env")
        text = data.decode("utf-8", "surrogateescape")
        try:
            parsed = parse_requirements(text) if parser == "requirements" else parse_conda_env(text)
        except DiffError as exc:
            warnings.append(f"{run.name}: {shown}: {exc}")
            if unread is not None:
                unread.add("env")
            continue
        packages.update(parsed)
    return packages


def indexed_files(db: sqlite_utils.Database, run: RunRow) -> list[Indexed]:
    """The run's files as the index recorded them, by path."""
    return [
        Indexed(
            bytes(key),
            int(size),
            int(mtime_ns),
            int(inode),
            str(ftype),
            target,
            digest if state == "done" else None,
        )
        for key, size, mtime_ns, inode, digest, state, ftype, target in db.conn.execute(
            "SELECT path, size, mtime_ns, inode, hash, hash_state, ftype, link_target"
            " FROM artifacts WHERE run_id = ? ORDER BY path",
            [run.id],
        )
    ]


def _as_indexed(rows: list[Indexed]) -> dict[bytes, tuple[int, str | None]]:
    return {
        r.key: (r.size, f"symlink:{r.target or ''}" if r.ftype == "symlink" else r.digest)
        for r in rows
    }


def run_side(
    db: sqlite_utils.Database,
    run: RunRow,
    warnings: list[str] | None = None,
    read: Reader = read_capped,
) -> RunSide:
    """What ``store.diff.diff_runs`` needs about one run, as the index holds it, and its
    env files.

    Artifacts are (path relative to the run folder, size, hash); a file not hashed yet has
    no hash, so the engine never calls it unchanged on its size alone.  A symlink compares
    by its target.  Problems (unreadable env files, pending hashes) go to ``warnings``.
    A logged model's files are named ``models/<name>/...`` (see ``_Names``).
    """
    return _indexed_side(db, run, warnings if warnings is not None else [], read)[0]


def _indexed_side(
    db: sqlite_utils.Database, run: RunRow, notes: list[str], read: Reader
) -> tuple[RunSide, dict[str, str]]:
    """``run_side`` and its ``RunDiff.sources``."""
    rows = indexed_files(db, run)
    _note_pending(run, sum(1 for r in rows if r.ftype != "symlink" and r.digest is None), notes)
    names = _Names(run, [r.key for r in rows], read, notes)
    unlisted = _unlisted_in_index(db, run, names)
    return _side(run, _as_indexed(rows), notes, read, names, unlisted), names.sources()


def _unlisted_in_index(db: sqlite_utils.Database, run: RunRow, names: _Names) -> dict[str, str]:
    """The run's places its last scan could not list or examine (the index's
    ``unreadable`` rows at, above or below its folders, other runs' folders left out), as
    ``RunSide.unlisted``."""
    from store.index.query import UnreadableIndex, unreadable_places

    recorded = (unreadable_places(db.conn, run.root_id) or {}).get(run.root_id, [])
    if not recorded:
        return {}
    others = _other_run_folders(db, run)
    found: dict[str, str] = {}
    for place in UnreadableIndex(recorded).touching(_run_folders(run)):
        if any(paths.under(place.path, other) for other in others):
            continue
        what = "not listed" if place.kind == "folder" else "not examined"
        for shown in names.places(place.path):
            found.setdefault(shown, f"{what}: {place.reason}")
    return found


def _note_pending(run: RunRow, pending: int, notes: list[str]) -> None:
    if pending:
        notes.append(
            f"{run.name}: {pending} file(s) without a hash (not hashed yet, or skipped: "
            "`artlens ls` says why); those compare by size only and are never reported "
            "unchanged, unless both sides are the one file"
        )


def _side(
    run: RunRow,
    files: dict[bytes, tuple[int, str | None]],
    notes: list[str],
    read: Reader,
    names: _Names,
    unlisted: Mapping[str, str],
) -> RunSide:
    artifacts: list[tuple[str, int, str | None]] = []
    env_files: list[tuple[bytes, str]] = []
    for key in sorted(files):
        size, digest = files[key]
        artifacts.append((names.shown(key), size, digest))
        if digest is not None and digest.startswith("symlink:"):
            continue
        parser = _env_parser(paths.unkey(paths.name_of(key)))
        if parser is not None:
            env_files.append((key, parser))
    artifacts.sort(key=lambda item: paths.key(item[0]))
    parts = run.meta.get(UNREAD_PARTS)
    unread = {p for p in parts if p in ("params", "metrics")} if isinstance(parts, list) else set()
    env = _read_env(run, env_files, notes, read, names, unread)
    repeated = run.meta.get(REPEATED_KEYS)
    cut = run.meta.get(CUT_PARAMS)
    cut_count = cut.get("count") if isinstance(cut, dict) else None
    if isinstance(cut_count, int) and not isinstance(cut_count, bool) and cut_count > 0:
        unread.add("params")  # what only the other side holds may be among those cut
    else:
        cut_count = 0
    return RunSide(
        params=dict(run.params),
        metrics={k: v for k, v in run.metrics.items() if isinstance(v, dict)},
        env=env,
        artifacts=artifacts,
        unread=frozenset(unread),
        repeated=repeated if isinstance(repeated, dict) else {},
        name=run.name,
        params_cut=cut_count,
        params_cut_at_least=isinstance(cut, dict) and cut.get("at_least") is True,
        unlisted=dict(unlisted),
    )


# --- how a run's files are named in a diff -----------------------------------------------

MAX_EXTRA_FOLDERS = 100
"""Extra folders of one run (logged models) named in a diff; the rest keep their paths."""
MAX_MODEL_META = 256 * 1024
"""Bytes of a logged model's meta.yaml read for its name (as the MLflow reader reads it)."""
_MAX_NAME = 255


@dataclass(frozen=True)
class _Extra:
    """A folder of a run outside its own folder, as its framework names it."""

    folder: bytes
    """Its path relative to the root."""
    group: str
    name: str
    content: bytes
    """Its subfolder whose files are named without it (``artifacts``), or b''."""
    order: float
    """Folders of one run with the same name are numbered in this order (then by path)."""


ExtraNamer = Callable[[RunRow, bytes, Reader, list[str]], _Extra]
"""Names one extra folder of a run (the run, the folder's root key, a reader, notes)."""


def _valid_name(value: object) -> str | None:
    """A logged name usable as one path component, else None (hostile meta.yaml)."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_NAME:
        return None
    if "/" in value or value in (".", "..") or not value.isprintable():
        return None
    return value


def _mlflow_model(run: RunRow, folder: bytes, read: Reader, notes: list[str]) -> _Extra:
    """An MLflow 3 logged model (``<exp>/models/m-<id>/``): ``models/<name>`` from the
    ``name`` of its meta.yaml, files under ``artifacts/`` named without that folder."""
    from store.yamlsafe import YamlError, load_yaml

    meta_key = folder + b"/meta.yaml"
    why = ""
    meta: object = None
    try:
        data, capped = read(os.fsdecode(run.root + b"/" + meta_key), MAX_MODEL_META)
        if capped:
            why = f"larger than {MAX_MODEL_META} bytes"
        else:
            meta = load_yaml(data)
    except (DiffError, YamlError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    fields = meta if isinstance(meta, dict) else {}
    name = _valid_name(fields.get("name"))
    if name is None:
        base = paths.unkey(paths.name_of(folder))
        name = base
        if not why:
            why = "no usable name" if "name" in fields else "unnamed"
        notes.append(
            f"{run.name}: logged model {paths.display(folder)}: {why}; "
            f"compared as models/{paths.display(base)}"
        )
    created = fields.get("creation_timestamp")
    order = float(created) if isinstance(created, int) and not isinstance(created, bool) else 0.0
    return _Extra(folder, "models", name, b"artifacts", order if math.isfinite(order) else 0.0)


EXTRA_NAMERS: dict[str, ExtraNamer] = {"mlflow": _mlflow_model}
"""Frameworks whose runs' extra folders have a stable name; other frameworks' extra files
keep their path relative to the root."""


class _Names:
    """How one run's files are shown and paired in a diff: relative to the run folder, and
    the files of a folder outside it that its framework names (an MLflow logged model) as
    ``models/<name>/<path inside artifacts>``, so two runs' models pair by name rather
    than by their folders' random ids."""

    def __init__(self, run: RunRow, keys: Iterable[bytes], read: Reader, notes: list[str]):
        self.run = run
        self._shown: dict[bytes, str] = {}
        self._extras: dict[bytes, tuple[str, bytes] | None] = {}
        """Each extra folder -> the shown path of its files' folder and the subfolder
        named without it, or None when its files keep their paths from the root."""
        extras = _named_extras(run, read, notes)
        owned: dict[bytes, list[bytes]] = {extra.folder: [] for extra, _ in extras}
        taken: set[str] = set()
        for key in sorted(set(keys)):
            owner = _owner(key, [extra.folder for extra, _ in extras], run.path)
            if owner is None:
                taken.add(self._plain(key))
            else:
                owned[owner].append(key)
        for extra, prefix in extras:
            shown = {key: _inside(extra, prefix, key) for key in owned[extra.folder]}
            if len(set(shown.values())) < len(shown) or taken & set(shown.values()):
                notes.append(
                    f"{self.run.name}: logged model {paths.display(extra.folder)}: its files'"
                    f" names as {extra.group}/{paths.display(prefix)}/... clash with others;"
                    " compared by their paths from the root"
                )
                shown = {key: self._plain(key) for key in shown}
                self._extras[extra.folder] = None
            else:
                self._extras[extra.folder] = (f"{extra.group}/{prefix}", extra.content)
            taken.update(shown.values())
            self._shown.update(shown)

    def _plain(self, key: bytes) -> str:
        return self._shown.setdefault(key, paths.unkey(relative_key(self.run, key)))

    def shown(self, key: bytes) -> str:
        """The path a run diff shows and pairs ``key`` (relative to the root) by."""
        found = self._shown.get(key)
        return found if found is not None else paths.unkey(relative_key(self.run, key))

    def places(self, key: bytes) -> list[str]:
        """The shown paths that files at or below ``key`` (relative to the root) would have:
        ``""`` (every file) for the run folder or a folder above it, a logged model's
        ``models/<name>`` for its folder or one above it."""
        run_path = self.run.path
        if paths.under(run_path, key):
            return [""]
        if paths.under(key, run_path):
            return [paths.unkey(relative_key(self.run, key))]
        holding = [f for f in self._extras if paths.under(key, f)]
        if holding:
            folder = max(holding, key=len)
            named = self._extras[folder]
            if named is None:
                return [paths.unkey(key)]
            group, content = named
            inner = key[len(folder) + 1 :]
            if content and (inner == content or inner.startswith(content + b"/")):
                inner = inner[len(content) + 1 :]
            return [f"{group}/{paths.unkey(inner)}" if inner else group]
        below = [f for f in self._extras if paths.under(f, key)]
        found = [self.places(f)[0] for f in below]
        return sorted(set(found)) if found else [paths.unkey(key)]

    def sources(self) -> dict[str, str]:
        """Shown paths that are not the file's path in the run folder -> its root path."""
        return {
            shown: paths.unkey(key)
            for key, shown in self._shown.items()
            if paths.join_key(self.run.path, paths.key(shown)) != key
        }


def _extra_folders(run: RunRow) -> list[bytes]:
    """The run's extra paths outside its folder, as clean root keys (hostile meta)."""
    extra = run.meta.get("extra_paths")
    if not isinstance(extra, list):
        return []
    found: set[bytes] = set()
    for item in extra[:MAX_EXTRA_FOLDERS]:
        if not isinstance(item, str):
            continue
        key = paths.key(item).strip(b"/")
        parts = key.split(b"/")
        if not key or any(p in (b"", b".", b"..") or b"\0" in p for p in parts):
            continue
        if not paths.under(key, run.path):
            found.add(key)
    return sorted(found)


def _named_extras(run: RunRow, read: Reader, notes: list[str]) -> list[tuple[_Extra, str]]:
    """The run's extra folders its framework names, each with the name it is shown under;
    same-named folders are told apart as ``name~2``, ``name~3`` in the framework's order."""
    namer = EXTRA_NAMERS.get(run.framework or "")
    if namer is None:
        return []
    extras = sorted(
        (namer(run, folder, read, notes) for folder in _extra_folders(run)),
        key=lambda e: (e.group, e.name, e.order, e.folder),
    )
    taken = {(e.group, e.name) for e in extras}
    named: list[tuple[_Extra, str]] = []
    for index, extra in enumerate(extras):
        same = [e for e in extras[:index] if (e.group, e.name) == (extra.group, extra.name)]
        prefix = extra.name
        if same:
            number = 2
            while (extra.group, f"{extra.name}~{number}") in taken:
                number += 1
            prefix = f"{extra.name}~{number}"
            taken.add((extra.group, prefix))
            if len(same) == 1:
                notes.append(
                    f"{run.name}: more than one logged model named"
                    f" {paths.display(extra.name)!r}: compared as"
                    f" {extra.group}/{paths.display(extra.name)}, ~2, ~3... in the order"
                    " they were created"
                )
        named.append((extra, prefix))
    return named


def _owner(key: bytes, folders: list[bytes], run_folder: bytes) -> bytes | None:
    """The deepest extra folder holding ``key``, unless the run's own folder holds it."""
    if not folders or (run_folder and paths.under(key, run_folder)):
        return None
    holding = [f for f in folders if key.startswith(f + b"/")]
    return max(holding, key=len) if holding else None


def _inside(extra: _Extra, prefix: str, key: bytes) -> str:
    inner = key[len(extra.folder) + 1 :]
    if extra.content and inner.startswith(extra.content + b"/"):
        inner = inner[len(extra.content) + 1 :]
    return f"{extra.group}/{prefix}/{paths.unkey(inner)}"


def artifact_key(run: RunRow, sources: Mapping[str, str], path: str) -> bytes:
    """The root-relative key of the file a run diff shows as ``path`` for ``run``
    (``sources`` is that side's ``RunDiff.sources``)."""
    real = sources.get(path)
    return paths.key(real) if real is not None else paths.join_key(run.path, paths.key(path))


# --- the disk as it is now, for a run of this machine ------------------------------------


@dataclass
class _DiskSide:
    side: RunSide
    run: RunRow
    """The run with params, metrics and meta read again from its files when they moved on."""
    stale: list[StaleFile]
    sources: dict[str, str]
    incomplete: bool
    """Files may exist on disk that were not listed: the diff cannot be called equal."""


def _disk_side(
    db: sqlite_utils.Database, run: RunRow, label: Side, budget: Rehash
) -> tuple[_DiskSide, list[str]]:
    """One run as it is on disk now: the index's hashes where lstat agrees with them, the
    disk's where it does not; params and metrics read again when any of its files moved on
    (they were parsed from its files at index time).  Returns the side and its notes."""
    from store.scan import IGNORED_DIR_NAMES

    notes: list[str] = []
    rows = indexed_files(db, run)
    state = disk_state(
        run.root,
        _run_folders(run),
        rows,
        skip_folders=_other_run_folders(db, run),
        skip_paths=_index_files(db),
        skip_dir_names=IGNORED_DIR_NAMES,
        elsewhere=lambda keys: _owned_elsewhere(db, run, keys),
        budget=budget,
    )
    moved = state.moved + _summary_sources(db, run)
    drifted = {m.key for m in moved}
    fresh = run
    if moved and rows and not state.files:
        notes.append(f"{run.name}: its files are gone from disk; params and metrics as indexed")
    elif moved:
        fresh = _read_again(run)
        if (fresh.params, fresh.metrics) != (run.params, run.metrics):
            notes.append(f"{run.name}: params and metrics read again from its files")
    pending = sum(
        1 for r in rows if r.ftype != "symlink" and r.digest is None and r.key not in drifted
    )
    _note_pending(run, pending, notes)
    unhashed = [m for m in moved if m.unhashed is not None and m.key in state.files]
    if unhashed:
        notes.append(
            f"{run.name}: {len(unhashed)} file(s) changed since indexed not hashed again "
            f"({unhashed[0].unhashed}); those compare by size only and are never reported "
            "unchanged"
        )
    notes.extend(_first(state.incomplete, 5, f"{run.name}: not listed whole: "))
    names = _Names(
        fresh, [*(r.key for r in rows), *state.files, *(m.key for m in moved)], read_capped, notes
    )
    stale = [
        StaleFile(
            label,
            names.shown(m.key),
            m.change,
            m.indexed_size,
            m.disk_size,
            m.unhashed is None and m.change in ("modified", "new"),
            m.unhashed,
        )
        for m in moved
    ]
    unlisted: dict[str, str] = {}
    for key, why in sorted(state.unlisted.items()):
        for shown in names.places(key):
            unlisted.setdefault(shown, why)
    side = _side(fresh, state.files, notes, read_capped, names, unlisted)
    incomplete = bool(state.incomplete or state.unlisted)
    return _DiskSide(side, fresh, stale, names.sources(), incomplete), notes


def _run_folders(run: RunRow) -> list[bytes]:
    """The run's folder and its extra paths (an MLflow logged model), as root keys."""
    folders = [run.path]
    extra = run.meta.get("extra_paths")
    if isinstance(extra, list):
        folders += [paths.key(p).strip(b"/") for p in extra[:100] if isinstance(p, str) and p]
    return folders


def _other_run_folders(db: sqlite_utils.Database, run: RunRow) -> set[bytes]:
    """Folders of other runs inside this run's folder: their files are theirs."""
    if run.path:
        sql = "SELECT path FROM runs WHERE root_id = ? AND id != ? AND path > ? AND path < ?"
        args: list[object] = [run.root_id, run.id, run.path + b"/", run.path + b"0"]
    else:
        sql, args = "SELECT path FROM runs WHERE root_id = ? AND id != ?", [run.root_id, run.id]
    return {bytes(p) for (p,) in db.conn.execute(sql, args)}


def _owned_elsewhere(db: sqlite_utils.Database, run: RunRow, keys: list[bytes]) -> set[bytes]:
    """Which of ``keys`` the index holds for another run (or none): not this run's files."""
    found: set[bytes] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            bytes(p)
            for (p,) in db.conn.execute(
                f"SELECT path FROM artifacts WHERE root_id = ? AND path IN ({marks})"
                " AND (run_id IS NULL OR run_id != ?)",
                [run.root_id, *chunk, run.id],
            )
        )
    return found


def _index_files(db: sqlite_utils.Database) -> set[bytes]:
    """The index's own files (never indexed), as absolute paths."""
    from store.index.db import own_files

    return own_files(db)


def _summary_sources(db: sqlite_utils.Database, run: RunRow) -> list[Moved]:
    """Files outside the run's folders its params and metrics were read from that moved on
    since indexed: an MLflow run of the SQLite backend reads ``mlflow.db`` above its folder."""
    if run.framework != "mlflow":
        return []
    from store.frameworks.mlflow import DB_NAME, PSEUDO

    root_abs = run.root
    database: bytes | None = None
    pseudo = os.fsencode(PSEUDO)
    if pseudo in run.path and not os.path.isdir(root_abs + b"/" + run.path):
        database = run.path.split(pseudo, 1)[0]
    elif not _is_regular(root_abs + b"/" + paths.join_key(run.path, b"meta.yaml")):
        folder = run.path
        while True:
            candidate = paths.join_key(folder, os.fsencode(DB_NAME))
            if _is_regular(root_abs + b"/" + candidate):
                database = candidate
                break
            if not folder:
                break
            folder = paths.parent_key(folder)
    if database is None:
        return []
    moved: list[Moved] = []
    why = "the run's params and metrics are read from it: read again"
    for key in (database, database + b"-wal"):
        row = db.conn.execute(
            "SELECT size, mtime_ns, inode FROM artifacts WHERE root_id = ? AND path = ?",
            [run.root_id, key],
        ).fetchone()
        try:
            st = os.lstat(root_abs + b"/" + key)
        except OSError:
            if row is not None:
                moved.append(Moved(key, "vanished", int(row[0]), None, None))
            continue
        if row is None:
            moved.append(Moved(key, "new", None, st.st_size, why))
        elif (st.st_size, st.st_mtime_ns, st.st_ino) != (row[0], row[1], row[2]):
            moved.append(Moved(key, "modified", int(row[0]), st.st_size, why))
    return moved


def _is_regular(path: bytes) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read_again(run: RunRow) -> RunRow:
    """The run with params, metrics and meta as its files say now, in the shape the index
    stores them (``store.runs``: JSON of the reader's values)."""
    from pathlib import Path

    from store.frameworks import RunSpec, read_run

    extra = run.meta.get("extra_paths")
    run_key = run.meta.get("run_key")
    spec = RunSpec(
        path=os.fsdecode(run.path),
        framework=run.framework,
        name=run.name,
        experiment=run.experiment,
        extra_paths=tuple(p for p in extra if isinstance(p, str))
        if isinstance(extra, list)
        else (),
        run_key=run_key if isinstance(run_key, str) else None,
    )
    try:
        info = read_run(Path(os.fsdecode(run.root)), spec)
        params = json.loads(json.dumps(info.params, default=str))
        metrics = json.loads(json.dumps({n: vars(m) for n, m in info.metrics.items()}, default=str))
    except Exception as exc:  # a reader's bug: the index's values, and say so
        warning = f"could not read the run again: {type(exc).__name__}"
        return replace(run, meta={**run.meta, "warnings": [warning]})
    # what the reader says afresh replaces what it said at index time, absent or not
    kept = {k: v for k, v in run.meta.items() if k not in (UNREAD_PARTS, REPEATED_KEYS, CUT_PARAMS)}
    meta = {**kept, **info.meta}
    return replace(run, params=params, metrics=metrics, meta=meta)


def _hash_cap(notes: list[str]) -> int | None:
    from store.hashing import configured_max_bytes

    try:
        return configured_max_bytes()
    except ValueError as exc:
        notes.append(f"user config: {exc}; files changed since indexed hashed without a cap")
        return None


def stale_line(a: RunRow, b: RunRow, stale: list[StaleFile]) -> str | None:
    """One line saying the index is behind the disk for these runs, or None."""
    if not stale:
        return None
    counts = {
        change: n
        for change in ("modified", "new", "vanished", "unreadable")
        if (n := sum(1 for entry in stale if entry.change == change))
    }
    how = ", ".join(f"{n} {change}" for change, n in counts.items())
    sides = {entry.side for entry in stale}
    runs = " and ".join(
        f"{run.name} (#{run.id})" for run, side in ((a, "a"), (b, "b")) if side in sides
    )
    return (
        f"the index is stale for {runs}: {len(stale)} file(s) changed since indexed ({how}),"
        " compared as they are on disk now; run `artlens index` to update it"
    )


def diff_run_rows(
    db: sqlite_utils.Database, a: RunRow, b: RunRow, warnings: list[str] | None = None
) -> RunDiff:
    """Everything that differs between two indexed runs (``a`` is the old side), as their
    files are on disk now: a file changed since indexed is compared from disk and listed in
    ``stale`` (see ``store.diff.ondisk``).

    ``equal`` is False while a same-size file is unhashed on either side: unknown is not
    equal.  Those paths are listed in ``artifacts.unverified``.
    """
    return diff_sides(db, a, db, b, warnings)


def diff_sides(
    db_a: sqlite_utils.Database,
    a: RunRow,
    db_b: sqlite_utils.Database,
    b: RunRow,
    warnings: list[str] | None = None,
    read_a: Reader | None = None,
    read_b: Reader | None = None,
    *,
    folders: tuple[Folder, Folder] | None = None,
) -> RunDiff:
    """``diff_run_rows`` for runs of two indexes (another host's mirror), each side's
    files read with its own reader; ``folders`` (each run's folder on its root) lets the
    changed checkpoints be compared where the readers are not the local disk.  A side
    read from the local disk (no reader, no ``folders``) is checked against the disk."""
    notes = warnings if warnings is not None else []
    start = len(notes)
    side_notes: list[str] = []
    budget: Rehash | None = None
    stale: list[StaleFile] = []
    incomplete = False
    sides: list[RunSide] = []
    sources: list[dict[str, str]] = []
    runs: list[RunRow] = []
    labelled: list[tuple[Side, sqlite_utils.Database, RunRow, Reader | None]] = [
        ("a", db_a, a, read_a),
        ("b", db_b, b, read_b),
    ]
    for label, db, run, read in labelled:
        if read is None and folders is None:
            if budget is None:
                budget = Rehash(max_file_bytes=_hash_cap(side_notes))
            disk, found = _disk_side(db, run, label, budget)
            side_notes += found
            sides.append(disk.side)
            sources.append(disk.sources)
            runs.append(disk.run)
            stale += disk.stale
            incomplete = incomplete or disk.incomplete
        else:
            side, found_sources = _indexed_side(db, run, side_notes, read or read_capped)
            sides.append(side)
            sources.append(found_sources)
            runs.append(run)
    a, b = runs
    for run in (a, b):  # what each run's reader met (sources that disagree): never hidden
        own = run.meta.get("warnings")
        if isinstance(own, list):
            notes.extend(_first([w for w in own if isinstance(w, str)], 20, f"{run.name}: "))
    notes.extend(side_notes)
    result = diff_runs(sides[0], sides[1])
    notes.extend(result.unknown)
    notes.extend(result.ambiguous)
    notes.extend(result.nonfinite)
    result.stale = stale
    result.sources = (sources[0], sources[1])
    _settle_configs(a, b, result, notes, read_a or read_capped, read_b or read_capped)
    if folders is not None:
        result.artifacts.changed = summarize_checkpoints(
            result.artifacts.changed, *folders, files=_moved_files(result, a, b, folders)
        )
    elif read_a is None and read_b is None:  # tensors are compared only where both files are
        result.artifacts.changed = summarize_checkpoints(
            result.artifacts.changed,
            a.abs_path,
            b.abs_path,
            files=_moved_files(result, a, b, (a.root, b.root)),
        )
    elif result.artifacts.changed:
        notes.append(
            "files on another host: tensors not compared here "
            "(artlens diff HOST:/path HOST:/path compares two files)"
        )
    if read_a is None and read_b is None and folders is None:
        _one_file_both_sides(result, a, b)
    if result.artifacts.unverified or incomplete:
        result.equal = False
    line = stale_line(a, b, stale)
    if line is not None:
        notes.insert(start, line)
    notes[start:] = dict.fromkeys(notes[start:])  # a run against itself says each once
    return result


def _one_file_both_sides(result: RunDiff, a: RunRow, b: RunRow) -> None:
    """A file without a hash that both sides name and that is one file on disk (a run
    against itself, a hard link) is unchanged: the same inode holds the same bytes."""
    artifacts = result.artifacts
    still: list[str] = []
    for path in artifacts.unverified:
        try:
            st_a = os.lstat(a.root + b"/" + artifact_key(a, result.sources[0], path))
            st_b = os.lstat(b.root + b"/" + artifact_key(b, result.sources[1], path))
        except OSError:
            still.append(path)
            continue
        one = (st_a.st_dev, st_a.st_ino) == (st_b.st_dev, st_b.st_ino)
        if one and stat.S_ISREG(st_a.st_mode):
            artifacts.unchanged.append(path)
        else:
            still.append(path)
    artifacts.unverified = still


def _moved_files(
    result: RunDiff, a: RunRow, b: RunRow, roots: tuple[Folder, Folder]
) -> dict[str, tuple[FileRef, FileRef]]:
    """The two files of each changed artifact that is not at its shown path in its run
    folder (a logged model's), from each side's root (``roots``: a local root, or a
    run folder on any root, whose root is used)."""

    def ref(run: RunRow, where: Folder, sources: Mapping[str, str], path: str) -> FileRef:
        key = artifact_key(run, sources, path)
        if isinstance(where, tuple):
            return where[0], paths.unkey(key)
        return os.fsdecode(run.root + b"/" + key)

    src_a, src_b = result.sources
    return {
        c.path: (ref(a, roots[0], src_a, c.path), ref(b, roots[1], src_b, c.path))
        for c in result.artifacts.changed
        if c.path in src_a or c.path in src_b
    }


def _settle_configs(
    a: RunRow,
    b: RunRow,
    result: RunDiff,
    warnings: list[str],
    read_a: Reader = read_capped,
    read_b: Reader = read_capped,
) -> None:
    """Diff every changed config file by value: equal values (reordered keys, another
    layout) count as unchanged; real changes are listed key by key in ``result.configs``."""
    from store.diff.configs import ConfigDiff, config_format, diff_config_files

    artifacts = result.artifacts
    kept = []
    python_configs = _python_configs(a) | _python_configs(b)
    for change in artifacts.changed:
        fmt = config_format(change.path, python_configs)
        links = any((h or "").startswith("symlink:") for h in (change.old_hash, change.new_hash))
        if fmt is None or links:
            kept.append(change)
            continue
        if len(result.configs) >= MAX_CONFIG_FILES:
            warnings.append(f"more than {MAX_CONFIG_FILES} changed configs; the rest unparsed")
            kept.append(change)
            continue
        config = ConfigDiff(change.path, fmt)
        if max(change.old_size or 0, change.new_size or 0) > MAX_CONFIG_COMPARE:
            config.error = f"larger than {MAX_CONFIG_COMPARE} bytes, not compared by value"
        else:
            src_a, src_b = result.sources
            path_a = os.fsdecode(a.root + b"/" + artifact_key(a, src_a, change.path))
            path_b = os.fsdecode(b.root + b"/" + artifact_key(b, src_b, change.path))
            shown = paths.display(change.path)
            names = (f"{a.name}: {shown}", f"{b.name}: {shown}")
            try:
                found = diff_config_files(path_a, path_b, fmt, read_a, read_b, names)
            except DiffError as exc:
                config.error = str(exc)
            else:
                # a repeated key is said among the run's warnings, equal values or not
                warnings.extend(found.warnings)
                if found.equal:
                    artifacts.unchanged.append(change.path)
                    warnings.append(
                        f"{paths.display(change.path)}: same values, different layout or key order"
                    )
                    continue
                config.changes = found.changes
                config.notes = found.notes
                config.warnings = found.warnings
                config.more = found.more
        result.configs.append(config)
        kept.append(change)
    artifacts.changed = kept
    _unhashed_configs(a, b, result, warnings, python_configs, read_a, read_b)
    result.equal = not (
        result.params
        or result.unknown
        or result.env
        or changed_metrics(result)
        or any(m.ambiguous for m in result.metrics)
        or artifacts.added
        or artifacts.removed
        or artifacts.changed
        or artifacts.moved
    )


def _unhashed_configs(
    a: RunRow,
    b: RunRow,
    result: RunDiff,
    warnings: list[str],
    python_configs: frozenset[str],
    read_a: Reader,
    read_b: Reader,
) -> None:
    """Diff by value the config files of the same size that a side has no hash for yet
    (``unverified``): the configs section said "0 file(s) changed" while ``lr: 0.1``
    became ``lr: 0.2``, a file written a moment ago not being hashed yet.  Their artifact
    rows stay unverified (their bytes were not compared as a whole)."""
    from store.diff.configs import ConfigDiff, config_format, diff_config_files

    src_a, src_b = result.sources
    for path in result.artifacts.unverified:
        fmt = config_format(path, python_configs)
        if fmt is None:
            continue
        if len(result.configs) >= MAX_CONFIG_FILES:
            warnings.append(f"more than {MAX_CONFIG_FILES} changed configs; the rest unparsed")
            return
        path_a = os.fsdecode(a.root + b"/" + artifact_key(a, src_a, path))
        path_b = os.fsdecode(b.root + b"/" + artifact_key(b, src_b, path))
        shown = paths.display(path)
        names = (f"{a.name}: {shown}", f"{b.name}: {shown}")
        try:
            found = diff_config_files(path_a, path_b, fmt, read_a, read_b, names)
        except DiffError as exc:
            warnings.append(f"{shown}: not hashed yet, and not compared by value: {exc}")
            continue
        warnings.extend(found.warnings)
        if found.equal:
            continue
        config = ConfigDiff(path, fmt)
        config.changes, config.notes = found.changes, found.notes
        config.warnings, config.more = found.warnings, found.more
        result.configs.append(config)


def _python_configs(run: RunRow) -> frozenset[str]:
    """The run's Python config as its reader named it (MMEngine's ``<cfg>.py``), relative
    to the run folder."""
    rel = run.meta.get("config")
    if not isinstance(rel, str) or not rel.endswith(".py"):
        return frozenset()
    prefix = paths.display(run.path) + "/" if run.path else ""
    return frozenset({rel[len(prefix) :] if prefix and rel.startswith(prefix) else rel})


def changed_metrics(result: RunDiff) -> list[str]:
    """Names of metrics that changed: the last value, a side without it, or another part
    of the series (``MetricDelta.changed``)."""
    return [m.name for m in result.metrics if m.changed]


RunVerdict = Literal["equal", "different", "unknown"]

VERDICT_LINES: dict[RunVerdict, str] = {
    "equal": "runs are equal",
    "different": "runs differ",
    "unknown": "runs not known equal: nothing found to differ, but not all could be compared",
}
"""The headline of a run diff, CLI and explorer alike."""


def run_verdict(result: RunDiff) -> RunVerdict:
    """Equal, different, or unknown: not equal only because something could not be
    compared (a file not hashed, a folder or params not read whole, an ambiguous key), with
    nothing found to differ.  "Runs differ" would then be a guess."""
    if result.equal:
        return "equal"
    artifacts = result.artifacts
    different = (
        any(change.kind != "ambiguous" for change in result.params)
        or result.env
        or changed_metrics(result)
        or artifacts.added
        or artifacts.removed
        or artifacts.changed
        or artifacts.moved
    )
    return "different" if different else "unknown"


def run_diff_json(a: RunRow, b: RunRow, result: RunDiff, warnings: list[str]) -> dict[str, Any]:
    """The stable ``artlens diff --json`` shape of a run diff (documented in README)."""
    artifacts = result.artifacts

    def change(c: Any) -> dict[str, Any]:
        return {
            "path": paths.json_text(c.path),
            "old_size": c.old_size,
            "new_size": c.new_size,
            "old_hash": c.old_hash,
            "new_hash": c.new_hash,
            "tensors": c.tensors.to_json() if c.tensors is not None else None,
        }

    return {
        "kind": "runs",
        "equal": result.equal,
        "verdict": run_verdict(result),
        "a": _run_ref(a),
        "b": _run_ref(b),
        "params": [
            {"key": c.path, "change": c.kind, "old": c.old, "new": c.new} for c in result.params
        ],
        "metrics": [
            {
                "name": m.name,
                "old": m.old,
                "new": m.new,
                "delta": m.delta,
                "percent": m.percent,
                "direction": m.direction,
                "better": m.better,
                "ambiguous": m.ambiguous,
                "only": m.only,
                "series": [{"field": f, "old": o, "new": n} for f, o, n in m.series],
            }
            for m in result.metrics
        ],
        "configs": [
            {
                "path": paths.display(c.path),
                "format": c.format,
                "changes": [
                    {"key": ch.path, "change": ch.kind, "old": ch.old, "new": ch.new}
                    for ch in c.changes
                ],
                "more": c.more,
                "notes": c.notes,
                "error": c.error,
                "warnings": c.warnings,
            }
            for c in result.configs
        ],
        "env": [
            {"package": p.name, "change": p.kind, "old": p.old, "new": p.new} for p in result.env
        ],
        "unknown": list(result.unknown),
        "artifacts": {
            "added": [change(c) for c in artifacts.added],
            "removed": [change(c) for c in artifacts.removed],
            "changed": [change(c) for c in artifacts.changed],
            "moved": [
                {
                    "old_path": paths.json_text(m.old_path),
                    "new_path": paths.json_text(m.new_path),
                    "size": m.size,
                    "hash": m.hash,
                }
                for m in artifacts.moved
            ],
            "unchanged": len(artifacts.unchanged),
            "unverified": [paths.json_text(p) for p in artifacts.unverified],
            "unknown": [paths.json_text(p) for p in artifacts.unknown],
        },
        "stale": [
            {
                "side": f.side,
                "path": paths.json_text(f.path),
                "change": f.change,
                "indexed_size": f.indexed_size,
                "disk_size": f.disk_size,
                "hashed": f.hashed,
                "note": f.note,
            }
            for f in result.stale
        ],
        "warnings": list(warnings),
    }


def _run_ref(run: RunRow) -> dict[str, Any]:
    path, path_b64 = paths.json_path(run.abs_path)
    return {
        "id": run.id,
        "name": run.name,
        "path": path,
        "path_b64": path_b64,
        "framework": run.framework,
        "experiment": run.experiment,
    }


# --- versions of one file across runs ---------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of a run-relative file: the file in some run, or an overwritten hash."""

    run_id: int
    run_name: str
    experiment: str | None
    root_id: int
    key: bytes
    """The file's path relative to its root (a BLOB key)."""
    abs_path: bytes
    size: int
    mtime: float
    hash: str | None
    hash_state: str
    current: bool
    """False for an earlier content recorded in ``artifact_history`` (only its hash is left)."""
    metric: tuple[str, float] | None
    """The run's key metric (validation loss, else loss, else an accuracy) and last value."""

    @property
    def display_path(self) -> str:
        return paths.display(self.abs_path)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run": self.run_name,
            "experiment": self.experiment,
            "path": self.display_path,
            "size_bytes": self.size,
            "mtime": iso(self.mtime),
            "hash": self.hash,
            "hash_state": self.hash_state,
            "current": self.current,
            "metric": list(self.metric) if self.metric else None,
        }


_VALIDATION = re.compile(r"(^|[^a-z])(val|valid|validation|eval|test|dev)([^a-z]|$)", re.I)


def key_metric(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """The metric a person compares checkpoints by: val loss, loss, then a max-better one."""
    ranked: list[tuple[int, str, float]] = []
    for name, summary in metrics.items():
        if not isinstance(summary, dict):
            continue
        value = summary.get("last")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        direction = summary.get("direction") or metric_direction(name)
        is_val = bool(_VALIDATION.search(name.replace("/", " ").replace("_", " ")))
        lower = name.lower()
        if "loss" in lower:
            rank = 0 if is_val else 1
        elif direction == "max":
            rank = 2 if is_val else 3
        elif direction == "min":
            rank = 4
        else:
            continue
        ranked.append((rank, name, float(value)))
    if not ranked:
        return None
    _, name, value = min(ranked)
    return name, value


def versions(
    db: sqlite_utils.Database, relpath_within_run: str | bytes, experiment: str | None = None
) -> list[Version]:
    """The same run-relative file in every run (of ``experiment`` if given), oldest first.

    Each run's current file comes with its hash, size and mtime; earlier contents of a file
    overwritten in place come from ``artifact_history`` (hash and size only: the bytes are
    gone), so "what changed since the last checkpoint" is answerable at the hash level.
    """
    rel = paths.key(relpath_within_run).strip(b"/")
    if not rel:
        return []
    found: list[Version] = []
    for run in list_runs(db):
        if experiment is not None and run.experiment != experiment:
            continue
        key = paths.join_key(run.path, rel)
        metric = key_metric(run.metrics)
        abs_path = run.root + b"/" + key
        current = db.conn.execute(
            "SELECT size, mtime_ns, hash, hash_state, ftype, link_target FROM artifacts"
            " WHERE root_id = ? AND path = ? AND run_id = ?",
            [run.root_id, key, run.id],
        ).fetchone()
        current_hash: str | None = None
        if current is not None:
            size, mtime_ns, digest, state, ftype, target = current
            if ftype == "symlink":
                digest, state = f"symlink:{target or ''}", "symlink"
            current_hash = digest
            found.append(
                Version(
                    run.id, run.name, run.experiment, run.root_id, key, abs_path, int(size),
                    mtime_ns / 1e9, digest, state, True, metric,
                )
            )  # fmt: skip
        previous: str | None = None
        for digest, size, mtime_ns in db.conn.execute(
            "SELECT hash, size, mtime_ns FROM artifact_history WHERE root_id = ? AND path = ?"
            " ORDER BY mtime_ns, id",
            [run.root_id, key],
        ):
            # A touch without a change records the same hash again: not a new version.
            if digest is None or digest in (previous, current_hash):
                continue
            previous = digest
            found.append(
                Version(
                    run.id, run.name, run.experiment, run.root_id, key, abs_path, int(size),
                    mtime_ns / 1e9, digest, "history", False, metric,
                )
            )  # fmt: skip
    found.sort(key=lambda v: (v.mtime, v.run_id, v.current))
    return found


def file_exists(path: bytes) -> bool:
    """True when ``path`` is a regular file right now (lstat, no link following)."""
    import stat

    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _first(lines: list[str], most: int, prefix: str) -> list[str]:
    """At most ``most`` of ``lines``, each after ``prefix``, and how many were left out:
    a list cut short says so."""
    shown = [prefix + line for line in lines[:most]]
    if len(lines) > most:
        shown.append(f"{prefix}{len(lines) - most} more not shown")
    return shown
