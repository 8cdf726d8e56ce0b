"""The index database: connection settings, schema and migrations.

The index is a rebuildable cache of the disk.  It is plain SQLite (sqlite-utils and
Datasette can read it); paths are BLOB keys (see ``store.paths``).  Readers open it
read-only; exactly one writer at a time holds ``store.lock.WriterLock``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from store.errors import ArtlensError
from store.readonly import sqlite_uri

BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for a lock before SQLITE_BUSY: long enough to ride out a
writer's batch, short enough that a wedged writer is reported."""

migrations = Migrations("artlens")


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    """A migration's statements, inside its transaction.  ``Database.executescript`` finds
    where statements end by testing every prefix of the script, one character longer each
    time (16 ms for the schema of a new index); here only at each ``;``."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip() != ";":
                db.conn.execute(pending)
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"an incomplete statement ends the script: {pending.strip()[:60]}")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE roots (
            id INTEGER PRIMARY KEY,
            path BLOB NOT NULL UNIQUE,          -- absolute path, raw bytes
            display TEXT NOT NULL,              -- printable form of path
            dev INTEGER, ino INTEGER,           -- identity, to notice a recreated root
            watch_mode TEXT NOT NULL DEFAULT 'none',  -- none | inotify | polling
            watch_health TEXT,                  -- last health report of the watcher
            added_at REAL NOT NULL,
            last_full_scan REAL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            root_id INTEGER NOT NULL REFERENCES roots(id),
            path BLOB NOT NULL,                 -- folder relative to the root
            name TEXT NOT NULL,
            framework TEXT NOT NULL,            -- mlflow, wandb, lightning, hf-trainer, ...
            experiment TEXT,
            started REAL,
            last_write REAL,
            status TEXT NOT NULL DEFAULT 'unknown',  -- live, finished, failed, unknown
            params TEXT NOT NULL DEFAULT '{}',  -- JSON, flattened dotted keys
            metrics TEXT NOT NULL DEFAULT '{}', -- JSON {name: {last, best, step, n}}
            meta TEXT NOT NULL DEFAULT '{}',    -- JSON: git commit, run id, warnings
            size_bytes INTEGER NOT NULL DEFAULT 0,
            n_artifacts INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL,
            UNIQUE (root_id, path)
        );
        CREATE TABLE dirs (
            root_id INTEGER NOT NULL REFERENCES roots(id),
            path BLOB NOT NULL,
            parent BLOB NOT NULL,
            mtime_ns INTEGER,
            PRIMARY KEY (root_id, path)
        ) WITHOUT ROWID;
        CREATE INDEX dirs_parent ON dirs (root_id, parent);
        CREATE TABLE artifacts (
            id INTEGER PRIMARY KEY,
            root_id INTEGER NOT NULL REFERENCES roots(id),
            run_id INTEGER REFERENCES runs(id),
            path BLOB NOT NULL,                 -- relative to the root
            parent BLOB NOT NULL,               -- folder key, for lazy trees
            name TEXT NOT NULL,                 -- printable basename
            kind TEXT NOT NULL,                 -- checkpoint, model, data, config, ...
            ftype TEXT NOT NULL DEFAULT 'file', -- file | symlink
            link_target TEXT,                   -- printable target of a symlink
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            dev INTEGER NOT NULL,
            hash TEXT,                          -- xxh3-128 hex, NULL until hashed
            hash_state TEXT NOT NULL DEFAULT 'pending',  -- pending, done, skipped, error
            verdict TEXT,                       -- safe, unknown, dangerous, corrupt (model files)
            verdict_reason TEXT,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            UNIQUE (root_id, path)
        );
        CREATE INDEX artifacts_parent ON artifacts (root_id, parent);
        CREATE INDEX artifacts_run ON artifacts (run_id);
        CREATE INDEX artifacts_hash ON artifacts (hash) WHERE hash IS NOT NULL;
        CREATE INDEX artifacts_pending ON artifacts (hash_state) WHERE hash_state = 'pending';
        CREATE TABLE hash_cache (
            dev INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (dev, inode, size, mtime_ns)
        ) WITHOUT ROWID;
        CREATE TABLE artifact_history (
            id INTEGER PRIMARY KEY,
            root_id INTEGER NOT NULL,
            path BLOB NOT NULL,
            hash TEXT,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            seen_at REAL NOT NULL
        );
        CREATE INDEX artifact_history_path ON artifact_history (root_id, path);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,   -- added, changed, removed, run_*, scan, health
            root_id INTEGER,
            run_id INTEGER,
            path BLOB
        );
        CREATE TABLE retention_actions (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            root_id INTEGER NOT NULL,
            path BLOB NOT NULL,
            size INTEGER NOT NULL,
            action TEXT NOT NULL,    -- trash, restore, purge
            policy TEXT,
            reason TEXT,
            trash_path BLOB
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        """,
    )


@migrations()
def m002_flagged_files_index(db: sqlite_utils.Database) -> None:
    """Danger markers count dangerous or corrupt files per run: answer from an index of just
    those rows instead of reading the whole artifacts table."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS artifacts_flagged ON artifacts (run_id)"
        " WHERE verdict IN ('dangerous', 'corrupt')"
    )


@migrations()
def m003_folder_digests(db: sqlite_utils.Database) -> None:
    """A digest per folder of its files' identities, so a rescan compares one number per
    folder instead of reading every row back.  Any write to a folder's rows forgets the
    folder's digest (the triggers), so a digest that matches the disk vouches for the rows;
    the scanner writes it afresh after its own writes."""
    _run_script(
        db,
        """
        ALTER TABLE dirs ADD COLUMN digest INTEGER;
        CREATE TRIGGER IF NOT EXISTS artifacts_forget_digest_ins AFTER INSERT ON artifacts
        BEGIN
            UPDATE dirs SET digest = NULL
            WHERE root_id = NEW.root_id AND path = NEW.parent AND digest IS NOT NULL;
        END;
        CREATE TRIGGER IF NOT EXISTS artifacts_forget_digest_del AFTER DELETE ON artifacts
        BEGIN
            UPDATE dirs SET digest = NULL
            WHERE root_id = OLD.root_id AND path = OLD.parent AND digest IS NOT NULL;
        END;
        CREATE TRIGGER IF NOT EXISTS artifacts_forget_digest_upd
        AFTER UPDATE OF root_id, path, parent, inode, size, mtime_ns, dev, ftype ON artifacts
        BEGIN
            UPDATE dirs SET digest = NULL
            WHERE root_id IN (OLD.root_id, NEW.root_id) AND path IN (OLD.parent, NEW.parent)
            AND digest IS NOT NULL;
        END;
        """,
    )


TEXT_VIEWS = {
    "roots": ("path",),
    "runs": ("path",),
    "dirs": ("path", "parent"),
    "artifacts": ("path", "parent"),
    "artifact_history": ("path",),
    "events": ("path",),
    "retention_actions": ("path", "trash_path"),
}
"""Tables whose paths are BLOBs -> those columns; each gets a ``<table>_text`` view."""


@migrations()
def m004_path_text_views(db: sqlite_utils.Database) -> None:
    """A ``<table>_text`` view per table with BLOB paths, adding ``path_text`` (and
    ``parent_text``, ``trash_path_text``): Datasette and sqlite-utils show BLOBs as bytes.
    The text is the bytes read as UTF-8; the BLOB stays the lossless key."""
    for table, columns in TEXT_VIEWS.items():
        texts = ", ".join(f"CAST({c} AS TEXT) AS {c}_text" for c in columns)
        db.execute(f"CREATE VIEW IF NOT EXISTS {table}_text AS SELECT *, {texts} FROM {table}")


@migrations()
def m005_unreadable(db: sqlite_utils.Database) -> None:
    """What the last scan of each place could not read: a folder it could not list, an
    entry it could not examine (stat).  Every total the index gives leaves out what lies
    there, so the readers say so; a scan that reads the place again forgets the row."""
    _run_script(
        db,
        """
        CREATE TABLE IF NOT EXISTS unreadable (
            root_id INTEGER NOT NULL REFERENCES roots(id),
            path BLOB NOT NULL,                 -- relative to the root
            kind TEXT NOT NULL,                 -- folder (not listed) | entry (not examined)
            reason TEXT NOT NULL,               -- e.g. permission denied
            since REAL NOT NULL,                -- first found unreadable
            PRIMARY KEY (root_id, path)
        ) WITHOUT ROWID;
        CREATE VIEW IF NOT EXISTS unreadable_text AS
            SELECT *, CAST(path AS TEXT) AS path_text FROM unreadable;
        """,
    )


@migrations()
def m006_params_keep_non_finite_floats(db: sqlite_utils.Database) -> None:
    """A non-finite float param (``lr: .nan``) is stored as the float it is, where it was
    the text ``"nan"``, the same as a param that is that text: every run's summary is
    marked pending, and the next scan (``fill_summaries``) reads its files again."""
    from store.index.write import read_every_run_again

    read_every_run_again(db.conn)


def _configure(conn: sqlite3.Connection, *, readonly: bool, bulk: bool = False) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if bulk:  # a file no one else opens until ``publish``: no WAL to copy twice, no syncs
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
    elif not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32768")


def open_db(path: Path | str, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the index.

    A writer (``readonly=False``) creates the file and applies pending migrations; the
    caller must hold the writer lock.  A reader opens with ``mode=ro`` and never writes.
    """
    path = Path(path)
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no index at {path}")
        conn = sqlite3.connect(sqlite_uri(path, "ro"), uri=True, check_same_thread=False)
        _configure(conn, readonly=True)
        db = _database(conn)
        try:
            refuse_newer(db)
        except BaseException:
            db.close()
            raise
        return db
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    _configure(conn, readonly=False)
    db = _database(conn)
    migrate(db)
    return db


def _database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """The connection wrapped, without sqlite-utils plugins: each would run its own code on
    the index's connection, and finding them reads the entry points of every package
    installed (17 ms here, more in an environment holding a whole ML stack)."""
    return sqlite_utils.Database(conn, execute_plugins=False)


BUILDING_SUFFIX = ".building"
"""Beside the index's path: a new index while ``artlens index`` builds it (see
``open_new``)."""


def own_files(db: sqlite_utils.Database) -> set[bytes]:
    """The index's own files (never indexed), as absolute paths: its database, log,
    shared memory, lock and a side file being built, with their journals."""
    found: set[bytes] = set()
    for row in db.conn.execute("PRAGMA database_list"):
        if row[2]:
            base = os.fsencode(os.path.abspath(row[2]))
            for suffix in ("", "-wal", "-shm", ".lock", BUILDING_SUFFIX):
                found |= {base + os.fsencode(suffix), base + os.fsencode(suffix) + b"-journal"}
    return found


def open_new(path: Path | str) -> sqlite_utils.Database | None:
    """A new index for ``path`` built in a side file, or None when anything is at ``path``.

    The first load of a large root writes hundreds of MB: in WAL mode every page is
    written twice (log, then checkpoint).  Nobody reads an index that does not exist yet,
    so it is built beside its path without WAL or syncs, and ``publish`` syncs it, turns
    WAL on and renames it into place: readers see no index, then a whole one.  The caller
    holds the writer lock, so a side file already there is a build that died: dropped.
    """
    path = Path(path)
    if os.path.lexists(path) or os.path.lexists(f"{path}-wal"):
        return None
    side = path.with_name(path.name + BUILDING_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (side, side.with_name(side.name + "-journal")):
        with suppress(FileNotFoundError):
            leftover.unlink()
    conn = sqlite3.connect(str(side), check_same_thread=False, isolation_level=None)
    _configure(conn, readonly=False, bulk=True)
    db = _database(conn)
    migrate(db)
    return db


def publish(db: sqlite_utils.Database, path: Path | str) -> None:
    """Close a database from ``open_new`` and move it to ``path``, durable and in WAL mode."""
    path = Path(path)
    side = path.with_name(path.name + BUILDING_SUFFIX)
    db.conn.execute("PRAGMA journal_mode = WAL")
    db.close()
    fd = os.open(side, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(side, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard_new(db: sqlite_utils.Database, path: Path | str) -> None:
    """Close and remove an ``open_new`` database that will not be published."""
    path = Path(path)
    db.close()
    side = path.with_name(path.name + BUILDING_SUFFIX)
    for leftover in (side, side.with_name(side.name + "-journal")):
        with suppress(FileNotFoundError):
            leftover.unlink()


def migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema up to date; each migration is one transaction, never a drop.

    An index written by a newer artlens (migrations we do not know) is refused rather than
    written with an older idea of the schema.
    """
    refuse_newer(db)
    migrations.apply(db)


def refuse_newer(db: sqlite_utils.Database) -> None:
    """Refuse an index written by a newer artlens (migrations we do not know): a writer
    would write it with an older idea of the schema, and a reader would miss what the
    newer one records (what its scans could not read, say) and answer as if complete."""
    known = {m.name for m in migrations._migrations}
    unknown = sorted({m.name for m in migrations.applied(db)} - known)
    if unknown:
        raise ArtlensError(
            f"the index was written by a newer artlens (schema {', '.join(unknown)}): "
            "upgrade artlens, or rebuild the index with another --db"
        )


def schema_version(db: sqlite_utils.Database) -> int:
    """How many migrations the index has applied."""
    return len(migrations.applied(db))


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction: takes the write lock up front, so a reader
    that became a writer halfway never hits SQLITE_BUSY."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


_checkpoints: list[threading.Thread] = []
"""Checkpoints ``checkpoint_apart`` started in this process that may still run."""


@contextmanager
def checkpoint_apart(db: sqlite_utils.Database) -> Iterator[None]:
    """Commit the transactions inside without their checkpoint, then copy the WAL into
    the database file on a connection and thread of its own.

    A first load of a large root commits hundreds of MB of log at once; copying it into
    the file costs about a fifth of the load, and the committing connection would do it
    before it returns.  Readers see the rows once they are committed; the copy can go on
    beside whatever the writer does next (SQLite releases the GIL while it copies).
    Without WAL (a side file from ``open_new``, a memory database) there is no log."""
    conn = db.conn
    path = _wal_database_file(conn)
    if path is None:
        yield
        return
    (before,) = conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(before)}")
    thread = threading.Thread(target=_checkpoint, args=(path,), name="artlens-checkpoint")
    try:
        thread.start()
    except RuntimeError:  # no new thread (interpreter shutdown): the next commit's does it
        return
    _checkpoints.append(thread)


def wait_for_checkpoints() -> None:
    """Wait for the checkpoints ``checkpoint_apart`` started: a process that forks helpers
    must be single-threaded first (``store.forked``).  Safe from several threads at once."""
    while True:
        try:
            thread = _checkpoints.pop()
        except IndexError:
            return
        thread.join()


def _wal_database_file(conn: sqlite3.Connection) -> str | None:
    """The file of ``conn``'s main database when it is in WAL mode, else None (also when
    SQLite cannot give its name as text)."""
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            return None
        listed = conn.execute("PRAGMA database_list").fetchall()
    except sqlite3.Error:
        return None
    return next((str(file) for _seq, name, file in listed if name == "main" and file), None)


def _checkpoint(path: str) -> None:
    """Copy what the WAL holds into the database file (``PASSIVE``: it waits for no reader
    and no writer).  Any failure leaves the log to the next commit's own checkpoint."""
    try:
        conn = sqlite3.connect(sqlite_uri(path, "rw"), uri=True, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass
    finally:
        conn.close()


def data_version(db: sqlite_utils.Database) -> int:
    """Changes whenever another connection commits: a cheap "did anything change?"."""
    row = db.conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def last_event_id(db: sqlite_utils.Database) -> int:
    row = db.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    return int(row[0])


NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smbfs", "smb3", "lustre", "gpfs", "fuse.sshfs", "beegfs", "ceph"}
    | {"glusterfs", "fuse.glusterfs", "9p", "afs", "fuse.s3fs", "fuse.gcsfuse"}
    # what GPU clusters and clouds mount too: their files change on other machines
    | {"wekafs", "panfs", "orangefs", "pvfs2", "gfs2", "ocfs2", "virtiofs", "vboxsf", "davfs"}
    | {"fuse.rclone", "fuse.juicefs", "fuse.blobfuse", "fuse.blobfuse2", "fuse.goofys"}
    | {"fuse.geesefs", "fuse.ceph-fuse", "fuse.mfs", "fuse.lizardfs", "fuse.quobyte"}
    # a FUSE mount that does not name itself (AWS's mountpoint-s3 among them): unsure, so
    # polled, as a network filesystem is
    | {"fuse"}
)


def mount_table(mounts: str | None = None) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount, from ``mounts`` (the text of
    /proc/mounts, read when not given; none when it cannot be read)."""
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="surrogateescape") as file:
                mounts = file.read(MOUNTS_MAX)
        except OSError:
            return []
    table = []
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            # the kernel writes a space, tab, newline or backslash in a path as \ooo
            point = _MOUNT_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), parts[1])
            table.append((point, parts[2]))
    return table


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (longest matching mount point), read
    from ``mounts`` (see ``mount_table``)."""
    target = os.path.realpath(path)
    best, best_type = "", None
    for mount_point, fs_type in mount_table(mounts):
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def network_mounts_below(path: Path, mounts: str | None = None) -> list[tuple[str, str]]:
    """(mount point, type) of each network filesystem mounted below ``path``, outermost
    first: a root on a local disk may hold one (``shared/`` on NFS), whose changes on
    other machines raise no event here either."""
    top = os.path.realpath(path).rstrip("/") + "/"
    found = sorted(
        (point, fs_type)
        for point, fs_type in mount_table(mounts)
        if point.startswith(top) and fs_type in NETWORK_FILESYSTEMS
    )
    # a mount inside another one found is polled with it
    return [
        m for i, m in enumerate(found) if not any(m[0].startswith(o + "/") for o, _ in found[:i])
    ]


MOUNTS_MAX = 16 << 20
"""Bytes of /proc/mounts read at most (a host with thousands of container mounts)."""
_MOUNT_ESCAPE = re.compile(r"\\([0-7]{3})")


def is_network_fs(path: Path, mounts: str | None = None) -> str | None:
    """The filesystem type when ``path`` lies on a network filesystem, else None."""
    fs_type = filesystem_type(path, mounts)
    return fs_type if fs_type in NETWORK_FILESYSTEMS else None
