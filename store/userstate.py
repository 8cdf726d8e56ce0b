"""What users decide or did, kept apart from the index so a rebuild of the index cannot
drop it, where no one else writes.

Pins (a run or an artifact, or a glob, under a root), notes and the record of what each
bucket apply trashed live in a small SQLite file
of their own: default ``platformdirs.user_data_dir('artlens')/state.db``, overridden by the
``ARTLENS_STATE`` environment variable or the ``path`` argument.  Roots are keyed by their
absolute path, relative paths by their raw bytes (``store.paths.key``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from store.errors import ArtlensError
from store.paths import key, unkey

ENV_VAR = "ARTLENS_STATE"
GLOB_CHARS = frozenset("*?[")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    root BLOB NOT NULL,
    path BLOB NOT NULL,
    is_glob INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (root, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notes (
    root BLOB NOT NULL,
    path BLOB NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (root, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_trash (
    url TEXT NOT NULL,
    batch TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    version TEXT,
    marker TEXT,
    trash_key TEXT,
    trash_pin TEXT,
    recorded REAL NOT NULL,
    PRIMARY KEY (url, batch, key)
) WITHOUT ROWID;
"""


class UserStateError(ArtlensError):
    """The state file cannot be opened or written; the message is one line."""


@dataclass(frozen=True)
class Pin:
    """One pin: an exact root-relative path, or a glob over such paths."""

    path: str
    is_glob: bool


@dataclass(frozen=True)
class TrashedObject:
    """What a bucket apply trashed, as it recorded it here: the manifest in the bucket is
    checked against this before a restore or a purge acts on an item."""

    key: str
    size: int
    etag: str
    version: str | None
    marker: str | None
    trash_key: str | None
    trash_pin: str | None


def default_path() -> Path:
    """Where the state lives unless told otherwise."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("artlens")) / "state.db"


def root_key(root: Path | str) -> bytes:
    """A root's identity in the state file: its absolute path as raw bytes."""
    return os.fsencode(os.path.abspath(os.fspath(root)))


def _rel(relpath: str) -> str:
    """Normalise a relative path as the index writes it: POSIX, no leading './' or '/'."""
    text = relpath.replace(os.sep, "/") if os.sep != "/" else relpath
    while text.startswith("./"):
        text = text[2:]
    return text.strip("/")


class UserState:
    """Pins and notes, one small SQLite file shared by every process of one user."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UserStateError(f"cannot open user state {self.path}: {exc}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> UserState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise UserStateError(f"cannot write user state {self.path}: {exc}") from None

    def pin(self, root: Path | str, relpath: str, *, glob: bool | None = None) -> None:
        """Pin a run, an artifact, or (``glob=True``, or any of ``*?[`` when not said) a glob."""
        rel = _rel(relpath)
        is_glob = bool(GLOB_CHARS & set(rel)) if glob is None else glob
        self._write(
            "INSERT OR REPLACE INTO pins (root, path, is_glob, created) VALUES (?, ?, ?, ?)",
            (root_key(root), key(rel), int(is_glob), time.time()),
        )

    def unpin(self, root: Path | str, relpath: str) -> bool:
        """Remove a pin; True when there was one."""
        return (
            self._write(
                "DELETE FROM pins WHERE root = ? AND path = ?", (root_key(root), key(_rel(relpath)))
            )
            > 0
        )

    def pins(self, root: Path | str) -> set[str]:
        """Every pinned path or glob under ``root``."""
        return {pin.path for pin in self.pin_entries(root)}

    def pin_entries(self, root: Path | str) -> list[Pin]:
        rows = self._conn.execute(
            "SELECT path, is_glob FROM pins WHERE root = ? ORDER BY path", (root_key(root),)
        ).fetchall()
        return [Pin(unkey(bytes(path)), bool(is_glob)) for path, is_glob in rows]

    def is_pinned(self, root: Path | str, relpath: str) -> bool:
        """True when ``relpath`` or a folder holding it is pinned, by path or by glob."""
        from store.retention.globs import compile_globs

        rel = _rel(relpath)
        entries = self.pin_entries(root)
        exact = {pin.path for pin in entries if not pin.is_glob}
        parts = rel.split("/")
        if any("/".join(parts[:i]) in exact for i in range(1, len(parts) + 1)):
            return True
        matcher = compile_globs([pin.path for pin in entries if pin.is_glob])
        return matcher is not None and matcher.matches_path_or_parent(rel)

    def set_note(self, root: Path | str, relpath: str, text: str) -> None:
        """Attach a note to a run or an artifact; an empty text removes it."""
        rel_key = key(_rel(relpath))
        if not text:
            self._write("DELETE FROM notes WHERE root = ? AND path = ?", (root_key(root), rel_key))
            return
        self._write(
            "INSERT OR REPLACE INTO notes (root, path, text, updated) VALUES (?, ?, ?, ?)",
            (root_key(root), rel_key, text, time.time()),
        )

    def note(self, root: Path | str, relpath: str) -> str | None:
        row = self._conn.execute(
            "SELECT text FROM notes WHERE root = ? AND path = ?",
            (root_key(root), key(_rel(relpath))),
        ).fetchone()
        return None if row is None else str(row[0])

    def notes(self, root: Path | str) -> dict[str, str]:
        """Every note under ``root``, by relative path."""
        rows = self._conn.execute(
            "SELECT path, text FROM notes WHERE root = ? ORDER BY path", (root_key(root),)
        ).fetchall()
        return {unkey(bytes(path)): str(text) for path, text in rows}

    def record_trashed(self, url: str, batch: str, objects: list[TrashedObject]) -> None:
        """Keep what the bucket apply of ``batch`` under ``url`` trashed, in one
        transaction."""
        rows = [
            (url, batch, o.key, o.size, o.etag, o.version, o.marker, o.trash_key, o.trash_pin)
            for o in objects
        ]
        now = time.time()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO bucket_trash (url, batch, key, size, etag, version,"
                    " marker, trash_key, trash_pin, recorded) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(*row, now) for row in rows],
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise UserStateError(f"cannot write user state {self.path}: {exc}") from None

    def trashed(self, url: str, batch: str) -> dict[str, TrashedObject]:
        """What the bucket apply of ``batch`` under ``url`` recorded here, by key (empty:
        no apply of it on this machine)."""
        try:
            rows = self._conn.execute(
                "SELECT key, size, etag, version, marker, trash_key, trash_pin FROM bucket_trash"
                " WHERE url = ? AND batch = ?",
                (url, batch),
            ).fetchall()
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise UserStateError(f"cannot read user state {self.path}: {exc}") from None
        return {str(row[0]): TrashedObject(*row) for row in rows}
