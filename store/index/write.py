"""Every change to the index's rows: the only module with INSERT, UPDATE or DELETE on it.

The scanner, the run sync, the watcher and the trash decide *what* changed; the statements
that record it live here, so the schema's invariants (a run's totals are the sum of its
rows, every visible change writes an event, a folder's digest is forgotten when its rows
change) have one place to hold.  Callers pass a connection inside their own
``write_transaction`` (one commit per scan or per trash item), except ``add_root``, which
is a transaction of its own.  Mirror databases of other hosts are written by
``store.remote.mirror`` (rows copied from a feed, never derived from a disk).
"""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING

from store import paths
from store.index.db import write_transaction
from store.index.events import EventKind
from store.index.query import FLAGGED_VERDICTS

if TYPE_CHECKING:
    import sqlite3

    import sqlite_utils

    from store.hashing import Identity

EventRow = tuple[EventKind, int | None, int | None, bytes | None]
"""(kind, root id, run id, path) of one event to write."""


# -- roots -------------------------------------------------------------------------------


def add_root(db: sqlite_utils.Database, path: bytes, display: str, now: float) -> int:
    """A new root's row (its own transaction); returns its id."""
    with write_transaction(db) as conn:
        cur = conn.execute(
            "INSERT INTO roots (path, display, added_at) VALUES (?, ?, ?)", [path, display, now]
        )
        return int(cur.lastrowid or 0)


def mark_full_scan(
    conn: sqlite3.Connection, root_id: int, now: float, dev: int | None, ino: int | None
) -> None:
    """A full scan finished: when, and the identity of the folder it walked."""
    conn.execute(
        "UPDATE roots SET last_full_scan = ?, dev = ?, ino = ? WHERE id = ?",
        [now, dev, ino, root_id],
    )


def set_watch_health(db: sqlite_utils.Database, root_id: int, mode: str, health: str) -> None:
    """The watcher's mode and health report of a root (JSON text), in its own commit."""
    with write_transaction(db) as conn:
        conn.execute(
            "UPDATE roots SET watch_mode = ?, watch_health = ? WHERE id = ?",
            [mode, health, root_id],
        )


# -- folders and files -------------------------------------------------------------------


def write_dirs(
    conn: sqlite3.Connection,
    root_id: int,
    written: Iterable[tuple[bytes, bytes, int, int | None]],
    removed: Iterable[bytes],
) -> None:
    """Folder rows (path, parent, mtime_ns, digest) written whole, and folders gone.  Write
    them after the files of the same folders: those writes make the triggers forget the
    digests."""
    conn.executemany(
        "INSERT OR REPLACE INTO dirs (root_id, path, parent, mtime_ns, digest)"
        " VALUES (?, ?, ?, ?, ?)",
        [(root_id, *row) for row in written],
    )
    conn.executemany(
        "DELETE FROM dirs WHERE root_id = ? AND path = ?", [(root_id, k) for k in removed]
    )


def record_unreadable(
    conn: sqlite3.Connection,
    root_id: int,
    found: Mapping[bytes, tuple[str, str]],
    listed: Container[bytes],
    walked_dirs: Container[bytes],
    gone: Iterable[bytes],
    now: float,
) -> set[bytes]:
    """What a walk could not read, ``found`` (path -> (kind, reason)), kept per root; what
    it read again forgotten: a folder it ``listed``, an entry of a listed folder that is no
    folder it walked now (gone, or a file examined), anything below a folder ``gone``.  A
    folder listed without being entered keeps its record.  Returns the paths whose record
    changed, so the runs holding them can say so again."""
    gone_set = set(gone)

    def read_again(key: bytes) -> bool:
        if key in listed:
            return True
        if key and paths.parent_key(key) in listed and key not in walked_dirs:
            return True
        up = key
        while gone_set:  # the key, or a folder above it, is gone
            if up in gone_set:
                return True
            if not up:
                break
            up = paths.parent_key(up)
        return False

    held = {
        bytes(path): (str(kind), str(reason))
        for path, kind, reason in conn.execute(
            "SELECT path, kind, reason FROM unreadable WHERE root_id = ?", [root_id]
        )
        if isinstance(path, bytes)
    }
    cleared = [k for k in held if k not in found and read_again(k)]
    fresh = [(k, v) for k, v in found.items() if held.get(k) != v]
    conn.executemany(
        "DELETE FROM unreadable WHERE root_id = ? AND path = ?", [(root_id, k) for k in cleared]
    )
    conn.executemany(
        "INSERT INTO unreadable (root_id, path, kind, reason, since) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (root_id, path) DO UPDATE SET kind = excluded.kind,"
        " reason = excluded.reason",
        [(root_id, k, kind, reason, now) for k, (kind, reason) in fresh],
    )
    return {*cleared, *(k for k, _ in fresh)}


ROWS_PER_INSERT = 100
"""New-file rows per INSERT statement: one statement of many rows binds them all at once,
which costs about two thirds of an executemany of one-row statements."""


def insert_new_files(
    conn: sqlite3.Connection,
    root_id: int,
    now: float,
    rows: Iterable[tuple[object, ...]],
) -> None:
    """The scan's common row: a regular file not hashed yet, as (run_id, path, parent, name,
    kind, size, mtime_ns, inode, dev).  ``rows`` may be a generator (consumed as SQLite
    takes them, in order); only what varies is bound."""
    stamp = repr(float(now))
    head = (
        "INSERT INTO artifacts (root_id, run_id, path, parent, name, kind, size, mtime_ns,"
        " inode, dev, hash_state, first_seen, last_seen) VALUES "
    )
    one = f"({int(root_id)}, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', {stamp}, {stamp})"
    many = head + ",".join([one] * ROWS_PER_INSERT)
    flat = itertools.chain.from_iterable
    it = iter(rows)
    while True:
        chunk = list(itertools.islice(it, ROWS_PER_INSERT))
        if len(chunk) < ROWS_PER_INSERT:
            conn.executemany(head + one, chunk)
            return
        conn.execute(many, tuple(flat(chunk)))


def insert_artifacts(conn: sqlite3.Connection, rows: Iterable[tuple[object, ...]]) -> None:
    """Whole new rows: (root_id, run_id, path, parent, name, kind, ftype, link_target, size,
    mtime_ns, inode, dev, hash, hash_state, first_seen, last_seen)."""
    conn.executemany(
        "INSERT INTO artifacts (root_id, run_id, path, parent, name, kind, ftype, link_target,"
        " size, mtime_ns, inode, dev, hash, hash_state, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def update_artifacts(conn: sqlite3.Connection, rows: Iterable[tuple[object, ...]]) -> None:
    """Files whose identity changed: (run_id, kind, ftype, link_target, size, mtime_ns,
    inode, dev, hash, hash_state, last_seen, id); their verdicts are forgotten."""
    conn.executemany(
        "UPDATE artifacts SET run_id=?, kind=?, ftype=?, link_target=?, size=?, mtime_ns=?,"
        " inode=?, dev=?, hash=?, hash_state=?, verdict=NULL, verdict_reason=NULL,"
        " last_seen=? WHERE id=?",
        rows,
    )


def add_history(conn: sqlite3.Connection, rows: Iterable[tuple[object, ...]]) -> None:
    """Hashed versions replaced or removed: (root_id, path, hash, size, mtime_ns, seen_at)."""
    conn.executemany(
        "INSERT INTO artifact_history (root_id, path, hash, size, mtime_ns, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def delete_artifacts(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    conn.executemany("DELETE FROM artifacts WHERE id = ?", [(i,) for i in ids])


Settled = tuple[int, "Identity", str | None, str, str, str | None, str | None]
"""One file's hashing: its id, the version hashed, and (hash, hash_state, kind, verdict,
verdict_reason)."""


def _fields(version: Identity) -> tuple[int, int, int, int]:
    return version.dev, version.inode, version.size, version.mtime_ns


def settle_hashes(conn: sqlite3.Connection, settled: Iterable[Settled], now: float) -> None:
    """Write hashing's results, each to its row only while the row still holds the version
    hashed and is pending: a file changed since (the watcher wrote its new size and mtime)
    keeps waiting for its own hash, rather than taking the old content's.  A hash goes to
    the hash cache, and a dangerous or corrupt verdict is news for open views (safe ones
    are not, and would only flood the feed), only from a row that took the result."""
    rows = [(art_id, *_fields(version), *result) for art_id, version, *result in settled]
    conn.executemany(
        "UPDATE artifacts SET hash = ?6, hash_state = ?7, kind = ?8, verdict = ?9,"
        " verdict_reason = ?10 WHERE id = ?1 AND hash_state = 'pending' AND dev = ?2"
        " AND inode = ?3 AND size = ?4 AND mtime_ns = ?5",
        rows,
    )
    took = (
        "FROM artifacts WHERE id = ?1 AND dev = ?2 AND inode = ?3 AND size = ?4"
        " AND mtime_ns = ?5 AND hash IS ?6 AND hash_state = ?7"
    )
    conn.executemany(
        "INSERT OR REPLACE INTO hash_cache (dev, inode, size, mtime_ns, hash)"
        f" SELECT dev, inode, size, mtime_ns, hash {took}",
        [row[:7] for row in rows if row[5] is not None],
    )
    conn.executemany(
        f"INSERT INTO events (ts, kind, root_id, run_id, path) SELECT ?8, ?9, root_id, run_id,"
        f" path {took} AND verdict IS ?10",
        [
            (*row[:7], now, EventKind.VERDICT.value, row[8])
            for row in rows
            if row[8] in FLAGGED_VERDICTS
        ],
    )


def set_known_hashes(
    conn: sqlite3.Connection, root_id: int, rows: Iterable[tuple[str, bytes]]
) -> None:
    """Hashes known without reading the files, ``(hash, path)`` per file of ``root_id``
    (a bucket run diff's private index: an ETag that is the MD5 of the bytes)."""
    conn.executemany(
        "UPDATE artifacts SET hash = ?, hash_state = 'done' WHERE root_id = ? AND path = ?",
        [(digest, root_id, path) for digest, path in rows],
    )


def assign_runs(conn: sqlite3.Connection, updates: Iterable[tuple[int | None, int]]) -> None:
    """(run id, artifact id): files that moved to another run, or to none."""
    conn.executemany("UPDATE artifacts SET run_id = ? WHERE id = ?", updates)


# -- runs --------------------------------------------------------------------------------


def insert_run(
    conn: sqlite3.Connection,
    root_id: int,
    path: bytes,
    name: str,
    framework: str,
    experiment: str | None,
    meta: str,
    now: float,
) -> int:
    cur = conn.execute(
        "INSERT INTO runs (root_id, path, name, framework, experiment, meta, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [root_id, path, name, framework, experiment, meta, now],
    )
    return int(cur.lastrowid or 0)


def update_run_spec(
    conn: sqlite3.Connection,
    run_id: int,
    framework: str,
    name: str,
    experiment: str | None,
    meta_patch: str,
) -> None:
    """A run detected again: its framework, and its folder's name and experiment unless
    the run's own files named it (meta.name outranks the folder's); no write if equal."""
    conn.execute(
        "UPDATE runs SET framework = ?,"
        " name = coalesce(json_extract(meta, '$.name'), ?),"
        " experiment = coalesce(json_extract(meta, '$.experiment'), ?),"
        " meta = json_patch(meta, ?) WHERE id = ? AND (framework != ?"
        " OR name != coalesce(json_extract(meta, '$.name'), ?)"
        " OR coalesce(experiment, '')"
        " != coalesce(json_extract(meta, '$.experiment'), ?, ''))",
        [framework, name, experiment, meta_patch, run_id, framework, name, experiment],
    )


def delete_run(conn: sqlite3.Connection, run_id: int) -> None:
    """A run gone from the disk: its files stay, belonging to no run (until reassigned)."""
    conn.execute("UPDATE artifacts SET run_id = NULL WHERE run_id = ?", [run_id])
    conn.execute("DELETE FROM runs WHERE id = ?", [run_id])


def mark_summaries_pending(conn: sqlite3.Connection, rows: Iterable[list[object]]) -> None:
    """Totals now, summaries later: (started, last_write, status, size_bytes, n_artifacts,
    updated_at, id); a finished or failed status stays."""
    conn.executemany(
        "UPDATE runs SET started = coalesce(started, ?), last_write = ?,"
        " status = CASE WHEN status IN ('finished', 'failed') THEN status ELSE ? END,"
        " meta = json_set(meta, '$.summary_pending', json('true')),"
        " size_bytes = ?, n_artifacts = ?, updated_at = ? WHERE id = ?",
        rows,
    )


def read_every_run_again(conn: sqlite3.Connection) -> None:
    """Mark every run's summary pending (a migration that changes how one is stored): the
    next scan reads each run's files again.  A run whose meta is no JSON object is left."""
    conn.execute(
        "UPDATE runs SET meta = json_set(meta, '$.summary_pending', json('true'))"
        " WHERE CASE WHEN json_valid(meta) THEN json_type(meta) = 'object' ELSE 0 END"
    )


def update_run_summaries(conn: sqlite3.Connection, rows: Iterable[list[object]]) -> None:
    """Runs read again: (name, experiment, started, last_write, status, params, metrics,
    meta, size_bytes, n_artifacts, updated_at, id)."""
    conn.executemany(
        "UPDATE runs SET name = ?, experiment = ?, started = ?, last_write = ?,"
        " status = ?, params = ?,"
        " metrics = ?, meta = ?, size_bytes = ?, n_artifacts = ?, updated_at = ?"
        " WHERE id = ?",
        rows,
    )


def update_run_totals(
    conn: sqlite3.Connection,
    run_id: int,
    size: int,
    count: int,
    last_write: float | None,
    now: float,
) -> None:
    conn.execute(
        "UPDATE runs SET size_bytes = ?, n_artifacts = ?, last_write = ?,"
        " updated_at = ? WHERE id = ?",
        [size, count, last_write, now, run_id],
    )


def rebuild_run_totals(conn: sqlite3.Connection, run_ids: Iterable[int | None]) -> None:
    """Size and file count of these runs recounted from their rows (after files left or
    came back outside a scan); when a run was written last stays the scanner's to say."""
    conn.executemany(
        "UPDATE runs SET size_bytes ="
        " (SELECT coalesce(sum(size), 0) FROM artifacts WHERE run_id = runs.id),"
        " n_artifacts = (SELECT count(*) FROM artifacts WHERE run_id = runs.id)"
        " WHERE id = ?",
        [(r,) for r in sorted({r for r in run_ids if r is not None})],
    )


# -- events ------------------------------------------------------------------------------


def add_events(conn: sqlite3.Connection, now: float, rows: Iterable[EventRow]) -> None:
    """Change events, in order; the kind is stored as its enum value."""
    conn.executemany(
        "INSERT INTO events (ts, kind, root_id, run_id, path) VALUES (?, ?, ?, ?, ?)",
        [(now, kind.value, root_id, run_id, path) for kind, root_id, run_id, path in rows],
    )


# -- runs to detect again ------------------------------------------------------------------


def _stale_range(root_id: int) -> tuple[str, str]:
    """The ``meta`` keys of a root's folders noted by ``note_runs_stale``: one key each
    (its hex after the prefix), so that noting is one insert, however many moves."""
    prefix = f"runs_stale:{int(root_id)}:"
    return prefix, prefix[:-1] + ";"  # ';' follows ':'


def note_runs_stale(conn: sqlite3.Connection, root_id: int, folder: bytes) -> None:
    """Files left or came back outside a scan (the trash) in ``folder`` (a key): which runs
    exist may have changed (a generic run's last artifact, a run's whole folder), and its
    rows no longer differ from the disk, so no scan would notice.  Noted in the same
    transaction as the rows, the next scan of the root detects its runs again and looks
    at these folders (``stale_folders``); ``settle`` does it at once."""
    prefix, _ = _stale_range(root_id)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '')", (prefix + folder.hex(),))


def stale_folders(conn: sqlite3.Connection, root_id: int) -> list[bytes]:
    """The folders ``note_runs_stale`` named for this root, not yet scanned again."""
    lo, hi = _stale_range(root_id)
    found = []
    for (name,) in conn.execute("SELECT key FROM meta WHERE key >= ? AND key < ?", (lo, hi)):
        try:
            found.append(bytes.fromhex(str(name)[len(lo) :]))
        except ValueError:
            return [b""]  # damaged: the whole root's runs are detected again
    return found


def clear_runs_stale(conn: sqlite3.Connection, root_id: int) -> None:
    conn.execute("DELETE FROM meta WHERE key >= ? AND key < ?", _stale_range(root_id))


def stale_roots(conn: sqlite3.Connection) -> dict[bytes, list[bytes]]:
    """root path -> its folders noted by ``note_runs_stale``, of every root noted."""
    found = {}
    for root_id, root in conn.execute("SELECT id, path FROM roots").fetchall():
        folders = stale_folders(conn, int(root_id))
        if folders:
            found[bytes(root)] = folders
    return found


# -- the trash ---------------------------------------------------------------------------


def _already_recorded(conn: sqlite3.Connection, root_id: int, action: str, trash: bytes) -> bool:
    row = conn.execute(
        "SELECT 1 FROM retention_actions WHERE root_id = ? AND action = ? AND trash_path = ?",
        (root_id, action, trash),
    ).fetchone()
    return row is not None


def record_trash(
    conn: sqlite3.Connection,
    root_id: int,
    path: bytes,
    prefix: tuple[bytes, bytes] | None,
    size: int,
    trash_path: bytes,
    ts: float,
    reason: str,
    policy: str | None,
) -> bool:
    """A file or folder moved to the trash: the action, its rows gone (``prefix``: the key
    range below a folder), one ``removed`` event per row and a ``trash`` event, its runs'
    totals recounted.  False when this move was recorded already (a replayed manifest)."""
    if _already_recorded(conn, root_id, "trash", trash_path):
        return False
    conn.execute(
        "INSERT INTO retention_actions (ts, root_id, path, size, action, policy, reason, "
        "trash_path) VALUES (?, ?, ?, ?, 'trash', ?, ?, ?)",
        (ts, root_id, path, size, policy, reason, trash_path),
    )
    forget_moved(conn, root_id, path, prefix, ts)
    add_events(conn, ts, [(EventKind.TRASH, root_id, None, path)])
    return True


def record_restore(
    conn: sqlite3.Connection,
    root_id: int,
    path: bytes,
    size: int,
    trash_path: bytes,
    ts: float,
    run_id: int | None,
    files: Iterable[tuple[bytes, bytes, str, str, str, str | None, int, int, int, int]],
) -> bool:
    """Files back from the trash: the action, their rows (path, parent, name, kind, ftype,
    link_target, size, mtime_ns, inode, dev) in run ``run_id`` if it still exists, one
    ``added`` event each and a ``trash`` event, the run's totals recounted.  The hasher
    refills their hashes.  False when this restore was recorded already."""
    if _already_recorded(conn, root_id, "restore", trash_path):
        return False
    if (
        run_id is not None
        and not conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
    ):
        run_id = None
    conn.execute(
        "INSERT INTO retention_actions (ts, root_id, path, size, action, reason, trash_path) "
        "VALUES (?, ?, ?, ?, 'restore', 'restored by user', ?)",
        (ts, root_id, path, size, trash_path),
    )
    keys = []
    for row in files:
        keys.append(row[0])
        conn.execute(
            "INSERT OR REPLACE INTO artifacts (root_id, run_id, path, parent, name, kind, "
            "ftype, link_target, size, mtime_ns, inode, dev, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (root_id, run_id, *row, ts, ts),
        )
    events: list[EventRow] = [(EventKind.ADDED, root_id, run_id, k) for k in keys]
    add_events(conn, ts, [*events, (EventKind.TRASH, root_id, None, path)])
    rebuild_run_totals(conn, [run_id])
    note_runs_stale(conn, root_id, paths.parent_key(path))
    return True


def forget_moved(
    conn: sqlite3.Connection,
    root_id: int,
    path: bytes,
    prefix: tuple[bytes, bytes] | None,
    ts: float,
) -> None:
    """A file or folder gone to a trash (``record_trash``'s, or another indexed root's
    that holds the same files: roots that nest, one folder under two names): its rows
    gone, one ``removed`` event per row, its runs' totals recounted, as a scan would find
    it.  The action and its ``trash`` event are the acting root's alone.  Idempotent."""
    lo, hi = prefix if prefix is not None else (b"", b"")
    rows = conn.execute(
        "SELECT id, run_id, path FROM artifacts WHERE root_id = ? AND "
        "(path = ? OR (? AND path >= ? AND path < ?))",
        (root_id, path, int(prefix is not None), lo, hi),
    ).fetchall()
    if not rows:
        return
    delete_artifacts(conn, (r[0] for r in rows))
    add_events(conn, ts, [(EventKind.REMOVED, root_id, r[1], r[2]) for r in rows])
    rebuild_run_totals(conn, (r[1] for r in rows))
    note_runs_stale(conn, root_id, paths.parent_key(path))


def came_back(
    conn: sqlite3.Connection,
    root_id: int,
    files: Iterable[tuple[int | None, bytes, bytes, str, str, str, str | None, int, int, int, int]],
    ts: float,
) -> None:
    """Files another indexed root restored from its trash, in a root that holds the same
    files: their rows (run_id, path, parent, name, kind, ftype, link_target, size,
    mtime_ns, inode, dev), one ``added`` event each, their runs' totals recounted.  The
    hasher refills their hashes."""
    events: list[EventRow] = []
    for row in files:
        conn.execute(
            "INSERT OR REPLACE INTO artifacts (root_id, run_id, path, parent, name, kind, "
            "ftype, link_target, size, mtime_ns, inode, dev, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (root_id, *row, ts, ts),
        )
        events.append((EventKind.ADDED, root_id, row[0], row[1]))
    add_events(conn, ts, events)
    rebuild_run_totals(conn, (e[2] for e in events))


def record_purge(
    conn: sqlite3.Connection,
    root_id: int,
    path: bytes,
    size: int,
    trash_path: bytes,
    ts: float,
    reason: str,
) -> None:
    """Something left the trash for good (its rows went when it was trashed)."""
    conn.execute(
        "INSERT INTO retention_actions (ts, root_id, path, size, action, reason, "
        "trash_path) VALUES (?, ?, ?, ?, 'purge', ?, ?)",
        (ts, root_id, path, size, reason, trash_path),
    )
    add_events(conn, ts, [(EventKind.TRASH, root_id, None, path)])
