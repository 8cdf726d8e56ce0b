"""Lineage: identical files across runs (by hash), and the code and environment of a run.

The same path across runs (versions) is ``store.rundiff.versions``.  Everything here reads
the index (hashes, paths, run metadata) except ``git_head``, which reads
``.git/HEAD`` and one ref file near a run: regular files only, a few KiB each, never a
subprocess.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from store import paths
from store.index.query import ArtifactRow, RunRow
from store.safefile import read_capped

MAX_GIT_BYTES = 4096
MAX_PACKED_REFS = 1 << 20
GIT_LEVELS = 32
"""Folders walked up from a run looking for ``.git``."""
MAX_COPIES = 20
"""Other copies listed per file."""
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_REF = re.compile(r"^refs/[A-Za-z0-9._/-]+$")


@dataclass(frozen=True)
class Copy:
    """Another indexed file with the same content as one of a run's files."""

    relpath: str
    """The file in the run we asked about, relative to the run folder."""
    run_id: int | None
    run_name: str | None
    other_path: str
    """The copy: relative to its own run folder when it has a run, else to its root."""
    size: int
    same_run: bool = False

    def describe(self) -> str:
        if self.same_run:
            where = f"{self.other_path} in this run"
        elif self.run_name:
            where = f"run {self.run_name}/{self.other_path}"
        else:
            where = self.other_path
        return f"{self.relpath}: same as {where}"


@dataclass(frozen=True)
class Duplicates:
    """Files of one run whose content is also elsewhere, and the bytes that costs."""

    copies: tuple[Copy, ...]
    files: int
    """Files of this run with at least one copy elsewhere."""
    bytes: int
    """Bytes of this run's files that duplicate a file elsewhere."""


def _rel_to_run(key: bytes, run_path: bytes | None) -> str:
    if run_path and key.startswith(run_path + b"/"):
        key = key[len(run_path) + 1 :]
    return paths.display(key)


def duplicates(db: sqlite_utils.Database, run: RunRow, *, limit: int = MAX_COPIES) -> Duplicates:
    """Identical content (by xxh3-128 hash) of this run's files in other places."""
    copies: list[Copy] = []
    files = total = 0
    run_paths: dict[int, tuple[bytes, str]] = {}
    rows = db.conn.execute(
        "SELECT a.path, a.hash, a.size FROM artifacts a WHERE a.run_id = ? AND a.hash IS NOT NULL"
        " AND a.size > 0 AND EXISTS (SELECT 1 FROM artifacts b WHERE b.hash = a.hash"
        " AND b.id != a.id) ORDER BY a.size DESC, a.path",
        [run.id],
    ).fetchall()
    for path, digest, size in rows:
        files += 1
        total += int(size)
        others = db.conn.execute(
            "SELECT path, run_id, size FROM artifacts WHERE hash = ? AND NOT (run_id IS ? AND"
            " path = ?) ORDER BY run_id IS ?, run_id IS NULL, run_id, path LIMIT 1",
            [digest, run.id, path, run.id],
        ).fetchall()
        for other_path, other_run, other_size in others:
            name, base = None, None
            if other_run is not None:
                if other_run not in run_paths:
                    row = db.conn.execute(
                        "SELECT path, name FROM runs WHERE id = ?", [other_run]
                    ).fetchone()
                    run_paths[other_run] = (bytes(row[0]), str(row[1])) if row else (b"", "?")
                base, name = run_paths[other_run]
            if len(copies) < limit:
                copies.append(
                    Copy(
                        _rel_to_run(bytes(path), run.path),
                        other_run,
                        name,
                        _rel_to_run(bytes(other_path), base),
                        int(other_size),
                        other_run == run.id,
                    )
                )
    return Duplicates(tuple(copies), files, total)


def duplicate_space(db: sqlite_utils.Database) -> tuple[int, int]:
    """(bytes taken by every copy beyond the first, number of duplicated contents) in the index."""
    row = db.conn.execute(
        "SELECT coalesce(sum((n - 1) * size), 0), count(*) FROM (SELECT count(*) AS n,"
        " max(size) AS size FROM artifacts WHERE hash IS NOT NULL AND size > 0"
        " GROUP BY hash HAVING n > 1)"
    ).fetchone()
    return int(row[0]), int(row[1])


def copies_of(
    db: sqlite_utils.Database, artifact: ArtifactRow, *, limit: int = MAX_COPIES
) -> list[Copy]:
    """Other indexed files with the same content as ``artifact`` (other runs first)."""
    if not artifact.hash or artifact.size <= 0:
        return []
    own = db.conn.execute("SELECT path FROM runs WHERE id = ?", [artifact.run_id]).fetchone()
    own_path = bytes(own[0]) if own else None
    found: list[Copy] = []
    for other_path, other_run, other_size, run_path, run_name in db.conn.execute(
        "SELECT a.path, a.run_id, a.size, r.path, r.name FROM artifacts a"
        " LEFT JOIN runs r ON r.id = a.run_id WHERE a.hash = ? AND a.id != ?"
        " ORDER BY a.run_id IS ?, a.run_id IS NULL, a.run_id, a.path LIMIT ?",
        [artifact.hash, artifact.id, artifact.run_id, limit],
    ):
        found.append(
            Copy(
                _rel_to_run(artifact.path, own_path),
                other_run,
                str(run_name) if run_name is not None else None,
                _rel_to_run(bytes(other_path), bytes(run_path) if run_path is not None else None),
                int(other_size),
                other_run is not None and other_run == artifact.run_id,
            )
        )
    return found


# -- code and environment -----------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """What is known about the code and environment a run came from."""

    git_commit: str | None = None
    git_branch: str | None = None
    git_remote: str | None = None
    git_source: str | None = None
    """Where the commit came from: the framework's record or a ``.git`` folder."""
    env_files: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """Other facts the framework recorded: python, host, program, user."""


def _read_small(path: bytes, cap: int = MAX_GIT_BYTES) -> bytes | None:
    """A regular file's first ``cap`` bytes (never a link, FIFO or device); None otherwise."""
    try:
        return read_capped(path, cap)[0]
    except OSError:
        return None


def _git_dir(folder: bytes) -> bytes | None:
    dot_git = os.path.join(folder, b".git")
    try:
        mode = os.lstat(dot_git).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return dot_git
    if stat.S_ISREG(mode):  # a worktree or submodule: "gitdir: <path>"
        data = _read_small(dot_git) or b""
        line = data.split(b"\n", 1)[0].strip()
        if line.startswith(b"gitdir:"):
            target = line[len(b"gitdir:") :].strip()
            target = os.path.normpath(os.path.join(folder, target))
            try:
                if stat.S_ISDIR(os.lstat(target).st_mode):
                    return target
            except OSError:
                return None
    return None


def git_head(start: bytes, *, levels: int = GIT_LEVELS) -> tuple[str, str | None] | None:
    """(commit, branch or None) of the nearest ``.git`` at or above ``start``; None if none."""
    folder = os.path.abspath(start)
    for _ in range(levels):
        git_dir = _git_dir(folder)
        if git_dir is not None:
            return _resolve_head(git_dir)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None


def _resolve_head(git_dir: bytes) -> tuple[str, str | None] | None:
    head = (_read_small(os.path.join(git_dir, b"HEAD")) or b"").decode("ascii", "replace").strip()
    if _SHA.match(head):
        return head, None
    if not head.startswith("ref:"):
        return None
    ref = head[4:].strip()
    if not _REF.match(ref) or ".." in ref.split("/"):
        return None
    branch = ref.removeprefix("refs/heads/")
    loose = _read_small(os.path.join(git_dir, os.fsencode(ref)))
    if loose is not None:
        sha = loose.decode("ascii", "replace").strip()
        return (sha, branch) if _SHA.match(sha) else None
    packed = _read_small(os.path.join(git_dir, b"packed-refs"), MAX_PACKED_REFS) or b""
    for line in packed.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
            return parts[0], branch
    return None


_DETAIL_KEYS = (
    ("python", "python"),
    ("host", "host"),
    ("program", "program"),
    ("source", "source"),
    ("user", "user"),
    ("gpu", "gpu"),
)


def provenance(db: sqlite_utils.Database, run: RunRow, *, read_git: bool = True) -> Provenance:
    """The run's commit (framework record first, else a ``.git`` near it) and environment."""
    meta: dict[str, Any] = run.meta
    commit = _text(meta.get("git_commit"))
    branch = _text(meta.get("git_branch"))
    source = f"{run.framework} record" if commit else None
    if commit is None and read_git:
        found = git_head(run.abs_path)
        if found is not None:
            commit, branch = found[0], branch or found[1]
            source = ".git near the run"
    env = [
        _rel_to_run(bytes(row[0]), run.path)
        for row in db.conn.execute(
            "SELECT path FROM artifacts WHERE run_id = ? AND kind = 'env' ORDER BY path LIMIT 20",
            [run.id],
        )
    ]
    details = tuple(
        (label, paths.display(str(meta[key]))[:200])
        for key, label in _DETAIL_KEYS
        if _text(meta.get(key))
    )
    return Provenance(commit, branch, _text(meta.get("git_remote")), source, tuple(env), details)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = paths.display(str(value)).strip()
    return text[:300] or None
