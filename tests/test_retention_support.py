"""Helpers for the retention tests: fill a real index from a real tree on disk.

The scanner (``store.scan``) is the normal way; these tests index the tree themselves so
they say exactly which runs exist and which status each has (live or finished), and so
they run without the scanner.  Every row comes from an ``lstat`` of a real file.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import sqlite_utils
import xxhash

from store.index.db import open_db, write_transaction
from store.kinds import classify
from store.paths import display, key
from store.retention.trash import TRASH_DIR


def write(path: Path, data: bytes = b"x", *, age: float | None = 3600.0) -> Path:
    """A real file, with its mtime ``age`` seconds in the past (at rest, not being written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age is not None:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def index_tree(
    db: sqlite_utils.Database,
    root: Path,
    runs: dict[str, tuple[str, str]],
    *,
    metrics: dict[str, str] | None = None,
) -> int:
    """Index every file and link under ``root``; ``runs`` maps run folder -> (framework,
    status).  Returns the root id."""
    now = time.time()
    root_abs = os.path.abspath(root)
    with write_transaction(db) as conn:
        conn.execute(
            "INSERT INTO roots (path, display, added_at) VALUES (?, ?, ?)",
            (key(root_abs), display(root_abs), now),
        )
        root_id = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        run_ids: dict[str, int] = {}
        for run_path, (framework, status) in runs.items():
            conn.execute(
                "INSERT INTO runs (root_id, path, name, framework, status, metrics, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    root_id,
                    key(run_path),
                    run_path.rsplit("/", 1)[-1] or ".",
                    framework,
                    status,
                    (metrics or {}).get(run_path, "{}"),
                    now,
                ),
            )
            run_ids[run_path] = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        for folder, dirs, files in os.walk(root_abs):
            rel_folder = os.path.relpath(folder, root_abs).replace(os.sep, "/")
            rel_folder = "" if rel_folder == "." else rel_folder
            if rel_folder == TRASH_DIR:
                dirs[:] = []
                continue
            names = list(files) + [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            for name in names:
                rel = f"{rel_folder}/{name}" if rel_folder else name
                if rel == ".artlens.toml":
                    continue
                st = os.lstat(os.path.join(folder, name))
                is_link = stat.S_ISLNK(st.st_mode)
                owner = max(
                    (r for r in run_ids if r == "" or rel.startswith(r + "/")),
                    key=len,
                    default=None,
                )
                conn.execute(
                    "INSERT INTO artifacts (root_id, run_id, path, parent, name, kind, ftype, "
                    "link_target, size, mtime_ns, inode, dev, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        root_id,
                        None if owner is None else run_ids[owner],
                        key(rel),
                        key(rel_folder),
                        display(name),
                        classify(rel),
                        "symlink" if is_link else "file",
                        display(os.readlink(os.path.join(folder, name))) if is_link else None,
                        st.st_size,
                        st.st_mtime_ns,
                        st.st_ino,
                        st.st_dev,
                        now,
                        now,
                    ),
                )
    return root_id


def snapshot(root: Path) -> dict[str, str]:
    """xxh3 of every regular file under ``root`` (links by target), trash included."""
    found: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, root)
            if name == "manifest.jsonl":
                continue
            if os.path.islink(full):
                found[rel] = "link:" + os.readlink(full)
            else:
                found[rel] = xxhash.xxh3_128(Path(full).read_bytes()).hexdigest()
    return found


def new_db(tmp_path: Path) -> sqlite_utils.Database:
    return open_db(tmp_path / "index.db")


def test_index_tree_records_every_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "run" / "a.ckpt", b"abc")
    os.symlink("a.ckpt", root / "run" / "last.ckpt")
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"run": ("lightning", "finished")})
    rows = db.conn.execute(
        "SELECT path, ftype, size FROM artifacts WHERE root_id = ? ORDER BY path", (root_id,)
    ).fetchall()
    assert [(bytes(p), f) for p, f, _ in rows] == [
        (b"run/a.ckpt", "file"),
        (b"run/last.ckpt", "symlink"),
    ]
    assert rows[0][2] == 3
    db.conn.close()
