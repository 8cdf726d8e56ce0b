"""The read side of the index, shared by the CLI and the TUI.

Every function takes a (usually read-only) database and returns small typed rows.  Paths
stay BLOB keys inside rows; ``display`` fields are safe to print.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store import paths
from store.errors import ArtlensError
from store.safeparse import load_json

if TYPE_CHECKING:
    import sqlite3

    import sqlite_utils

_TIME = "CASE WHEN typeof({0}) IN ('integer', 'real') THEN {0} END"
"""A time column as a number or NULL: an index written by something else may hold text."""
_STARTED, _LAST_WRITE = _TIME.format("runs.started"), _TIME.format("runs.last_write")
_RUN_COLUMNS = (
    "runs.id, runs.root_id, roots.path, runs.path, runs.name, runs.framework, runs.experiment,"
    f" {_STARTED}, {_LAST_WRITE}, runs.status, runs.params, runs.metrics, runs.meta,"
    " runs.size_bytes, runs.n_artifacts"
)


def iso(ts: float | None) -> str | None:
    """A unix time as ISO 8601 in UTC (the --json convention); None stays None, and so
    becomes what is no time (text, a bool, a year out of range) in an index something else
    wrote: unknown, never a traceback."""
    if ts is None or isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    try:
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return None


class DamagedRow(ArtlensError):
    """A row of the index that artlens did not write (it is a cache, rebuilt in minutes)."""


def path_bytes(value: object, column: str = "path") -> bytes:
    """A path column's value as the path's bytes.  artlens writes BLOBs; a TEXT value (an
    index another tool touched) is its UTF-8 bytes; anything else is a damaged row, said
    in one line rather than read as some other path (``bytes(5)`` is five zero bytes)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    what = {int: "integer", float: "real"}.get(type(value), "null")  # SQLite's typeof
    raise DamagedRow(damaged_row_message(f"{column} holds {what}"))


def damaged_row_message(what: str) -> str:
    return f"index database: damaged row ({what}) (rebuild: artlens index ROOT --db NEW)"


PATH_COLUMNS = (
    ("roots", "path"),
    ("runs", "path"),
    ("dirs", "path"),
    ("dirs", "parent"),
    ("artifacts", "path"),
    ("artifacts", "parent"),
    ("events", "path"),
)
"""The columns artlens writes as a path's raw bytes (BLOB; an event's may be null)."""


def damaged_path_column(conn: sqlite3.Connection) -> str | None:
    """``artifacts.path holds text`` for the first path column holding anything but a
    path's bytes, else None: why a command failed on an index something else wrote.
    Reads every row of those tables: for after a failure, never before each command."""
    for table, column in PATH_COLUMNS:
        allowed = "('blob', 'null')" if table == "events" else "('blob')"
        row = conn.execute(
            f"SELECT typeof({column}) FROM {table} WHERE typeof({column}) NOT IN {allowed} LIMIT 1"
        ).fetchone()
        if row is not None:
            return f"{table}.{column} holds {row[0]}"
    return None


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = load_json(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


UNREAD_KEY = "unreadable_places"
"""Meta key: how many places the run's size and file count leave out (its warnings name
them), so a table can mark the size without reading the warnings' text."""
UNREAD_PARTS_KEY = "unread_parts"
"""Meta key (``store.frameworks.model.UNREAD_PARTS``, not imported: that loads every
reader): the parts of a run a file not read whole leaves out, a list of ``READ_PARTS``."""
READ_PARTS = ("metrics", "params")
"""What a run's files are read for, each of which a file not read whole can leave out."""


def unread_parts_of(found: object) -> tuple[str, ...]:
    """The parts (``READ_PARTS``, in that order) a stored ``unread_parts`` list names."""
    if not isinstance(found, list):
        return ()
    return tuple(part for part in READ_PARTS if part in found)


@dataclass
class RunRow:
    id: int
    root_id: int
    root: bytes
    path: bytes
    name: str
    framework: str
    experiment: str | None
    started: float | None
    last_write: float | None
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    size_bytes: int = 0
    n_artifacts: int = 0
    flagged_files: int = 0
    """Files of the run judged dangerous or corrupt (filled by ``with_flags``)."""

    @property
    def abs_path(self) -> bytes:
        return self.root + b"/" + self.path if self.path else self.root

    @property
    def unread_places(self) -> int:
        """Places the run's size and file count leave out (folders its last scan could not
        read; its warnings name them)."""
        found = self.meta.get(UNREAD_KEY)
        return found if isinstance(found, int) and not isinstance(found, bool) and found > 0 else 0

    @property
    def unread_parts(self) -> tuple[str, ...]:
        """The parts of the run ("metrics", "params") its reader could not read whole: what
        it shows of them may leave values out, or be older than the file (its warnings say
        why)."""
        return unread_parts_of(self.meta.get(UNREAD_PARTS_KEY))

    @property
    def display_path(self) -> str:
        return paths.display(self.abs_path)

    def to_json(self) -> dict[str, Any]:
        """The stable --json shape (documented in README)."""
        path, path_b64 = paths.json_path(self.abs_path)
        return {
            "id": self.id,
            "name": self.name,
            "run_key": self.meta.get("run_key"),
            "path": path,
            "path_b64": path_b64,
            "root": paths.json_text(self.root),
            "framework": self.framework,
            "experiment": self.experiment,
            "status": self.status,
            "started": iso(self.started),
            "last_write": iso(self.last_write),
            "size_bytes": self.size_bytes,
            "n_artifacts": self.n_artifacts,
            "size_complete": not self.unread_places,
            "metrics_complete": "metrics" not in self.unread_parts,
            "params_complete": "params" not in self.unread_parts,
            "params": self.params,
            "metrics": self.metrics,
            "warnings": self.meta.get("warnings", []),
        }


def _run_from(row: tuple[Any, ...]) -> RunRow:
    return RunRow(
        id=row[0],
        root_id=row[1],
        root=path_bytes(row[2], "roots.path"),
        path=path_bytes(row[3], "runs.path"),
        name=row[4],
        framework=row[5],
        experiment=row[6],
        started=row[7],
        last_write=row[8],
        status=row[9],
        params=_json(row[10]),
        metrics=_json(row[11]),
        meta=_json(row[12]),
        size_bytes=row[13],
        n_artifacts=row[14],
    )


def list_runs(db: sqlite_utils.Database, *, root_id: int | None = None) -> list[RunRow]:
    sql = f"SELECT {_RUN_COLUMNS} FROM runs JOIN roots ON roots.id = runs.root_id"
    args: list[Any] = []
    if root_id is not None:
        sql += " WHERE runs.root_id = ?"
        args.append(root_id)
    sql += " ORDER BY coalesce(runs.started, runs.last_write, 0) DESC, runs.id"
    return [_run_from(r) for r in db.conn.execute(sql, args)]


def list_runs_where(
    db: sqlite_utils.Database, root_id: int, keep: Callable[[bytes], bool]
) -> list[RunRow]:
    """The root's runs whose folder ``keep`` accepts, read whole (their JSON parsed) only
    for those: a reader of a scan event below the root (``events.in_scope``) does not
    pay for the root's other runs."""
    conn = db.conn
    ids = [
        rid
        for rid, path in conn.execute("SELECT id, path FROM runs WHERE root_id = ?", [root_id])
        if keep(path_bytes(path, "runs.path"))
    ]
    found: list[RunRow] = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs JOIN roots ON roots.id = runs.root_id"
            f" WHERE runs.id IN ({', '.join('?' * len(part))})"
        )
        found += [_run_from(r) for r in conn.execute(sql, part)]
    return found


_encode_string = json.encoder.encode_basestring

_JSON_OBJECT = "CASE WHEN substr({0}, 1, 1) = '{{' AND substr({0}, -1, 1) = '}}' THEN {0} END"
"""The stored params or metrics when they are an object, as ``store.runs`` writes them
(``json.dumps`` of a dict).  Not parsed again: that would cost as much as the rest."""
_META_OK = (
    "json_valid(runs.meta) AND json_type(runs.meta) = 'object'"
    " AND coalesce(json_type(runs.meta, '$.run_key'), 'null') IN ('text', 'null')"
    " AND coalesce(json_type(runs.meta, '$.warnings'), 'array') = 'array'"
)
_RUN_JSON_COLUMNS = (
    "runs.id, runs.root_id, roots.path, runs.path, runs.name, runs.framework, runs.experiment,"
    f" {_STARTED}, {_LAST_WRITE}, runs.status, runs.size_bytes, runs.n_artifacts,"
    f" {_JSON_OBJECT.format('runs.params')}, {_JSON_OBJECT.format('runs.metrics')},"
    f" CASE WHEN {_META_OK} THEN json_extract(runs.meta, '$.run_key') END,"
    f" CASE WHEN {_META_OK} THEN coalesce(json_extract(runs.meta, '$.warnings'), '[]') END,"
    f" CASE WHEN {_META_OK} AND json_type(runs.meta, '$.{UNREAD_KEY}') = 'integer'"
    f" THEN json_extract(runs.meta, '$.{UNREAD_KEY}') END,"
    f" CASE WHEN {_META_OK} AND json_type(runs.meta, '$.{UNREAD_PARTS_KEY}') = 'array'"
    f" THEN json_extract(runs.meta, '$.{UNREAD_PARTS_KEY}') END"
)


_ISO = (
    "CASE WHEN typeof({0}) IN ('integer', 'real') AND {0} = CAST({0} AS INTEGER)"
    " AND {0} BETWEEN 0 AND 253402300799"
    " THEN strftime('%Y-%m-%dT%H:%M:%S+00:00', CAST({0} AS INTEGER), 'unixepoch') END"
)
"""``iso`` of a whole second from 1970 to 9999, by SQLite's C (what ``isoformat`` writes
there); any other time is NULL and ``iso`` formats it."""


def runs_json(conn: sqlite3.Connection) -> Iterator[str]:
    """Each run's ``RunRow.to_json`` object as JSON text, in ``list_runs`` order, fast.

    ``runs --json`` on a big index spent most of its time parsing the stored params and
    metrics only to print them again.  The index is our own cache and they are stored as
    ``json.dumps`` wrote them, so they are copied as they are when they look like an
    object; any other row (the ``'{}'`` default replaced by something else, a ``meta``
    of another shape, an odd type) is re-encoded through ``to_json``.  Times come
    formatted from SQLite, and each row is unpacked once into locals (no call per field
    but the C string encoder's).
    """
    sql = (
        f"SELECT {_RUN_JSON_COLUMNS}, {_ISO.format('runs.started')},"
        f" {_ISO.format('runs.last_write')} FROM runs JOIN roots ON roots.id = runs.root_id"
    )
    rows = conn.execute(sql).fetchall()
    # list_runs' ORDER BY, in Python: SQLite's sorter would copy every row's JSON
    rows.sort(key=lambda r: (-(r[7] if r[7] is not None else r[8] or 0), r[0]))
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    enc = _encode_string
    json_path = paths.json_path
    roots: dict[bytes, str] = {}
    for row in rows:
        (
            run_id,
            _root_id,
            root_blob,
            rel_blob,
            name,
            framework,
            experiment,
            started,
            last_write,
            status,
            size_bytes,
            n_artifacts,
            params,
            metrics,
            run_key,
            warnings,
            unread,
            parts_text,
            started_iso,
            last_iso,
        ) = row
        if (
            params is None
            or metrics is None
            or warnings is None
            or not (name is None or isinstance(name, str))
            or not (framework is None or isinstance(framework, str))
            or not (experiment is None or isinstance(experiment, str))
            or not (status is None or isinstance(status, str))
            or not (run_key is None or isinstance(run_key, str))
            or type(run_id) is not int
            or type(size_bytes) is not int
            or type(n_artifacts) is not int
        ):
            whole = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs JOIN roots ON roots.id = runs.root_id"
                " WHERE runs.id = ?",
                (run_id,),
            ).fetchone()
            yield dumps(_run_from(whole).to_json())
            continue
        root, rel = path_bytes(root_blob, "roots.path"), path_bytes(rel_blob, "runs.path")
        path, path_b64 = json_path(root + b"/" + rel if rel else root)
        root_text = roots.get(root)
        if root_text is None:
            root_text = roots[root] = _string(paths.json_text(root))
        parts = _unread_parts_text(parts_text)
        if started_iso is None and started is not None:
            started_iso = iso(started)
        if last_iso is None and last_write is not None:
            last_iso = iso(last_write)
        yield (
            f'{{"id": {run_id}, "name": {"null" if name is None else enc(name)},'
            f' "run_key": {"null" if run_key is None else enc(run_key)},'
            f' "path": {enc(path)}, "path_b64": {"null" if path_b64 is None else enc(path_b64)},'
            f' "root": {root_text},'
            f' "framework": {"null" if framework is None else enc(framework)},'
            f' "experiment": {"null" if experiment is None else enc(experiment)},'
            f' "status": {"null" if status is None else enc(status)},'
            f' "started": {"null" if started_iso is None else enc(started_iso)},'
            f' "last_write": {"null" if last_iso is None else enc(last_iso)},'
            f' "size_bytes": {size_bytes}, "n_artifacts": {n_artifacts},'
            f' "size_complete": {"false" if unread is not None and unread > 0 else "true"},'
            f' "metrics_complete": {"false" if "metrics" in parts else "true"},'
            f' "params_complete": {"false" if "params" in parts else "true"},'
            f' "params": {params}, "metrics": {metrics}, "warnings": {warnings}}}'
        )


def _unread_parts_text(text: str | None) -> tuple[str, ...]:
    """``unread_parts_of`` the stored list's JSON text (what ``to_json`` makes of the row)."""
    if text is None:
        return ()
    try:
        return unread_parts_of(load_json(text))
    except ValueError:  # as ``_json`` reads it: no meta
        return ()


def _string(text: str | None) -> str:
    """A JSON string (or null), as ``json.dumps(ensure_ascii=False)`` writes it."""
    return "null" if text is None else _encode_string(text)


FLAGGED_VERDICTS = ("dangerous", "corrupt")
"""Verdicts that earn a file (and its run) a warning marker in the UI."""


def flagged_counts(db: sqlite_utils.Database, run_ids: list[int] | None = None) -> dict[int, int]:
    """run id -> how many of its files are dangerous or corrupt (runs with none are absent)."""
    sql = (
        "SELECT run_id, count(*) FROM artifacts WHERE run_id IS NOT NULL"
        " AND verdict IN ('dangerous', 'corrupt')"
    )
    args: list[Any] = []
    if run_ids is not None:
        if not run_ids:
            return {}
        if len(run_ids) <= 500:
            sql += f" AND run_id IN ({', '.join('?' * len(run_ids))})"
            args = list(run_ids)
    sql += " GROUP BY run_id"
    return {int(run_id): int(n) for run_id, n in db.conn.execute(sql, args)}


def with_flags(db: sqlite_utils.Database, runs: list[RunRow]) -> list[RunRow]:
    """``runs`` with ``flagged_files`` filled in (the rows are updated in place)."""
    counts = flagged_counts(db, [r.id for r in runs])
    for run in runs:
        run.flagged_files = counts.get(run.id, 0)
    return runs


def get_run(db: sqlite_utils.Database, run_id: int) -> RunRow | None:
    row = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs JOIN roots ON roots.id = runs.root_id WHERE runs.id = ?",
        [run_id],
    ).fetchone()
    return _run_from(row) if row else None


def resolve_run(db: sqlite_utils.Database, ref: str) -> RunRow:
    """A run by id, name, framework id, or path (absolute, or relative to a root or cwd)."""
    runs = list_runs(db)
    if ref.isdecimal():  # not isdigit: "²" is a digit to it, and int refuses it
        for run in runs:
            if run.id == int(ref):
                return run
    target = os.fsencode(os.path.abspath(ref)) if os.path.exists(ref) else None
    matches = [
        r
        for r in runs
        if ref in (r.name, r.meta.get("run_key"))
        or (target is not None and r.abs_path == target)
        or r.path == os.fsencode(ref).rstrip(b"/")
    ]
    if not matches and target is not None:
        matches = [r for r in runs if paths.under(target, r.abs_path)]
        matches.sort(key=lambda r: len(r.abs_path), reverse=True)
        matches = matches[:1]
    if not matches:
        raise ArtlensError(f"no run matches '{paths.display(ref)}' (see `artlens runs`)")
    if len(matches) > 1:
        options = ", ".join(f"{m.id} ({paths.display(m.path)})" for m in matches[:5])
        raise ArtlensError(f"{paths.display(ref)!r} matches {len(matches)} runs: {options}")
    return matches[0]


@dataclass
class ArtifactRow:
    id: int
    root_id: int
    run_id: int | None
    path: bytes
    name: str
    kind: str
    ftype: str
    link_target: str | None
    size: int
    mtime: float
    hash: str | None
    hash_state: str
    verdict: str | None
    verdict_reason: str | None

    def to_json(self, root: bytes) -> dict[str, Any]:
        path, path_b64 = paths.json_path(root + b"/" + self.path)
        return {
            "id": self.id,
            "path": path,
            "path_b64": path_b64,
            "relpath": paths.json_text(self.path),
            "run_id": self.run_id,
            "kind": self.kind,
            "type": self.ftype,
            "link_target": self.link_target,
            "size_bytes": self.size,
            "mtime": iso(self.mtime),
            "hash": self.hash,
            "hash_state": self.hash_state,
            "verdict": self.verdict,
            "verdict_reason": self.verdict_reason,
        }


_ART_COLUMNS = (
    "id, root_id, run_id, path, name, kind, ftype, link_target, size, mtime_ns, hash,"
    " hash_state, verdict, verdict_reason"
)


def _artifact_from(row: tuple[Any, ...]) -> ArtifactRow:
    return ArtifactRow(
        row[0],
        row[1],
        row[2],
        path_bytes(row[3], "artifacts.path"),
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9] / 1e9,
        row[10],
        row[11],
        row[12],
        row[13],
    )


def list_artifacts(
    db: sqlite_utils.Database,
    *,
    run_id: int | None = None,
    root_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ArtifactRow]:
    sql = f"SELECT {_ART_COLUMNS} FROM artifacts"
    where, args = [], []
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    if root_id is not None:
        where.append("root_id = ?")
        args.append(root_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY root_id, path"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        args += [limit, offset]
    return [_artifact_from(r) for r in db.conn.execute(sql, args)]


@dataclass
class FolderEntry:
    """A child of a folder in the artifact tree: a subfolder (with totals) or a file."""

    key: bytes
    name: str
    is_dir: bool
    size: int
    count: int
    mtime: float | None
    kind: str | None = None
    artifact: ArtifactRow | None = None


BY_PARENT = "INDEXED BY artifacts_parent"
BY_PARENT_DIRS = "INDEXED BY dirs_parent"
"""For a folder's rows in name order.  With no statistics (no ANALYZE), SQLite reads
those by the (root, path) key to skip a sort, walking every row of the root: 260 ms a
page of a run's folder on an index of 1M files, against 0.4 ms by the folder."""


def folder_total(db: sqlite_utils.Database, root_id: int, folder: bytes) -> tuple[int, int]:
    """(bytes, files) below a folder: an index range scan, no disk access."""
    lo, hi = paths.prefix_range(folder)
    row = db.conn.execute(
        "SELECT coalesce(sum(size), 0), count(*) FROM artifacts"
        " WHERE root_id = ? AND path >= ? AND path < ?",
        [root_id, lo, hi],
    ).fetchone()
    return int(row[0]), int(row[1])


def children(
    db: sqlite_utils.Database, root_id: int, folder: bytes, *, limit: int = 5000
) -> list[FolderEntry]:
    """Folders first (with totals), then files, each sorted by name."""
    entries: list[FolderEntry] = []
    for key, mtime_ns in db.conn.execute(
        f"SELECT path, mtime_ns FROM dirs {BY_PARENT_DIRS} WHERE root_id = ? AND parent = ?"
        " AND path != ? ORDER BY path LIMIT ?",
        [root_id, folder, folder, limit],
    ):
        key = path_bytes(key, "dirs.path")
        size, count = folder_total(db, root_id, key)
        entries.append(
            FolderEntry(
                key,
                paths.display(paths.name_of(key)),
                True,
                size,
                count,
                (mtime_ns or 0) / 1e9,
            )
        )
    for row in db.conn.execute(
        f"SELECT {_ART_COLUMNS} FROM artifacts {BY_PARENT} WHERE root_id = ? AND parent = ?"
        " ORDER BY path LIMIT ?",
        [root_id, folder, limit],
    ):
        art = _artifact_from(row)
        entries.append(
            FolderEntry(art.path, art.name, False, art.size, 1, art.mtime, art.kind, art)
        )
    return entries


def roots(db: sqlite_utils.Database) -> list[tuple[int, bytes, str | None]]:
    """(id, path, watch health) of every root."""
    return [
        (r[0], path_bytes(r[1], "roots.path"), r[2])
        for r in db.conn.execute("SELECT id, path, watch_health FROM roots ORDER BY id")
    ]


@dataclass(frozen=True)
class UnreadableRow:
    """A place the last scan of it could not read: every total leaves out what it holds."""

    path: bytes
    """Relative to the root (b'' for the root itself)."""
    kind: str
    """``folder`` (could not be listed) or ``entry`` (could not be examined: a file or a
    folder, its size unknown)."""
    reason: str
    """What the system said, e.g. ``permission denied``."""

    def shown(self, base: bytes = b"") -> str:
        """The printable path, relative to ``base`` when it lies below it, else to the
        root (``.`` for the root itself)."""
        below = bool(base) and self.path.startswith(base + b"/")
        return paths.display(self.path[len(base) + 1 :] if below else self.path) or "."

    def describe(self, base: bytes = b"") -> str:
        """``out (permission denied)``."""
        return f"{self.shown(base)} ({self.reason})"

    def sentence(self, base: bytes = b"") -> str:
        """``folder out could not be read (permission denied)``."""
        if self.kind == "folder":
            return f"folder {self.shown(base)} could not be read ({self.reason})"
        return f"{self.shown(base)} could not be examined ({self.reason})"


def unreadable_places(
    conn: sqlite3.Connection, root_id: int | None = None
) -> dict[int, list[UnreadableRow]] | None:
    """root id -> what its last scans could not read, in path order (roots with nothing are
    absent); None for an index written before artlens recorded it (not yet migrated)."""
    sql = "SELECT root_id, path, kind, reason FROM unreadable"
    args: list[object] = []
    if root_id is not None:
        sql += " WHERE root_id = ?"
        args.append(root_id)
    known = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'unreadable'"
    ).fetchone()
    if known is None:
        return None
    found: dict[int, list[UnreadableRow]] = {}
    for rid, path, kind, reason in conn.execute(sql + " ORDER BY root_id, path", args):
        if not isinstance(rid, int):  # no root's row: not ours
            continue
        place = UnreadableRow(
            path_bytes(path, "unreadable.path"),
            paths.display(str(kind))[:20],
            paths.display(str(reason))[:200],
        )
        found.setdefault(rid, []).append(place)
    return found


class UnreadableIndex:
    """A root's unreadable places, sorted, for ``touching`` asked once per run: a range
    search and an ancestor walk, not a pass over every place (a folder its reader may list
    but not enter names every entry in it)."""

    def __init__(self, places: list[UnreadableRow]) -> None:
        self.places = sorted(places, key=lambda p: p.path)
        self.keys = [p.path for p in self.places]
        self.by_path = {p.path: p for p in self.places}

    def touching(self, folders: list[bytes]) -> list[UnreadableRow]:
        """The places that can hide files of ``folders`` (a run's folder and the extra
        folders it owns), in path order: those below one, and those at or above one (the
        whole folder unread)."""
        if not self.places:
            return []
        found: dict[bytes, UnreadableRow] = {}
        for folder in folders:
            up = folder
            while True:  # the folder itself or one above it
                if up in self.by_path:
                    found[up] = self.by_path[up]
                if not up:
                    break
                up = paths.parent_key(up)
            lo, hi = paths.prefix_range(folder)
            first, last = bisect.bisect_left(self.keys, lo), bisect.bisect_left(self.keys, hi)
            found.update((p.path, p) for p in self.places[first:last])
        return [found[k] for k in sorted(found)]
