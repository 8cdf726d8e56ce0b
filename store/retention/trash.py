"""Apply a plan by moving items to a trash that loses nothing; restore; purge.

Every item is re-checked just before it moves (``lstat``: same size, mtime_ns and inode as
in the plan, not written in the last seconds, no symlink on the way, inside its root) and
then renamed into ``<root>/.artlens-trash/<batch>/<relative path>``: the same filesystem,
so the move is atomic and frees nothing until ``purge``.  Where a rename cannot work
(EXDEV: a mount inside the root) the item is copied, verified by xxh3 and only then
removed.  Nothing is ever deleted silently.

The write-ahead manifest ``<root>/.artlens-trash/manifest.jsonl`` is the truth: an intent
line (fsynced) before each move, a done line after.  After a SIGKILL, ``recover`` settles
every intent by looking at the disk, so every file is either in place or in the trash and
recorded.  The index (``retention_actions``, ``artifacts``, ``events``) follows the manifest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlite_utils

from store.db import write_transaction
from store.hashing import hash_file
from store.kinds import classify
from store.paths import key, prefix_range
from store.retention.candidates import Candidate
from store.retention.plan import Plan

TRASH_DIR = ".artlens-trash"
MANIFEST = "manifest.jsonl"
PARTIAL_SUFFIX = ".artlens-partial"
SETTLE_SECONDS = 5.0
"""An item modified more recently than this is being written: it is skipped."""

Progress = Callable[[int, int, str], None]
"""Called as (done, total, relative path) after each item."""

State = Literal[
    "pending", "trashed", "dropped", "restoring", "restored", "purging", "purged", "missing"
]


class TrashError(Exception):
    """A trash operation that cannot start; the message is one line."""


class Skip(Exception):
    """One item is left alone, with the reason."""


@dataclass
class TrashEntry:
    """One item the trash knows about, as the manifest records it."""

    id: str
    batch: str
    root: str
    path: str
    trash_path: str
    """Relative to the root, inside ``.artlens-trash``."""
    is_dir: bool
    size: int
    trashed_at: float
    state: State
    method: str = "rename"
    reasons: list[str] = field(default_factory=list)
    plan: str | None = None
    run_id: int | None = None
    note: str | None = None
    """Why it was dropped or is missing, when it was."""


@dataclass
class ItemResult:
    root: str
    path: str
    outcome: Literal["trashed", "skipped", "restored", "purged"]
    reason: str
    size: int = 0
    entry_id: str | None = None


@dataclass
class Report:
    """What an apply, restore or purge did, item by item."""

    done: list[ItemResult] = field(default_factory=list)
    skipped: list[ItemResult] = field(default_factory=list)

    @property
    def bytes_done(self) -> int:
        return sum(item.size for item in self.done)


# --- the manifest -------------------------------------------------------------------------


class Manifest:
    """The append-only, fsynced log of one root's trash, held under an exclusive lock."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.trash = os.path.join(root, TRASH_DIR)
        self.path = os.path.join(self.trash, MANIFEST)
        try:
            _mkdir_no_follow(root, TRASH_DIR)
            self.fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
            )
        except OSError as exc:
            raise TrashError(f"cannot open the trash of {root}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            size = os.fstat(self.fd).st_size
            if size and os.pread(self.fd, 1, size - 1) != b"\n":
                os.write(self.fd, b"\n")  # a torn last line stays alone on its line
        except OSError as exc:
            os.close(self.fd)
            raise TrashError(f"cannot lock {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        os.close(self.fd)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        os.write(self.fd, line.encode("utf-8", "surrogatepass"))
        os.fsync(self.fd)

    def entries(self) -> dict[str, TrashEntry]:
        return read_manifest(self.root, self.fd)


def read_manifest(root: str, fd: int | None = None) -> dict[str, TrashEntry]:
    """Every entry of a root's trash, replayed from the manifest (torn lines ignored)."""
    path = os.path.join(root, TRASH_DIR, MANIFEST)
    try:
        if fd is None:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                return {}
            with open(path, "rb") as src:
                data = src.read()
        else:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
    except OSError:
        return {}
    entries: dict[str, TrashEntry] = {}
    for raw in data.split(b"\n"):
        try:
            record = json.loads(raw.decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(record, dict):
            continue
        _replay(entries, root, record)
    return entries


_NEXT_STATE: dict[str, State] = {
    "done": "trashed",
    "dropped": "dropped",
    "missing": "missing",
    "restore-intent": "restoring",
    "restored": "restored",
    "restore-dropped": "trashed",
    "purge-intent": "purging",
    "purged": "purged",
}


def _replay(entries: dict[str, TrashEntry], root: str, record: dict[str, Any]) -> None:
    op, entry_id = record.get("op"), record.get("id")
    if not isinstance(entry_id, str):
        return
    if op == "intent":
        try:
            entries[entry_id] = TrashEntry(
                entry_id,
                str(record["batch"]),
                root,
                str(record["path"]),
                str(record["trash"]),
                bool(record["is_dir"]),
                int(record["size"]),
                float(record["ts"]),
                "pending",
                str(record.get("method", "rename")),
                [str(r) for r in record.get("reasons", [])],
                record.get("plan"),
                record.get("run_id"),
            )
        except (KeyError, TypeError, ValueError):
            return
        return
    entry = entries.get(entry_id)
    if entry is None or not isinstance(op, str) or op not in _NEXT_STATE:
        return
    entry.state = _NEXT_STATE[op]
    if "method" in record:
        entry.method = str(record["method"])
    if "why" in record:
        entry.note = str(record["why"])


# --- path safety ---------------------------------------------------------------------------


def _mkdir_no_follow(base: str, rel: str) -> str:
    """Create ``base/rel`` folder by folder, refusing any component that is a symlink."""
    current = base
    for part in rel.split("/"):
        if not part:
            continue
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, f"{current} is not a folder (a symlink?)")
    return current


def _check_rel(rel: str) -> None:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Skip(f"not a clean relative path: {rel!r}")
    if parts[0] == TRASH_DIR:
        raise Skip("inside the trash")


def _checked_parent(root: str, rel: str) -> str:
    """The item's folder, after checking no folder on the way is a symlink (no way out)."""
    _check_rel(rel)
    current = root
    for part in rel.split("/")[:-1]:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            raise Skip("vanished (its folder is gone)") from None
        except OSError as exc:
            raise Skip(f"cannot check {part!r}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise Skip(f"the path goes through a symlink ({part!r}); never followed")
        if not stat.S_ISDIR(st.st_mode):
            raise Skip(f"{part!r} is not a folder any more")
    real = os.path.realpath(current)
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        raise Skip("outside its root")
    return current


def _walk(top: str, rel_top: str) -> dict[str, os.stat_result]:
    """Every file and link below ``top`` by root-relative path, links never followed."""
    found: dict[str, os.stat_result] = {}
    stack = [(top, rel_top)]
    while stack:
        folder, rel_folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                rel = f"{rel_folder}/{entry.name}"
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((entry.path, rel))
                else:
                    found[rel] = st
    return found


def _verify_unchanged(item: Candidate, full: str, now: float, settle: float) -> None:
    """Raise Skip unless the item on disk is exactly what the plan saw, and is at rest."""
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        raise Skip("vanished since the plan") from None
    except OSError as exc:
        raise Skip(f"cannot check: {exc.strerror or exc}") from None
    if item.is_dir:
        if not stat.S_ISDIR(st.st_mode):
            raise Skip("no longer a folder")
        try:
            found = _walk(full, item.path)
        except OSError as exc:
            raise Skip(f"cannot list the folder: {exc.strerror or exc}") from None
        planned = {m.path: m for m in item.members}
        extra = sorted(set(found) - set(planned))
        missing = sorted(set(planned) - set(found))
        if extra:
            raise Skip(f"changed since the plan: {len(extra)} new file(s), e.g. {extra[0]!r}")
        if missing:
            raise Skip(f"changed since the plan: {len(missing)} file(s) gone")
        for rel, fst in found.items():
            member = planned[rel]
            if (fst.st_size, fst.st_mtime_ns, fst.st_ino) != (
                member.size,
                member.mtime_ns,
                member.inode,
            ):
                raise Skip(f"changed since the plan: {rel!r}")
            _check_settled(fst, now, settle)
        return
    if stat.S_ISDIR(st.st_mode):
        raise Skip("now a folder")
    if item.ftype == "symlink" and not stat.S_ISLNK(st.st_mode):
        raise Skip("no longer a symlink")
    if item.ftype != "symlink" and not stat.S_ISREG(st.st_mode):
        raise Skip("not a regular file any more")
    if (st.st_size, st.st_mtime_ns, st.st_ino) != (item.size, item.mtime_ns, item.inode):
        raise Skip("changed since the plan (size, mtime or inode differ)")
    _check_settled(st, now, settle)


def _check_settled(st: os.stat_result, now: float, settle: float) -> None:
    age = now - st.st_mtime_ns / 1e9
    if age < settle:
        raise Skip(f"being written (modified {max(age, 0.0):.1f}s ago)")


# --- moving --------------------------------------------------------------------------------


def _copy_verified(src: str, dst: str) -> None:
    """Copy ``src`` (file, link or folder) to ``dst`` and check every byte by xxh3."""
    partial = dst + PARTIAL_SUFFIX
    _remove_any(partial)
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        shutil.copytree(src, partial, symlinks=True)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), partial)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, partial, follow_symlinks=False)
    else:
        raise OSError(errno.EINVAL, "not a file, link or folder")
    _same_content(src, partial)
    if stat.S_ISREG(st.st_mode):
        fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.rename(partial, dst)


def _same_content(a: str, b: str) -> None:
    sa = os.lstat(a)
    if stat.S_ISDIR(sa.st_mode):
        left, right = _walk(a, ""), _walk(b, "")
        if set(left) != set(right):
            raise OSError(errno.EIO, "copy verification failed: file lists differ")
        for rel in left:
            _same_content(a + rel, b + rel)
        return
    if stat.S_ISLNK(sa.st_mode):
        if os.readlink(a) != os.readlink(b):
            raise OSError(errno.EIO, "copy verification failed: link targets differ")
        return
    ha, hb = hash_file(a), hash_file(b)
    if ha.digest is None or ha.digest != hb.digest:
        raise OSError(errno.EIO, f"copy verification failed for {a}")


def _remove_any(path: str) -> None:
    """Delete a file, link or folder without following links; absent is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):

        def writable_then_retry(func: Callable[..., Any], target: str, _: Any) -> None:
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(target), 0o700)
            func(target)

        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=writable_then_retry)
        else:  # pragma: no cover - before 3.12 the hook is onerror
            shutil.rmtree(path, onerror=writable_then_retry)
    else:
        os.unlink(path)


def _move(src: str, dst: str) -> str:
    """Rename, or copy + verify + remove across filesystems; the method used."""
    try:
        os.rename(src, dst)
        return "rename"
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    _copy_verified(src, dst)
    _remove_any(src)
    return "copy"


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({exc.strerror}): its folder is read-only for this user"
    if exc.errno == errno.EROFS:
        return "read-only filesystem"
    if exc.errno == errno.ENOENT:
        return "vanished"
    if exc.errno == errno.ENOSPC:
        return "no space left for the copy"
    return exc.strerror or str(exc)


def _real_root(root: str) -> str:
    real = os.path.realpath(root)
    try:
        if not stat.S_ISDIR(os.lstat(real).st_mode):
            raise TrashError(f"root is not a folder: {root}")
    except OSError as exc:
        raise TrashError(f"root unavailable: {root} ({exc.strerror or exc})") from None
    return real


@contextlib.contextmanager
def _manifest(root: str) -> Iterator[Manifest]:
    manifest = Manifest(root)
    try:
        yield manifest
    finally:
        manifest.close()


# --- public operations ---------------------------------------------------------------------


def apply_plan(
    plan: Plan,
    db: sqlite_utils.Database | None = None,
    *,
    progress: Progress | None = None,
    settle_seconds: float = SETTLE_SECONDS,
    clock: Callable[[], float] = time.time,
    policy: str | None = None,
) -> Report:
    """Move every removal of ``plan`` to its root's trash, re-checking each one first."""
    report = Report()
    removals = plan.removals
    by_root: dict[str, list[Candidate]] = {}
    for item in removals:
        by_root.setdefault(item.root, []).append(item)
    done_count = 0
    for root_arg, items in by_root.items():
        try:
            root = _real_root(root_arg)
            context = _manifest(root)
            manifest = context.__enter__()
        except TrashError as exc:
            for item in items:
                report.skipped.append(ItemResult(root_arg, item.path, "skipped", str(exc)))
                done_count += 1
                if progress:
                    progress(done_count, len(removals), item.path)
            continue
        try:
            _recover_open(manifest, db, root_arg)
            batch = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(clock()))}-{plan.id[-8:]}"
            for item in items:
                result = _trash_one(
                    manifest, root, root_arg, batch, item, plan, db, settle_seconds, clock, policy
                )
                (report.done if result.outcome == "trashed" else report.skipped).append(result)
                done_count += 1
                if progress:
                    progress(done_count, len(removals), item.path)
        finally:
            context.__exit__(None, None, None)
    return report


def _trash_one(
    manifest: Manifest,
    root: str,
    root_arg: str,
    batch: str,
    item: Candidate,
    plan: Plan,
    db: sqlite_utils.Database | None,
    settle: float,
    clock: Callable[[], float],
    policy: str | None,
) -> ItemResult:
    try:
        parent = _checked_parent(root, item.path)
        full = os.path.join(parent, item.path.rsplit("/", 1)[-1])
        _verify_unchanged(item, full, clock(), settle)
        trash_rel = f"{TRASH_DIR}/{batch}/{item.path}"
        try:
            _mkdir_no_follow(root, trash_rel.rsplit("/", 1)[0])
        except OSError as exc:
            raise Skip(f"cannot create the trash folder: {_why(exc)}") from None
    except Skip as skip:
        return ItemResult(root_arg, item.path, "skipped", str(skip))
    entry_id = uuid.uuid4().hex
    now = clock()
    manifest.append(
        {
            "op": "intent",
            "id": entry_id,
            "batch": batch,
            "ts": now,
            "path": item.path,
            "trash": trash_rel,
            "is_dir": item.is_dir,
            "size": item.size,
            "mtime_ns": item.mtime_ns,
            "inode": item.inode,
            "reasons": item.reasons,
            "plan": plan.id,
            "run_id": item.run_id,
        }
    )
    try:
        method = _move(full, os.path.join(root, trash_rel))
    except OSError as exc:
        why = _why(exc)
        # A failed copy fallback may leave a partial copy; the original is untouched.
        _remove_any(os.path.join(root, trash_rel) + PARTIAL_SUFFIX)
        manifest.append({"op": "dropped", "id": entry_id, "ts": clock(), "why": why})
        return ItemResult(root_arg, item.path, "skipped", why)
    if db is not None:
        # Index first, then the done line: a kill in between leaves an intent that recover
        # settles, and recording is idempotent.
        _record_trash(
            db,
            root_arg,
            item.path,
            item.is_dir,
            item.size,
            trash_rel,
            now,
            "; ".join(item.reasons),
            policy,
        )
    manifest.append({"op": "done", "id": entry_id, "ts": clock(), "method": method})
    return ItemResult(root_arg, item.path, "trashed", "; ".join(item.reasons), item.size, entry_id)


def _root_id(db: sqlite_utils.Database, root: str) -> int | None:
    row = db.conn.execute("SELECT id FROM roots WHERE path = ?", (key(root),)).fetchone()
    return None if row is None else int(row[0])


def _already_recorded(conn: Any, root_id: int, action: str, trash_rel: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM retention_actions WHERE root_id = ? AND action = ? AND trash_path = ?",
        (root_id, action, key(trash_rel)),
    ).fetchone()
    return row is not None


def _record_trash(
    db: sqlite_utils.Database,
    root: str,
    rel: str,
    is_dir: bool,
    size: int,
    trash_rel: str,
    ts: float,
    reason: str,
    policy: str | None,
) -> None:
    """Index follows manifest: the action, the artifact rows gone, one event per row."""
    root_id = _root_id(db, root)
    if root_id is None:
        return
    rel_key = key(rel)
    lo, hi = prefix_range(rel_key)
    with write_transaction(db) as conn:
        if _already_recorded(conn, root_id, "trash", trash_rel):
            return
        rows = conn.execute(
            "SELECT id, run_id, path, size FROM artifacts WHERE root_id = ? AND "
            "(path = ? OR (? AND path >= ? AND path < ?))",
            (root_id, rel_key, int(is_dir), lo, hi),
        ).fetchall()
        conn.execute(
            "INSERT INTO retention_actions (ts, root_id, path, size, action, policy, reason, "
            "trash_path) VALUES (?, ?, ?, ?, 'trash', ?, ?, ?)",
            (ts, root_id, rel_key, size, policy, reason, key(trash_rel)),
        )
        for art_id, run_id, path, art_size in rows:
            conn.execute("DELETE FROM artifacts WHERE id = ?", (art_id,))
            conn.execute(
                "INSERT INTO events (ts, kind, root_id, run_id, path) "
                "VALUES (?, 'removed', ?, ?, ?)",
                (ts, root_id, run_id, path),
            )
            if run_id is not None:
                conn.execute(
                    "UPDATE runs SET size_bytes = max(0, size_bytes - ?), "
                    "n_artifacts = max(0, n_artifacts - 1) WHERE id = ?",
                    (art_size, run_id),
                )


def _record_restore(db: sqlite_utils.Database, root: str, entry: TrashEntry, ts: float) -> None:
    """Put the restored files back in the index (kinds by name; the hasher refills hashes)."""
    root_id = _root_id(db, root)
    if root_id is None:
        return
    full = os.path.join(root, entry.path)
    try:
        st = os.lstat(full)
        files = _walk(full, entry.path) if stat.S_ISDIR(st.st_mode) else {entry.path: st}
    except OSError:
        return
    run_id = entry.run_id
    if run_id is not None:
        found = db.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
        run_id = run_id if found else None
    with write_transaction(db) as conn:
        if _already_recorded(conn, root_id, "restore", entry.trash_path):
            return
        conn.execute(
            "INSERT INTO retention_actions (ts, root_id, path, size, action, reason, trash_path) "
            "VALUES (?, ?, ?, ?, 'restore', 'restored by user', ?)",
            (ts, root_id, key(entry.path), entry.size, key(entry.trash_path)),
        )
        for rel, fst in files.items():
            rel_key = key(rel)
            is_link = stat.S_ISLNK(fst.st_mode)
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (root_id, run_id, path, parent, name, kind, "
                "ftype, link_target, size, mtime_ns, inode, dev, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    root_id,
                    run_id,
                    rel_key,
                    key(rel.rsplit("/", 1)[0] if "/" in rel else ""),
                    _display(rel.rsplit("/", 1)[-1]),
                    classify(rel),
                    "symlink" if is_link else "file",
                    _display(os.readlink(os.path.join(root, rel))) if is_link else None,
                    fst.st_size,
                    fst.st_mtime_ns,
                    fst.st_ino,
                    fst.st_dev,
                    ts,
                    ts,
                ),
            )
            conn.execute(
                "INSERT INTO events (ts, kind, root_id, run_id, path) VALUES (?, 'added', ?, ?, ?)",
                (ts, root_id, run_id, rel_key),
            )
            if run_id is not None:
                conn.execute(
                    "UPDATE runs SET size_bytes = size_bytes + ?, n_artifacts = n_artifacts + 1 "
                    "WHERE id = ?",
                    (fst.st_size, run_id),
                )


def _display(name: str) -> str:
    from store.paths import display

    return display(name)


def recover(
    root: str | os.PathLike[str], db: sqlite_utils.Database | None = None
) -> list[TrashEntry]:
    """Settle what a killed apply, restore or purge left half-done; return those entries."""
    root_arg = os.path.abspath(os.fspath(root))
    real = _real_root(root_arg)
    if not os.path.lexists(os.path.join(real, TRASH_DIR, MANIFEST)):
        return []
    with _manifest(real) as manifest:
        return _recover_open(manifest, db, root_arg)


def _recover_open(
    manifest: Manifest, db: sqlite_utils.Database | None, root_arg: str
) -> list[TrashEntry]:
    root = manifest.root
    settled: list[TrashEntry] = []
    for entry in manifest.entries().values():
        if entry.state not in ("pending", "restoring", "purging"):
            continue
        original = os.path.join(root, entry.path)
        trashed = os.path.join(root, entry.trash_path)
        in_place, in_trash = os.path.lexists(original), os.path.lexists(trashed)
        now = time.time()
        if entry.state == "pending":
            _remove_any(trashed + PARTIAL_SUFFIX)
            if in_trash:
                if in_place:
                    # The verified copy landed; finish removing the original it matches.
                    _remove_any(original)
                manifest.append({"op": "done", "id": entry.id, "ts": now, "recovered": True})
                entry.state = "trashed"
                if db is not None:
                    _record_trash(
                        db,
                        root_arg,
                        entry.path,
                        entry.is_dir,
                        entry.size,
                        entry.trash_path,
                        entry.trashed_at,
                        "; ".join(entry.reasons),
                        None,
                    )
            elif in_place:
                manifest.append(
                    {
                        "op": "dropped",
                        "id": entry.id,
                        "ts": now,
                        "why": "interrupted before the move",
                    }
                )
                entry.state = "dropped"
            else:
                manifest.append(
                    {
                        "op": "missing",
                        "id": entry.id,
                        "ts": now,
                        "why": "neither in place nor in the trash after a crash",
                    }
                )
                entry.state = "missing"
        elif entry.state == "restoring":
            _remove_any(original + PARTIAL_SUFFIX)
            if in_place and not in_trash:
                manifest.append({"op": "restored", "id": entry.id, "ts": now})
                entry.state = "restored"
                if db is not None:
                    _record_restore(db, root_arg, entry, now)
            else:
                manifest.append({"op": "restore-dropped", "id": entry.id, "ts": now})
                entry.state = "trashed"
        else:
            _remove_any(trashed)
            manifest.append({"op": "purged", "id": entry.id, "ts": now})
            entry.state = "purged"
        settled.append(entry)
    return settled


def list_trash(root: str | os.PathLike[str], *, include_gone: bool = False) -> list[TrashEntry]:
    """What the trash of ``root`` holds (with restored/purged/dropped ones if asked)."""
    real = os.path.realpath(os.fspath(root))
    entries = sorted(read_manifest(real).values(), key=lambda e: (e.trashed_at, e.path))
    if include_gone:
        return entries
    return [e for e in entries if e.state in ("trashed", "pending", "restoring", "purging")]


def restore(
    root: str | os.PathLike[str],
    ids: Iterable[str] | Literal["all"] = "all",
    db: sqlite_utils.Database | None = None,
    *,
    progress: Progress | None = None,
) -> Report:
    """Move trashed items back, byte-identical; refuse where something now takes the place."""
    root_arg = os.path.abspath(os.fspath(root))
    real = _real_root(root_arg)
    report = Report()
    with _manifest(real) as manifest:
        _recover_open(manifest, db, root_arg)
        entries = manifest.entries()
        wanted = (
            [e for e in entries.values() if e.state == "trashed"]
            if ids == "all"
            else [entries[i] for i in ids if i in entries]
        )
        for count, entry in enumerate(wanted, 1):
            result = _restore_one(manifest, real, root_arg, entry, db)
            (report.done if result.outcome == "restored" else report.skipped).append(result)
            if progress:
                progress(count, len(wanted), entry.path)
    return report


def _restore_one(
    manifest: Manifest,
    root: str,
    root_arg: str,
    entry: TrashEntry,
    db: sqlite_utils.Database | None,
) -> ItemResult:
    def skip(reason: str) -> ItemResult:
        return ItemResult(root_arg, entry.path, "skipped", reason, entry.size, entry.id)

    if entry.state != "trashed":
        return skip(f"not in the trash (it is {entry.state})")
    trashed = os.path.join(root, entry.trash_path)
    if not os.path.lexists(trashed):
        return skip("its trash copy is gone")
    try:
        parent = _checked_parent(root, entry.path)
    except Skip as exc:
        if "vanished" not in str(exc):
            return skip(str(exc))
        try:
            parent = _mkdir_no_follow(root, entry.path.rsplit("/", 1)[0])
        except OSError as mk:
            return skip(f"cannot recreate its folder: {_why(mk)}")
    original = os.path.join(parent, entry.path.rsplit("/", 1)[-1])
    if os.path.lexists(original):
        return skip("something now occupies the original path")
    manifest.append({"op": "restore-intent", "id": entry.id, "ts": time.time()})
    try:
        _move(trashed, original)
    except OSError as exc:
        _remove_any(original + PARTIAL_SUFFIX)
        manifest.append({"op": "restore-dropped", "id": entry.id, "ts": time.time()})
        return skip(_why(exc))
    now = time.time()
    if db is not None:
        _record_restore(db, root_arg, entry, now)
    manifest.append({"op": "restored", "id": entry.id, "ts": now})
    return ItemResult(root_arg, entry.path, "restored", "restored", entry.size, entry.id)


def purge(
    root: str | os.PathLike[str],
    older_than: float,
    db: sqlite_utils.Database | None = None,
    *,
    now: float | None = None,
    progress: Progress | None = None,
) -> Report:
    """Delete for good the trash entries trashed more than ``older_than`` seconds ago."""
    root_arg = os.path.abspath(os.fspath(root))
    real = _real_root(root_arg)
    now = time.time() if now is None else now
    report = Report()
    if not os.path.lexists(os.path.join(real, TRASH_DIR, MANIFEST)):
        return report
    with _manifest(real) as manifest:
        _recover_open(manifest, db, root_arg)
        due = [
            e
            for e in manifest.entries().values()
            if e.state == "trashed" and e.trashed_at <= now - older_than
        ]
        root_id = _root_id(db, root_arg) if db is not None else None
        for count, entry in enumerate(due, 1):
            manifest.append({"op": "purge-intent", "id": entry.id, "ts": time.time()})
            try:
                _remove_any(os.path.join(real, entry.trash_path))
            except OSError as exc:
                report.skipped.append(
                    ItemResult(root_arg, entry.path, "skipped", _why(exc), entry.size, entry.id)
                )
                continue
            manifest.append({"op": "purged", "id": entry.id, "ts": time.time()})
            report.done.append(
                ItemResult(root_arg, entry.path, "purged", "purged", entry.size, entry.id)
            )
            if db is not None and root_id is not None:
                with write_transaction(db) as conn:
                    conn.execute(
                        "INSERT INTO retention_actions (ts, root_id, path, size, action, reason, "
                        "trash_path) VALUES (?, ?, ?, ?, 'purge', ?, ?)",
                        (
                            time.time(),
                            root_id,
                            key(entry.path),
                            entry.size,
                            f"in the trash longer than {older_than:g}s",
                            key(entry.trash_path),
                        ),
                    )
            if progress:
                progress(count, len(due), entry.path)
        _prune_empty_batches(real)
    return report


def _prune_empty_batches(root: str) -> None:
    """Remove batch folders that purge emptied (bottom-up, never following links)."""
    trash = os.path.join(root, TRASH_DIR)
    for folder, _subdirs, files in os.walk(trash, topdown=False):
        if folder != trash and not files:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
