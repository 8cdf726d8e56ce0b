"""A remote's mirror: its own SQLite file in the index schema, written only by a pull.

A pull applies one feed (``store.feed``) in one transaction: every line is checked (type,
range, size, path shape) before it touches the mirror, and anything wrong (a malformed
line, an event id going backwards, a stream that stops before its trailer, a timeout)
rolls the whole pull back, so the mirror is always a state the host really had and the
next pull resumes from the last event id that was applied.  The feed's content is only
ever written into this one file.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from store import paths
from store.feed import PROTOCOL
from store.index.db import open_db, write_transaction
from store.jsonstrict import NON_FINITE_NAMES
from store.kinds import KINDS
from store.lock import WriterLock
from store.remote.config import Remote
from store.remote.transport import RemoteError, Session, shell_noise

MAX_LINES = 20_000_000
MAX_BYTES = 4 << 30
PULL_TIMEOUT = 900.0
MAX_ROUNDS = 50
"""Feeds pulled back to back when the host has more events than one feed carries."""
MAX_PATH = 4096
MAX_TEXT = 4096
MAX_RECHECK_RANGES = 200
BATCH = 1000
"""Artifact rows written per ``executemany``."""
KEEP_EVENTS = 100_000
"""Change events a mirror keeps (older ones only grow the file; the rows are current)."""
BACKOFF_FIRST = 30.0
BACKOFF_MAX = 3600.0

_HASH = re.compile(r"^[0-9a-f]{32}$")
_INDEX_ID = re.compile(r"^[0-9a-f]{8,64}$")
_WORD = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_STATUSES = frozenset({"live", "finished", "failed", "unknown"})
_HASH_STATES = frozenset({"pending", "done", "skipped", "error"})
_VERDICTS = frozenset({None, "safe", "unknown", "dangerous", "corrupt"})
_FTYPES = frozenset({"file", "symlink"})
_KINDS = frozenset(KINDS)
_INT_MAX = (1 << 63) - 1


class BadLine(RemoteError):
    """A feed line we refuse; the message names the line number and the field."""


class IndexChanged(RemoteError):
    """The host's index was rebuilt: its event ids are not the mirror's any more."""


def _int(obj: dict[str, Any], name: str, *, lo: int = 0, none: bool = False) -> int | None:
    value = obj.get(name)
    if value is None and none:
        return None
    if type(value) is not int or not lo <= value <= _INT_MAX:
        raise BadLine(f"{name}: not an integer >= {lo}")
    return value


def _num(obj: dict[str, Any], name: str, *, none: bool = True) -> float | None:
    value: Any = obj.get(name)
    if value is None and none:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BadLine(f"{name}: not a number")
    return float(value)


def _text(obj: dict[str, Any], name: str, *, limit: int = MAX_TEXT, none: bool = False) -> Any:
    value = obj.get(name)
    if value is None and none:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadLine(f"{name}: not a string of at most {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadLine(f"{name}: not valid text") from None
    return value


def _one_of(obj: dict[str, Any], name: str, allowed: frozenset[Any]) -> Any:
    value = obj.get(name)
    # the type first: a list or an object is unhashable, and ``in`` a set would raise
    if (value is not None and not isinstance(value, str)) or value not in allowed:
        raise BadLine(f"{name}: unexpected value")
    return value


def _path(obj: dict[str, Any], name: str = "path", *, absolute: bool = False) -> bytes:
    """A path in the shape our own index writes: relative (or absolute for roots),
    normalised, no NUL, no empty, '.' or '..' component."""
    b64 = obj.get(name + "_b64")
    if b64 is not None:
        if not isinstance(b64, str) or len(b64) > MAX_PATH * 2:
            raise BadLine(f"{name}_b64: not base64")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise BadLine(f"{name}_b64: not base64") from None
    else:
        raw = _text(obj, name, limit=MAX_PATH).encode("utf-8")
    if len(raw) > MAX_PATH or b"\0" in raw:
        raise BadLine(f"{name}: not a path")
    body = raw
    if absolute:
        if not raw.startswith(b"/") or raw == b"/":
            raise BadLine(f"{name}: not an absolute path")
        body = raw[1:]
    elif raw.startswith(b"/"):
        raise BadLine(f"{name}: not a relative path")
    if body and any(part in (b"", b".", b"..") for part in body.split(b"/")):
        raise BadLine(f"{name}: not a normalised path")
    return raw


def _json_obj(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, dict):
        raise BadLine(f"{name}: not an object")
    return json.dumps(value, allow_nan=True)


def _metrics(obj: dict[str, Any]) -> str:
    metrics = obj.get("metrics")
    if not isinstance(metrics, dict):
        raise BadLine("metrics: not an object")
    for name, m in metrics.items():
        if not isinstance(m, dict):
            raise BadLine("metrics: a metric is not an object")
        for k in ("last", "best"):
            if m.get(k) in NON_FINITE_NAMES:  # how a strict feed writes inf and nan
                m[k] = float(m[k])
            if m.get(k) is not None and type(m[k]) not in (int, float):
                raise BadLine(f"metrics.{k}: not a number")
        for k in ("last_step", "best_step", "n"):
            if m.get(k) is not None and type(m[k]) is not int:
                raise BadLine(f"metrics.{k}: not an integer")
        if m.get("direction") not in (None, "min", "max"):
            raise BadLine("metrics.direction: unexpected value")
        if len(name) > MAX_TEXT:
            raise BadLine("metrics: a name is too long")
    return json.dumps(metrics, allow_nan=True)


def _under(key: bytes, prefix: bytes) -> bool:
    return paths.under(key, prefix)


@dataclass
class PullResult:
    """What one pull did: figures for ``remote pull`` and the benchmark."""

    name: str
    mode: str = ""
    host: str = ""
    last_event: int = 0
    newest: int = 0
    """The host's newest event id at the last feed: past ``last_event``, the pull stopped
    before it caught up (its feeds or its time used up) and the mirror is behind."""
    rounds: int = 0
    lines: int = 0
    bytes: int = 0
    artifacts: int = 0
    runs: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def meta_get(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def _meta_set(conn: Any, values: dict[str, object]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(k, None if v is None else str(v)) for k, v in values.items()],
    )


def pending_ranges(db: sqlite_utils.Database, limit: int = MAX_RECHECK_RANGES) -> str:
    """The mirror's unhashed artifact ids as ``a-b,c-d``, at most ``limit`` ranges (merged
    into wider ones past that: the host sends only rows hashed since, so a wider range
    costs bytes, never correctness)."""
    ranges: list[list[int]] = []
    for (art_id,) in db.conn.execute(
        "SELECT id FROM artifacts WHERE hash_state = 'pending' ORDER BY id"
    ):
        if ranges and art_id == ranges[-1][1] + 1:
            ranges[-1][1] = art_id
        else:
            ranges.append([art_id, art_id])
    if len(ranges) > limit:
        step = math.ceil(len(ranges) / limit)
        ranges = [[group[0][0], group[-1][1]] for group in _chunks(ranges, step)]
    return ",".join(f"{lo}-{hi}" for lo, hi in ranges)


def _chunks(items: list[list[int]], size: int) -> Iterator[list[list[int]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Apply:
    """Applies one feed's lines to the mirror inside the caller's transaction."""

    def __init__(self, conn: Any, cursor: int, index_id: str | None, result: PullResult) -> None:
        self.c = conn
        self.cursor = cursor
        self.index_id = index_id
        self.result = result
        self.header: dict[str, Any] | None = None
        self.roots: set[int] = set()
        self.runs: set[int] = set()
        self.sync: tuple[int, bytes] | None = None
        self.dirs_only = False
        self.last_event = cursor
        self.phase = "head"  # head, roots, body, recheck, done
        self.trailer: dict[str, Any] | None = None
        self._arts: list[tuple[Any, ...]] = []
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen_art (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen_dir (path BLOB PRIMARY KEY)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen_run (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen_root (id INTEGER PRIMARY KEY)")
        for table in ("seen_art", "seen_dir", "seen_run", "seen_root"):
            conn.execute(f"DELETE FROM temp.{table}")

    def feed(self, lines: Iterable[bytes]) -> None:
        for n, raw in enumerate(lines, 1):
            if n > MAX_LINES:
                raise RemoteError(f"the host sent more than {MAX_LINES} lines")
            try:
                try:
                    obj = json.loads(raw)
                except (ValueError, RecursionError):
                    raise BadLine("not JSON" + (shell_noise(raw) if n == 1 else "")) from None
                if not isinstance(obj, dict):
                    raise BadLine("not an object")
                self.line(obj)
            except IndexChanged:
                raise
            except BadLine as exc:
                raise BadLine(f"feed line {n}: {exc}") from None
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
                # a value of a shape no check above foresaw: refused, never a traceback
                raise BadLine(f"feed line {n}: unexpected value ({type(exc).__name__})") from None
            self.result.lines = n
            if self.phase == "done":
                return

    def line(self, obj: dict[str, Any]) -> None:
        kind = obj.get("t")
        if self.phase == "head":
            if kind != "header":
                raise BadLine("the stream does not start with a header")
            self._header(obj)
            return
        if self.sync is not None and kind not in ("dir", "artifact", "sync_end"):
            raise BadLine(f"{str(kind)[:20]!r} inside a sync block")
        if kind == "root" and self.phase == "roots":
            rid = _int(obj, "id", lo=1)
            path = _path(obj, absolute=True)
            self.c.execute(
                "INSERT OR REPLACE INTO roots (id, path, display, watch_mode, added_at,"
                " last_full_scan) VALUES (?, ?, ?, 'none', ?, ?)",
                [rid, path, paths.display(path), _num(obj, "added_at") or 0.0,
                 _num(obj, "last_full_scan")],
            )  # fmt: skip
            self.roots.add(rid)  # type: ignore[arg-type]
            self.c.execute("INSERT OR IGNORE INTO temp.seen_root VALUES (?)", [rid])
        elif kind == "run" and self.phase in ("roots", "runs"):
            self.phase = "runs"
            self._run(obj)
        elif kind == "sync" and self.phase in ("roots", "runs", "body"):
            self._end_head()
            root_id = _int(obj, "root_id", lo=1)
            if root_id not in self.roots:
                raise BadLine("sync of an unknown root")
            self.sync = (root_id, _path(obj))
            self.dirs_only = obj.get("dirs_only", False)
            if not isinstance(self.dirs_only, bool):
                raise BadLine("dirs_only: not true or false")
            self.c.execute("DELETE FROM temp.seen_art")
            self.c.execute("DELETE FROM temp.seen_dir")
        elif kind == "dir" and self.sync is not None:
            self._dir(obj)
        elif kind == "artifact" and self.sync is not None:
            if self.dirs_only:
                raise BadLine("a file in a block of folders only")
            self._artifact(obj)
        elif kind == "artifact" and self.phase in ("roots", "runs", "body", "recheck"):
            self._end_head()
            self.phase = "recheck"
            self._artifact(obj)
        elif kind == "sync_end" and self.sync is not None:
            self._sync_end()
        elif kind == "event" and self.phase in ("roots", "runs", "body"):
            self._end_head()
            self._event(obj)
        elif kind == "trailer" and self.phase in ("roots", "runs", "body", "recheck"):
            self._end_head()
            self._trailer(obj)
        else:
            raise BadLine(f"unexpected line type {str(kind)[:20]!r} here")

    def _header(self, obj: dict[str, Any]) -> None:
        if obj.get("protocol") != PROTOCOL:
            raise BadLine(f"feed protocol {str(obj.get('protocol'))[:10]!r}, expected {PROTOCOL}")
        host = _text(obj, "host", limit=255)
        index_id = _text(obj, "index_id", limit=64)
        if not _INDEX_ID.match(index_id):
            raise BadLine("index_id: unexpected value")
        newest = _int(obj, "newest")
        mode = _one_of(obj, "mode", frozenset({"snapshot", "changes"}))
        if mode == "changes":
            if obj.get("after") != self.cursor:
                raise BadLine("changes after another event id than asked for")
            if index_id != self.index_id:
                raise IndexChanged("the host's index was rebuilt")
            if newest is not None and newest < self.cursor:
                raise BadLine("the newest event id went backwards")
        else:
            # a snapshot replaces everything the mirror held
            for table in ("artifacts", "dirs", "runs", "roots", "events"):
                self.c.execute(f"DELETE FROM {table}")
            self.last_event = 0
        self.header = {"host": host, "index_id": index_id, "newest": newest, "mode": mode}
        self.result.mode, self.result.host = mode, host
        self.phase = "roots"

    def _end_head(self) -> None:
        """Roots and runs are complete: drop the ones the host no longer has."""
        if self.phase not in ("roots", "runs"):
            return
        self.phase = "body"
        gone = "root_id NOT IN (SELECT id FROM temp.seen_root)"
        for table in ("artifacts", "dirs", "runs"):
            self.c.execute(f"DELETE FROM {table} WHERE {gone}")
        self.c.execute("DELETE FROM roots WHERE id NOT IN (SELECT id FROM temp.seen_root)")
        self.c.execute("DELETE FROM runs WHERE id NOT IN (SELECT id FROM temp.seen_run)")

    def _run(self, obj: dict[str, Any]) -> None:
        rid = _int(obj, "id", lo=1)
        root_id = _int(obj, "root_id", lo=1)
        if root_id not in self.roots:
            raise BadLine("a run of an unknown root")
        status = _one_of(obj, "status", _STATUSES)
        self.c.execute(
            "INSERT OR REPLACE INTO runs (id, root_id, path, name, framework, experiment,"
            " started, last_write, status, params, metrics, meta, size_bytes, n_artifacts,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                rid,
                root_id,
                _path(obj),
                _text(obj, "name", limit=1000),
                _text(obj, "framework", limit=64),
                _text(obj, "experiment", limit=1000, none=True),
                _num(obj, "started"),
                _num(obj, "last_write"),
                status,
                _json_obj(obj, "params"),
                _metrics(obj),
                _json_obj(obj, "meta"),
                _int(obj, "size_bytes"),
                _int(obj, "n_artifacts"),
                _num(obj, "updated_at", none=False),
            ],
        )
        self.c.execute("INSERT OR IGNORE INTO temp.seen_run VALUES (?)", [rid])
        self.result.runs += 1

    def _dir(self, obj: dict[str, Any]) -> None:
        assert self.sync is not None
        root_id, prefix = self.sync
        key = _path(obj)
        if not _under(key, prefix):
            raise BadLine("a folder outside its sync block")
        self.c.execute(
            "INSERT OR REPLACE INTO dirs (root_id, path, parent, mtime_ns) VALUES (?, ?, ?, ?)",
            [root_id, key, paths.parent_key(key), _int(obj, "mtime_ns", lo=-_INT_MAX, none=True)],
        )
        self.c.execute("INSERT OR IGNORE INTO temp.seen_dir VALUES (?)", [key])

    def _artifact(self, obj: dict[str, Any]) -> None:
        art_id = _int(obj, "id", lo=1)
        root_id = _int(obj, "root_id", lo=1)
        key = _path(obj)
        if not key:
            raise BadLine("path: empty")
        if self.sync is not None:
            if root_id != self.sync[0] or not _under(key, self.sync[1]):
                raise BadLine("a file outside its sync block")
        elif root_id not in self.roots:
            raise BadLine("a file of an unknown root")
        ftype = _one_of(obj, "ftype", _FTYPES)
        digest = obj.get("hash")
        if digest is not None and (not isinstance(digest, str) or not _HASH.match(digest)):
            raise BadLine("hash: not an xxh3-128 hex digest")
        kind = _text(obj, "kind", limit=32)
        if kind not in _KINDS and not _WORD.match(kind):
            raise BadLine("kind: unexpected value")
        self._arts.append(
            (
                art_id,
                root_id,
                _int(obj, "run_id", lo=1, none=True),
                key,
                paths.parent_key(key),
                paths.display(paths.name_of(key)),
                kind,
                ftype,
                _text(obj, "link_target", limit=MAX_PATH, none=True),
                _int(obj, "size"),
                _int(obj, "mtime_ns", lo=-_INT_MAX),
                _int(obj, "inode"),
                _int(obj, "dev"),
                digest,
                _one_of(obj, "hash_state", _HASH_STATES),
                _one_of(obj, "verdict", _VERDICTS),
                _text(obj, "verdict_reason", none=True),
                _num(obj, "first_seen", none=False),
                _num(obj, "last_seen", none=False),
            )
        )
        self.result.artifacts += 1
        if len(self._arts) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the artifact rows held back (one ``executemany`` per batch)."""
        if not self._arts:
            return
        self.c.executemany(
            "INSERT OR REPLACE INTO artifacts (id, root_id, run_id, path, parent, name, kind,"
            " ftype, link_target, size, mtime_ns, inode, dev, hash, hash_state, verdict,"
            " verdict_reason, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._arts,
        )
        if self.sync is not None:
            self.c.executemany(
                "INSERT OR IGNORE INTO temp.seen_art VALUES (?)", [(a[0],) for a in self._arts]
            )
        self._arts = []

    def _sync_end(self) -> None:
        assert self.sync is not None
        self.flush()
        root_id, key = self.sync
        lo, hi = paths.prefix_range(key)
        where = "root_id = ? AND (path = ? OR (path >= ? AND path < ?))"
        if not self.dirs_only:
            self.c.execute(
                f"DELETE FROM artifacts WHERE {where} AND id NOT IN (SELECT id FROM temp.seen_art)",
                [root_id, key, lo, hi],
            )
        self.c.execute(
            f"DELETE FROM dirs WHERE {where} AND path NOT IN (SELECT path FROM temp.seen_dir)",
            [root_id, key, lo, hi],
        )
        self.sync = None

    def _event(self, obj: dict[str, Any]) -> None:
        assert self.header is not None
        if self.header["mode"] != "changes":
            raise BadLine("an event in a snapshot")
        eid = _int(obj, "id", lo=1)
        assert eid is not None
        if eid <= self.last_event:
            raise BadLine("event ids went backwards")
        if eid > self.header["newest"]:
            raise BadLine("an event newer than the header's newest")
        path = None if obj.get("path") is None and "path_b64" not in obj else _path(obj)
        self.c.execute(
            "INSERT INTO events (id, ts, kind, root_id, run_id, path) VALUES (?, ?, ?, ?, ?, ?)",
            [
                eid,
                _num(obj, "ts", none=False),
                _text(obj, "kind", limit=32),
                _int(obj, "root_id", lo=1, none=True),
                _int(obj, "run_id", lo=1, none=True),
                path,
            ],
        )
        self.last_event = eid

    def _trailer(self, obj: dict[str, Any]) -> None:
        assert self.header is not None
        self.flush()
        last = _int(obj, "last_event")
        expected = self.header["newest"] if self.header["mode"] == "snapshot" else self.last_event
        if last != expected:
            raise BadLine("the trailer's last event id does not match the stream")
        self.last_event = expected
        self.phase = "done"


def open_mirror(remote: Remote) -> sqlite_utils.Database:
    """The mirror, created on first use (only ``pull`` writes it)."""
    return open_db(remote.mirror_path)


def _pull_once(
    remote: Remote, db: sqlite_utils.Database, result: PullResult, deadline: float
) -> bool:
    """One feed applied; True when the host has more events waiting."""
    cursor = int(meta_get(db, "remote.cursor") or 0)
    index_id = meta_get(db, "remote.index_id")
    args = ["feed", "--after", str(cursor), "--json"]
    ranges = pending_ranges(db) if cursor else ""
    if ranges:
        args += ["--recheck", ranges]
    timeout = max(1.0, deadline - time.monotonic())
    with Session(remote.argv(args), timeout=timeout) as session, write_transaction(db) as conn:
        apply = _Apply(conn, cursor, index_id, result)
        lines = session.lines(max_bytes=MAX_BYTES)
        try:
            apply.feed(lines)
            if apply.phase != "done":
                raise RemoteError(session.ended_early())
            for _extra in lines:
                raise BadLine("data after the trailer")
        finally:
            result.bytes += session.bytes_read
        session.finish()
        assert apply.header is not None
        conn.execute("DELETE FROM events WHERE id <= ?", [apply.last_event - KEEP_EVENTS])
        _meta_set(
            conn,
            {
                "remote.cursor": apply.last_event,
                "remote.index_id": apply.header["index_id"],
                "remote.host": apply.header["host"],
                "remote.newest": max(apply.last_event, int(apply.header["newest"] or 0)),
                "remote.last_ok": time.time(),
                "remote.last_error": None,
                "remote.failures": 0,
                "remote.retry_at": None,
            },
        )
    result.last_event = apply.last_event
    newest = int(apply.header["newest"] or 0)
    result.newest = max(apply.last_event, newest)
    return apply.header["mode"] == "changes" and apply.last_event < newest


def pull(remote: Remote, *, timeout: float = PULL_TIMEOUT) -> PullResult:
    """Bring the mirror up to date with the host; on failure the mirror is unchanged, the
    error (one line) and the next retry time are recorded, and RemoteError is raised."""
    result = PullResult(remote.name)
    start = time.monotonic()
    deadline = start + timeout
    remote.mirror_path.parent.mkdir(parents=True, exist_ok=True)
    with WriterLock(remote.mirror_path, role="pull"):
        db = open_mirror(remote)
        try:
            try:
                while True:
                    try:
                        more = _pull_once(remote, db, result, deadline)
                    except IndexChanged:
                        if result.rounds:
                            raise
                        # start afresh: the next feed is a snapshot of the new index
                        with write_transaction(db) as conn:
                            _meta_set(conn, {"remote.cursor": 0})
                        more = _pull_once(remote, db, result, deadline)
                    result.rounds += 1
                    if not more or result.rounds >= MAX_ROUNDS or time.monotonic() > deadline:
                        break
                if result.last_event < result.newest:
                    result.warnings.append(behind_note(result.last_event, result.newest))
            except RemoteError as exc:
                _record_failure(db, str(exc))
                raise
            except sqlite3.Error as exc:
                message = f"mirror {remote.mirror_path}: {exc}"
                _record_failure(db, message)
                raise RemoteError(message) from None
        finally:
            db.close()
    result.seconds = time.monotonic() - start
    return result


def behind_note(last_event: int, newest: int) -> str:
    """Says that a mirror stopped short of the host (one line)."""
    return (
        f"the mirror is behind the host: at event {last_event} of its {newest} (the pull"
        " stopped before it caught up): pull again"
    )


def _record_failure(db: sqlite_utils.Database, message: str) -> None:
    failures = int(meta_get(db, "remote.failures") or 0) + 1
    wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(failures - 1, 20))
    with write_transaction(db) as conn:
        _meta_set(
            conn,
            {
                "remote.last_error": message,
                "remote.last_error_at": time.time(),
                "remote.failures": failures,
                "remote.retry_at": time.time() + wait,
            },
        )


@dataclass(frozen=True)
class Status:
    """What ``remote list`` shows about one remote."""

    name: str
    where: str
    state: str  # ok, behind, offline, never (no pull has succeeded yet, failed or not)
    host: str | None
    last_ok: float | None
    last_error: str | None
    retry_at: float | None
    runs: int
    artifacts: int
    last_event: int
    newest: int = 0
    """The host's newest event id at the last pull (past ``last_event``: ``behind``)."""


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _count(text: str | None) -> int:
    try:
        return max(0, int(text)) if text is not None else 0
    except ValueError:
        return 0


def status(remote: Remote) -> Status:
    """The mirror's state, read-only (a missing mirror is 'never pulled')."""
    path: Path = remote.mirror_path
    if not path.exists():
        return Status(remote.name, remote.where, "never", None, None, None, None, 0, 0, 0)
    db = open_db(path, readonly=True)
    try:
        try:
            runs, arts = db.conn.execute(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM artifacts)"
            ).fetchone()
            meta = dict(db.conn.execute("SELECT key, value FROM meta WHERE key LIKE 'remote.%'"))
        except sqlite3.Error:  # a mirror being created has no tables yet
            runs, arts, meta = 0, 0, {}
    finally:
        db.close()
    error = meta.get("remote.last_error")
    last_ok = _float(meta.get("remote.last_ok"))
    cursor = _count(meta.get("remote.cursor"))
    newest = max(cursor, _count(meta.get("remote.newest")))
    # a mirror no pull has filled (its first pull failed) is "never", its error kept: not
    # "offline", which says the mirror shows what the host had at its last pull
    state = (
        "never" if not last_ok else "offline" if error else "behind" if newest > cursor else "ok"
    )
    return Status(
        remote.name,
        remote.where,
        state,
        meta.get("remote.host"),
        last_ok,
        error,
        _float(meta.get("remote.retry_at")),
        int(runs),
        int(arts),
        cursor,
        newest,
    )
