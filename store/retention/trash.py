"""Apply a plan by moving items to a trash that loses nothing; restore; purge.

Nothing outside the root is ever changed.  Every move, copy and delete happens relative to
folder fds opened from the root down with ``O_DIRECTORY | O_NOFOLLOW`` (``store.fsops``),
so no path from a plan, the manifest or the disk is resolved through a symlink or above
the root; what is moved is checked by (device, inode) through those fds against the plan,
before and after the move.  Every item is re-checked just before it moves (same type,
size, mtime_ns and inode as in the plan, ctime not after the plan was made, not written in
the last seconds) and renamed into ``<root>/.artlens-trash/<batch>/<relative path>``: the
same filesystem, so the move is atomic and frees nothing until ``purge``.  Where a rename
cannot work (EXDEV: a mount inside the root) the item is copied by fd, verified by xxh3
and only then removed.  Nothing is ever deleted silently.

The write-ahead manifest ``<root>/.artlens-trash/manifest.jsonl`` is the truth: an intent
line (fsynced) before each move, a done line after.  After a SIGKILL, ``recover`` settles
every intent by looking at the disk, so every file is either in place or in the trash and
recorded.  The manifest sits in a folder others may write, so it is untrusted input: every
line is validated (``path`` a clean relative path outside the trash, ``trash`` exactly
``.artlens-trash/<batch>/<path>`` with a batch name in artlens's own format) and a line
that fails is reported with its number and never acted on.  A trash folder that is a
symlink or belongs to another user is refused.  The index (``retention_actions``,
``artifacts``, ``events``) follows the manifest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import sqlite3
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlite_utils

from store import fsops
from store.errors import ArtlensError
from store.index import write
from store.index.db import write_transaction
from store.kinds import classify
from store.paths import display, key, parent_key, prefix_range
from store.retention import audit
from store.retention.candidates import Candidate
from store.retention.jsonl import TORN, json_lines
from store.retention.plan import Pins, PinSource, Plan, PlanError, _Nesting, _pins_for
from store.retention.policy import Policy
from store.root import is_url

TRASH_DIR = ".artlens-trash"
MANIFEST = "manifest.jsonl"
PARTIAL_SUFFIX = ".artlens-partial"
SETTLE_SECONDS = 5.0
"""An item modified more recently than this is being written: it is skipped."""
MAX_MANIFEST_BYTES = 256 << 20
"""A manifest larger than this is read only up to here (the rest is reported)."""

BATCH_RE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")
"""The only batch folder names artlens creates: UTC time and 8 hex digits."""
ID_RE = re.compile(r"[0-9a-f]{32}")
"""Entry ids: uuid4 hex."""

Progress = Callable[[int, int, str], None]
"""Called as (done, total, relative path) after each item."""

State = Literal[
    "pending", "trashed", "dropped", "restoring", "restored", "purging", "purged", "missing"
]


class TrashError(ArtlensError):
    """A trash operation that cannot start; the message is one line."""


class TrashRefused(TrashError):
    """The trash folder itself is unsafe (a symlink, another user's): nothing is done."""


class Skip(Exception):
    """One item is left alone, with the reason."""


@dataclass
class TrashEntry:
    """One item the trash knows about, as the manifest records it (validated)."""

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
    inode: int | None = None
    """The item's inode when it was planned (a rename keeps it)."""
    mtime_ns: int | None = None


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
    warnings: list[str] = field(default_factory=list)
    """Manifest lines that failed validation (one line each, with the line number)."""

    @property
    def bytes_done(self) -> int:
        return sum(item.size for item in self.done)


# --- opening the trash ----------------------------------------------------------------------


def _real_path(root: str) -> str:
    """``realpath`` of a local root; an object-store URL is refused, never resolved as a
    path (``s3://b`` would be ./s3:/b in the working folder)."""
    if is_url(root):
        raise TrashError(f"{root}: an object-store root keeps its trash in the bucket")
    return os.path.realpath(root)


def _real_root(root: str) -> str:
    real = _real_path(root)
    try:
        if not stat.S_ISDIR(os.lstat(real).st_mode):
            raise TrashError(f"root is not a folder: {root}")
    except OSError as exc:
        raise TrashError(f"root unavailable: {root} ({exc.strerror or exc})") from None
    return real


def _open_root(real: str) -> int:
    try:
        return fsops.open_root(real)
    except OSError as exc:
        raise TrashError(f"root unavailable: {real} ({exc.strerror or exc})") from None


def _check_owner(st: os.stat_result, what: str) -> None:
    uid = os.geteuid()
    if st.st_uid != uid:
        raise TrashRefused(
            f"{what} belongs to uid {st.st_uid}, not to you (uid {uid}); refusing to use it"
        )


def open_trash(root_fd: int, root: str, *, create: bool) -> int | None:
    """An fd on ``root/.artlens-trash`` (made when ``create``), or None when absent.

    ``TrashRefused`` when it is a symlink or belongs to someone else; ``TrashError`` when
    it is not a folder.
    """
    where = os.path.join(root, TRASH_DIR)
    if create:
        try:
            os.mkdir(TRASH_DIR, 0o700, dir_fd=root_fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise TrashError(f"cannot open the trash of {root}: {exc.strerror or exc}") from None
    try:
        fd = os.open(TRASH_DIR, fsops.O_DIR, dir_fd=root_fd)
    except FileNotFoundError:
        if create:
            raise TrashError(f"cannot open the trash of {root}: it vanished") from None
        return None
    except OSError as exc:
        try:
            st = fsops.lstat_at(root_fd, TRASH_DIR)
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise TrashRefused(f"{where} is a symlink; refusing to use it") from None
        raise TrashError(f"cannot open the trash of {root}: {exc.strerror or exc}") from None
    try:
        _check_owner(os.fstat(fd), where)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_manifest(trash_fd: int, root: str, *, write: bool) -> int | None:
    flags = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    flags |= os.O_RDWR | os.O_APPEND | os.O_CREAT if write else os.O_RDONLY
    where = os.path.join(root, TRASH_DIR, MANIFEST)
    try:
        fd = os.open(MANIFEST, flags, 0o600, dir_fd=trash_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TrashRefused(f"{where} is a symlink; refusing to use it") from None
        raise TrashError(f"cannot open {where}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TrashRefused(f"{where} is not a regular file; refusing to use it")
        _check_owner(st, where)
    except BaseException:
        os.close(fd)
        raise
    return fd


# --- the manifest -------------------------------------------------------------------------


class Manifest:
    """One root's trash, opened by fd, with its append-only fsynced log under a lock."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.trash = os.path.join(root, TRASH_DIR)
        self.path = os.path.join(self.trash, MANIFEST)
        self.root_fd = _open_root(root)
        self.trash_fd = -1
        self.fd = -1
        try:
            self.trash_fd = open_trash(self.root_fd, root, create=True) or -1
            fd = _open_manifest(self.trash_fd, root, write=True)
            if fd is None:
                raise TrashError(f"cannot open {self.path}")
            self.fd = fd
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            size = os.fstat(self.fd).st_size
            if size and os.pread(self.fd, 1, size - 1) != b"\n":
                os.write(self.fd, b"\n")  # a torn last line stays alone on its line
        except OSError as exc:
            self.close()
            raise TrashError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise
        self.warnings: list[str] = []

    def close(self) -> None:
        for fd in (self.fd, self.trash_fd, self.root_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.trash_fd = self.root_fd = -1

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        os.write(self.fd, line.encode("utf-8", "surrogatepass"))
        os.fsync(self.fd)

    def entries(self) -> dict[str, TrashEntry]:
        entries, self.warnings = parse_manifest(_read_capped_fd(self.fd), self.root)
        self.warnings += still_in_trash(self.trash_fd, entries)
        return entries


def _read_capped_fd(fd: int) -> bytes:
    size = min(os.fstat(fd).st_size, MAX_MANIFEST_BYTES)
    return os.pread(fd, size, 0)


def read_manifest(root: str, fd: int | None = None) -> dict[str, TrashEntry]:
    """Every valid entry of a root's trash, replayed from the manifest."""
    return read_manifest_checked(root)[0]


def read_manifest_checked(root: str) -> tuple[dict[str, TrashEntry], list[str]]:
    """Every valid entry, and one line per manifest line that was skipped.

    ``TrashRefused`` when the trash folder or the manifest is a symlink or someone else's.
    """
    real = _real_path(root)
    try:
        root_fd = fsops.open_root(real)
    except OSError:
        return {}, []
    try:
        trash_fd = open_trash(root_fd, real, create=False)
        if trash_fd is None:
            return {}, []
        try:
            fd = _open_manifest(trash_fd, real, write=False)
            if fd is None:
                return {}, []
            try:
                data = _read_capped_fd(fd)
            finally:
                os.close(fd)
            entries, problems = parse_manifest(data, real)
            problems += still_in_trash(trash_fd, entries)
        finally:
            os.close(trash_fd)
    except TrashRefused:
        raise
    except (TrashError, OSError):
        return {}, []
    finally:
        os.close(root_fd)
    return entries, problems


def still_in_trash(trash_fd: int, entries: dict[str, TrashEntry]) -> list[str]:
    """Entries the manifest says were restored or purged whose item is still in its place
    in the trash (the very file, for a rename) are trashed after all; one line each.

    Restore and purge write those lines only once the item has left the trash, so a line
    that says otherwise was added by hand, and would hide a file no one could list, restore
    or purge.  Presence is all it takes: a hand-made intent line can name any file in the
    trash already, so this trusts nothing more than the manifest did.
    """
    problems = []
    for entry in entries.values():
        if entry.state not in ("restored", "purged"):
            continue
        parts = [entry.batch, *entry.path.split("/")]
        try:
            with fsops.opened_dir(trash_fd, parts[:-1]) as folder:
                st = fsops.lstat_at(folder, parts[-1])
        except OSError:
            continue  # gone, as the manifest says
        if entry.method == "rename" and entry.inode is not None and st.st_ino != entry.inode:
            continue
        problems.append(
            f"{TRASH_DIR}/{MANIFEST}: {display(entry.path)} is said to be {entry.state} but is "
            "still in the trash; listed as trashed"
        )
        entry.state = "trashed"
    return problems


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


class BadLine(Exception):
    """A manifest line that fails validation; the message says which field."""


def check_item_path(rel: object) -> list[str]:
    """The parts of an item path a manifest or plan names: clean, relative, not the trash."""
    if not isinstance(rel, str):
        raise BadLine("'path' is not a string")
    try:
        parts = fsops.parts_of(rel)
    except fsops.UnsafePath as exc:
        raise BadLine(f"'path' is {exc}") from None
    if parts[0] == TRASH_DIR:
        raise BadLine("'path' is inside the trash")
    return parts


def _intent(record: dict[str, Any], root: str) -> TrashEntry:
    entry_id = record.get("id")
    if not isinstance(entry_id, str) or not ID_RE.fullmatch(entry_id):
        raise BadLine("'id' is not an artlens entry id")
    batch = record.get("batch")
    if not isinstance(batch, str) or not BATCH_RE.fullmatch(batch):
        raise BadLine("'batch' is not an artlens batch name")
    rel = record.get("path")
    check_item_path(rel)
    assert isinstance(rel, str)
    if record.get("trash") != f"{TRASH_DIR}/{batch}/{rel}":
        raise BadLine(f"'trash' is not {TRASH_DIR}/<batch>/<path> of this entry")
    is_dir, size, ts = record.get("is_dir"), record.get("size"), record.get("ts")
    if not isinstance(is_dir, bool):
        raise BadLine("'is_dir' is not true or false")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadLine("'size' is not a byte count")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        raise BadLine("'ts' is not a time")
    method = record.get("method", "rename")
    reasons = record.get("reasons", [])
    plan, run_id = record.get("plan"), record.get("run_id")
    inode, mtime_ns = record.get("inode"), record.get("mtime_ns")
    if method not in ("rename", "copy"):
        raise BadLine("'method' is not rename or copy")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise BadLine("'reasons' is not a list of text")
    if plan is not None and not isinstance(plan, str):
        raise BadLine("'plan' is not text")
    for name, value in (("run_id", run_id), ("inode", inode), ("mtime_ns", mtime_ns)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadLine(f"{name!r} is not a number")
    return TrashEntry(
        entry_id,
        batch,
        root,
        rel,
        f"{TRASH_DIR}/{batch}/{rel}",
        is_dir,
        size,
        float(ts),
        "pending",
        method,
        reasons[:50],
        plan,
        run_id,
        inode=inode,
        mtime_ns=mtime_ns,
    )


def parse_manifest(data: bytes, root: str) -> tuple[dict[str, TrashEntry], list[str]]:
    """Replay manifest lines into entries; each line that fails is reported and skipped."""
    entries: dict[str, TrashEntry] = {}
    problems: list[str] = []
    for number, record in json_lines(data):
        try:
            if record is TORN:
                raise BadLine("not JSON (a torn write?)")
            if not isinstance(record, dict):
                raise BadLine("not a JSON object")
            _replay(entries, root, record)
        except BadLine as exc:
            problems.append(f"{TRASH_DIR}/{MANIFEST} line {number}: {exc}; skipped")
    return entries, problems


def _replay(entries: dict[str, TrashEntry], root: str, record: dict[str, Any]) -> None:
    op, entry_id = record.get("op"), record.get("id")
    if op == "intent":
        entry = _intent(record, root)
        if entry.id in entries:
            raise BadLine("a second intent for the same id")
        entries[entry.id] = entry
        return
    if not isinstance(op, str) or op not in _NEXT_STATE:
        raise BadLine("unknown 'op'")
    if not isinstance(entry_id, str):
        raise BadLine("'id' is not text")
    found = entries.get(entry_id)
    if found is None:
        raise BadLine("'id' names no entry")
    found.state = _NEXT_STATE[op]
    method = record.get("method")
    if op == "done" and method in ("rename", "copy"):
        found.method = str(method)
    why = record.get("why")
    if isinstance(why, str):
        found.note = why[:500]


# --- checks -------------------------------------------------------------------------------


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({exc.strerror}): its folder is read-only for this user"
    if exc.errno == errno.EROFS:
        return "read-only filesystem"
    if exc.errno == errno.ENOENT:
        return "vanished"
    if exc.errno == errno.ENOSPC:
        return "no space left for the copy"
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "the path goes through a symlink or a non-folder; never followed"
    return exc.strerror or str(exc)


@contextlib.contextmanager
def _folder(
    base_fd: int, parts: list[str], create: bool, why: tuple[str, str, str]
) -> Iterator[int]:
    """The folder fd at ``parts`` below ``base_fd``, reached without following links; a
    ``Skip`` with ``why`` (gone, through a link, cannot open) when it cannot be had."""
    gone, linked, cannot = why
    try:
        fd = fsops.open_dir(base_fd, parts, create=create)
    except FileNotFoundError:
        raise Skip(gone) from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Skip(linked) from None
        raise Skip(f"{cannot}: {_why(exc)}") from None
    try:
        yield fd
    finally:
        os.close(fd)


_ORIGINAL_FOLDER = (
    "vanished (its folder is gone)",
    "the path goes through a symlink or a non-folder; never followed",
    "cannot open its folder",
)
_TRASH_FOLDER = (
    "its trash copy is gone",
    "its trash folder is a symlink or not a folder; never followed",
    "cannot open its trash folder",
)


def _parent_of(
    base_fd: int, parts: list[str], *, create: bool = False
) -> contextlib.AbstractContextManager[int]:
    """The folder fd holding ``parts``' last component, reached without following links."""
    return _folder(base_fd, parts[:-1], create, _ORIGINAL_FOLDER)


def _same(st: os.stat_result, size: int, mtime_ns: int, inode: int) -> bool:
    return (st.st_size, st.st_mtime_ns, st.st_ino) == (size, mtime_ns, inode)


def _check_quiet(st: os.stat_result, rel: str, now: float, settle: float, plan_ns: int) -> None:
    """Skip what changed after the plan (ctime catches a same-size rewrite with its mtime
    put back) or is still being written."""
    if plan_ns and st.st_ctime_ns > plan_ns:
        raise Skip(f"changed since the plan (ctime of {rel!r} is after the plan)")
    age = now - st.st_mtime_ns / 1e9
    if age < settle:
        raise Skip(f"being written (modified {max(age, 0.0):.1f}s ago)")


def _verify_unchanged(
    item: Candidate, parent: int, name: str, now: float, settle: float, plan_ns: int
) -> os.stat_result:
    """The item's lstat, through its folder fd, if it is exactly what the plan saw and at
    rest; else Skip."""
    try:
        st = fsops.lstat_at(parent, name)
    except FileNotFoundError:
        raise Skip("vanished since the plan") from None
    except OSError as exc:
        raise Skip(f"cannot check: {exc.strerror or exc}") from None
    if item.is_dir:
        if not stat.S_ISDIR(st.st_mode):
            raise Skip("no longer a folder")
        try:
            with fsops.opened_dir(parent, [name]) as folder:
                here = os.fstat(folder)
                if (here.st_dev, here.st_ino) != (st.st_dev, st.st_ino):
                    raise Skip("swapped while being checked")
                found = fsops.walk_at(folder, item.path)
        except OSError as exc:
            raise Skip(f"cannot list the folder: {_why(exc)}") from None
        planned = {m.path: m for m in item.members}
        extra = sorted(set(found) - set(planned))
        missing = sorted(set(planned) - set(found))
        if extra:
            raise Skip(f"changed since the plan: {len(extra)} new file(s), e.g. {extra[0]!r}")
        if missing:
            raise Skip(f"changed since the plan: {len(missing)} file(s) gone")
        for rel, fst in found.items():
            member = planned[rel]
            if not _same(fst, member.size, member.mtime_ns, member.inode):
                raise Skip(f"changed since the plan: {rel!r}")
            if (member.ftype == "symlink") != stat.S_ISLNK(fst.st_mode):
                raise Skip(f"changed since the plan: {rel!r} changed type")
            _check_quiet(fst, rel, now, settle, plan_ns)
        return st
    if stat.S_ISDIR(st.st_mode):
        raise Skip("now a folder")
    if item.ftype == "symlink" and not stat.S_ISLNK(st.st_mode):
        raise Skip("no longer a symlink")
    if item.ftype != "symlink" and not stat.S_ISREG(st.st_mode):
        raise Skip("not a regular file any more")
    if not _same(st, item.size, item.mtime_ns, item.inode):
        raise Skip("changed since the plan (size, mtime or inode differ)")
    _check_quiet(st, item.path, now, settle, plan_ns)
    return st


# --- moving --------------------------------------------------------------------------------


def _move_at(src_dir: int, dst_dir: int, name: str, expect: os.stat_result) -> str:
    """Move ``name`` from one folder fd to another, keeping its name; the method used.

    The moved object is checked by (dev, inode) after a rename and put back when it is not
    ``expect`` (something swapped in at the last moment).  Across filesystems it is copied
    by fd, verified and only then removed, after checking its identity again.
    """
    if fsops.exists_at(dst_dir, name):
        raise OSError(errno.EEXIST, "something already occupies the target")
    try:  # never replaces what appears at the target after that check
        fsops.rename_noreplace(src_dir, name, dst_dir, name)
    except FileExistsError:
        raise OSError(errno.EEXIST, "something already occupies the target") from None
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    else:
        moved = fsops.lstat_at(dst_dir, name)
        if (moved.st_dev, moved.st_ino) != (expect.st_dev, expect.st_ino):
            with contextlib.suppress(FileExistsError):
                fsops.rename_noreplace(dst_dir, name, src_dir, name)
            raise OSError(errno.EAGAIN, "swapped for another file during the move; put back")
        return "rename"
    partial = name + PARTIAL_SUFFIX
    fsops.remove_at(dst_dir, partial)
    try:
        fsops.copy_at(src_dir, name, dst_dir, partial)
        if fsops.digest_at(src_dir, name) != fsops.digest_at(dst_dir, partial):
            raise OSError(errno.EIO, "copy verification failed")
        now = fsops.lstat_at(src_dir, name)
        if (now.st_dev, now.st_ino) != (expect.st_dev, expect.st_ino):
            raise OSError(errno.EAGAIN, "swapped for another file during the copy")
        fsops.rename_noreplace(dst_dir, partial, dst_dir, name)
    except BaseException:
        with contextlib.suppress(OSError):
            fsops.remove_at(dst_dir, partial)
        raise
    fsops.remove_at(src_dir, name)
    return "copy"


def _batch_name(plan: Plan, now: float) -> str:
    tail = plan.id[-8:]
    if not re.fullmatch(r"[0-9a-f]{8}", tail):
        tail = uuid.uuid4().hex[:8]
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{tail}"


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
    index: sqlite_utils.Database | None = None,
    pins: PinSource | None = None,
) -> Report:
    """Move every removal of ``plan`` to its root's trash, re-checking each one first.

    ``index`` (default ``db``, the writer's connection) is the index the plan is checked
    against: a root it does not hold refuses the whole plan (``PlanError``), and a removal
    it does not hold as planned is skipped.  With neither, nothing is checked against an
    index: only for a plan this process just made from it.  Before a run's first move,
    every unit the plan keeps in that run is checked on disk: when one is gone or changed
    the run's removals are all skipped, so a stale plan never leaves a run with nothing.
    With ``pins`` (the user's), a removal pinned now (itself, a folder above it, or a file
    inside it) is skipped: a pin made after the plan still keeps what it names.

    Refused as a whole (``TrashRefused``, ``audit.NotAnOwner``, ``PlanError``) before
    anything moves when a root's trash is unsafe, the root names owners and this user is
    not one of them, or the index does not hold a root the plan names.
    """
    report = Report()
    removals = plan.removals
    by_root: dict[str, list[Candidate]] = {}
    for item in removals:
        if is_url(item.root):
            # never a local path (it would resolve in the working folder): buckets have
            # their own trash (store.retention.bucket.apply_candidates)
            reason = "an object-store root: apply it with `artlens retention apply`"
            report.skipped.append(ItemResult(item.root, item.path, "skipped", reason))
            continue
        by_root.setdefault(item.root, []).append(item)
    index = db if index is None else index
    unheld: dict[int, str] = {}
    if index is not None:
        root_ids = check_plan_roots(plan, index)
        for root_arg, items in by_root.items():
            unheld.update(_unheld(index, root_ids[root_arg], items))
    for root_arg in by_root:
        _precheck(root_arg, owners_only=True)
    kept = _kept_by_run(plan, removals)
    # a pin protects a file whichever indexed root it was made in (roots that nest)
    nesting = _Nesting(index) if index is not None and pins is not None else None
    done_count = 0
    for root_arg, items in by_root.items():
        try:
            root = _real_root(root_arg)
            context = _manifest(root)
            manifest = context.__enter__()
        except TrashRefused:
            raise
        except TrashError as exc:
            for item in items:
                report.skipped.append(ItemResult(root_arg, item.path, "skipped", str(exc)))
                done_count += 1
                if progress:
                    progress(done_count, len(removals), item.path)
            continue
        try:
            _recover_open(manifest, db, root_arg)
            report.warnings += manifest.warnings
            batch = _batch_name(plan, clock())
            root_report = Report()
            root_pins = _pins_for(root_arg, pins, Policy(), nesting) if pins is not None else None
            run_verdicts: dict[tuple[str, int, str], str | None] = {}
            for item in items:
                run = (item.root, item.run_id, item.run_path)
                if run not in run_verdicts:  # just before the run's first move
                    run_verdicts[run] = _kept_changed(manifest.root_fd, kept.get(run, ()))
                why = unheld.get(id(item)) or run_verdicts[run] or _pinned_now(root_pins, item)
                if why is not None:
                    result = ItemResult(root_arg, item.path, "skipped", why)
                else:
                    result = _trash_one(
                        manifest, root_arg, batch, item, plan, db, settle_seconds, clock, policy
                    )
                (root_report.done if result.outcome == "trashed" else root_report.skipped).append(
                    result
                )
                done_count += 1
                if progress:
                    progress(done_count, len(removals), item.path)
            report.done += root_report.done
            report.skipped += root_report.skipped
            audit.append(manifest.trash_fd, "apply", root_report, plan=plan.id)
        finally:
            context.__exit__(None, None, None)
    if db is not None:
        settle_runs(db)
    return report


def _pinned_now(pins: Pins | None, item: Candidate) -> str | None:
    """Why a removal is kept after all: it is pinned now, or a file inside it is."""
    if not pins:
        return None
    if pins.covers(item.path):
        return "pinned; retention never removes it"
    for member in item.members if item.is_dir else ():
        if pins.covers(member.path):
            return f"{display(member.path)} inside it is pinned; retention never removes it"
    return None


def check_plan_roots(plan: Plan, index: sqlite_utils.Database) -> dict[str, int]:
    """The index's id of every folder root ``plan`` names; ``PlanError`` (one line naming
    the root) when ``index`` does not hold one, compared as the index stores a root: its
    absolute, normalised path.  A hand-edited plan can name any folder; only the roots of
    this index are ever acted on.  Bucket roots are checked by their own apply."""
    indexed = {
        bytes(path): int(root_id)
        for root_id, path in index.conn.execute("SELECT id, path FROM roots")
    }
    found: dict[str, int] = {}
    for root in dict.fromkeys(item.root for item in plan.items):
        if root in found or is_url(root):
            continue
        try:
            root_key = key(root) if os.path.normpath(root) == root else None
        except UnicodeEncodeError:
            root_key = None
        root_id = indexed.get(root_key) if root_key and root.startswith("/") else None
        if root_id is None:
            raise PlanError(
                f"plan {display(plan.id)} names {display(root)}, which is not a root of "
                "this index: nothing moved"
            )
        found[root] = root_id
    return found


_PATHS_A_QUERY = 500
"""Removals looked up in the index by one query (SQLite takes 32,766 parameters)."""
_UNHELD = (
    "not in the index (never indexed, or gone from it since the plan); re-index and plan again"
)
_OTHER_ROW = (
    "the index holds {what} with another size, mtime, inode or type than the plan says; "
    "re-index and plan again"
)


def _unheld(index: sqlite_utils.Database, root_id: int, items: list[Candidate]) -> dict[int, str]:
    """Why each removal the index does not hold exactly as planned is skipped, by
    ``id(item)``: a file's row (same path, size, mtime_ns, inode and type), a folder's
    rows (every member, and no other row below it).  A stale plan is skipped item by item
    like anything else that changed since; only a root the index lacks refuses it all."""
    conn = index.conn
    why: dict[int, str] = {}
    files: dict[bytes, Candidate] = {}
    folders: list[tuple[bytes, Candidate]] = []
    for item in items:
        try:
            item_key = key(item.path)
        except UnicodeEncodeError:
            why[id(item)] = _UNHELD
            continue
        if item.is_dir:
            folders.append((item_key, item))
        elif item_key in files:
            why[id(item)] = "listed twice in the plan"
        else:
            files[item_key] = item
    keys = list(files)
    for start in range(0, len(keys), _PATHS_A_QUERY):  # a query per chunk, not per file
        chunk = keys[start : start + _PATHS_A_QUERY]
        for path, *identity in conn.execute(
            "SELECT path, size, mtime_ns, inode, ftype FROM artifacts WHERE root_id = ? "
            f"AND path IN ({', '.join('?' * len(chunk))})",
            (root_id, *chunk),
        ):
            item = files.pop(bytes(path))
            if tuple(identity) != (item.size, item.mtime_ns, item.inode, item.ftype):
                why[id(item)] = _OTHER_ROW.format(what="it")
    for item in files.values():  # those no row answered
        why[id(item)] = _UNHELD
    for item_key, item in folders:
        low, high = prefix_range(item_key)
        rows = {
            bytes(path): (size, mtime_ns, inode, ftype)
            for path, size, mtime_ns, inode, ftype in conn.execute(
                "SELECT path, size, mtime_ns, inode, ftype FROM artifacts "
                "WHERE root_id = ? AND path >= ? AND path < ?",
                (root_id, low, high),
            )
        }
        if not item.members or not rows:
            why[id(item)] = _UNHELD
            continue
        for member in item.members:
            try:
                found = rows.pop(key(member.path), None)
            except UnicodeEncodeError:
                found = None
            if found is None:
                why[id(item)] = f"{_UNHELD} ({display(member.path)} in it)"
                break
            if found != (member.size, member.mtime_ns, member.inode, member.ftype):
                why[id(item)] = _OTHER_ROW.format(what=display(member.path))
                break
        else:
            if rows:
                extra = display(os.fsdecode(min(rows)))
                why[id(item)] = (
                    f"the index holds files in it the plan does not list (e.g. {extra}); "
                    "re-index and plan again"
                )
    return why


def _kept_by_run(
    plan: Plan, removals: list[Candidate]
) -> dict[tuple[str, int, str], list[Candidate]]:
    """The units ``plan`` keeps in each run it removes from."""
    runs = {(item.root, item.run_id, item.run_path) for item in removals}
    kept: dict[tuple[str, int, str], list[Candidate]] = {}
    for item in plan.items:
        if item.keep:
            run = (item.root, item.run_id, item.run_path)
            if run in runs:
                kept.setdefault(run, []).append(item)
    return kept


_RUN_SKIPPED = "run skipped; re-index and plan again"


def _kept_changed(root_fd: int, kept: Iterable[Candidate]) -> str | None:
    """Why a run's removals must wait, or None: a unit the plan keeps in it is gone or
    changed since the plan (a file: same type, size, mtime_ns and inode; a checkpoint
    folder: still a folder, not a link, and not empty).  A stat per kept unit, their
    folders opened once each, by fd from the root down."""
    by_folder: dict[tuple[str, ...], list[tuple[str, Candidate]]] = {}
    for unit in kept:
        try:
            parts = check_item_path(unit.path)
        except BadLine:
            return f"kept {display(unit.path)} is not a clean relative path: {_RUN_SKIPPED}"
        by_folder.setdefault(tuple(parts[:-1]), []).append((parts[-1], unit))
    for folder, units in by_folder.items():
        try:
            folder_fd = fsops.open_dir(root_fd, list(folder))
        except FileNotFoundError:
            return f"kept {display(units[0][1].path)} is gone since the plan: {_RUN_SKIPPED}"
        except OSError as exc:
            return (
                f"kept {display(units[0][1].path)} cannot be checked ({_why(exc)}): {_RUN_SKIPPED}"
            )
        try:
            for name, unit in units:
                why = _kept_unit_changed(folder_fd, name, unit)
                if why is not None:
                    return f"kept {display(unit.path)} {why}: {_RUN_SKIPPED}"
        finally:
            os.close(folder_fd)
    return None


def _kept_unit_changed(folder_fd: int, name: str, unit: Candidate) -> str | None:
    """What is wrong with one kept unit now, or None when it is as planned."""
    try:
        st = fsops.lstat_at(folder_fd, name)
    except FileNotFoundError:
        return "is gone since the plan"
    except OSError as exc:
        return f"cannot be checked ({_why(exc)})"
    if unit.is_dir:
        if not stat.S_ISDIR(st.st_mode):
            return "is no longer a folder"
        try:
            with fsops.opened_dir(folder_fd, [name]) as fd, os.scandir(fd) as entries:
                if next(entries, None) is None:
                    return "is empty now"
        except OSError as exc:
            return f"cannot be checked ({_why(exc)})"
        return None
    if not (stat.S_ISLNK if unit.ftype == "symlink" else stat.S_ISREG)(st.st_mode):
        return "changed type since the plan"
    if not _same(st, unit.size, unit.mtime_ns, unit.inode):
        return "changed since the plan (size, mtime or inode)"
    return None


def _precheck(root_arg: str, *, owners_only: bool) -> None:
    """Refuse early: an unsafe trash folder, or a user the root's owners do not include."""
    try:
        real = _real_root(root_arg)
    except TrashError:
        return  # reported per item
    root_fd = _open_root(real)
    try:
        try:
            trash_fd = open_trash(root_fd, real, create=False)
        except TrashRefused:
            raise
        except TrashError:
            trash_fd = None  # not a folder: reported per item
        if trash_fd is not None:
            os.close(trash_fd)
        if owners_only:
            audit.check_owner(root_fd, real)
    finally:
        os.close(root_fd)


def _trash_one(
    manifest: Manifest,
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
        try:
            parts = check_item_path(item.path)
        except BadLine as exc:
            why = str(exc).replace("'path' is inside", "inside")
            raise Skip(why.replace("'path' is", "not a clean relative path:")) from None
        name = parts[-1]
        trash_rel = f"{TRASH_DIR}/{batch}/{item.path}"
        with _parent_of(manifest.root_fd, parts) as parent:
            st = _verify_unchanged(
                item, parent, name, clock(), settle, int(plan.created * 1e9) if plan.created else 0
            )
            try:
                tdir = fsops.open_dir(manifest.trash_fd, [batch, *parts[:-1]], create=True)
            except OSError as exc:
                raise Skip(f"cannot create the trash folder: {_why(exc)}") from None
            try:
                return _move_one(
                    manifest,
                    root_arg,
                    batch,
                    item,
                    plan,
                    db,
                    clock,
                    policy,
                    parent,
                    tdir,
                    st,
                    trash_rel,
                )
            finally:
                os.close(tdir)
    except Skip as skip:
        return ItemResult(root_arg, item.path, "skipped", str(skip))


def _move_one(
    manifest: Manifest,
    root_arg: str,
    batch: str,
    item: Candidate,
    plan: Plan,
    db: sqlite_utils.Database | None,
    clock: Callable[[], float],
    policy: str | None,
    parent: int,
    tdir: int,
    st: os.stat_result,
    trash_rel: str,
) -> ItemResult:
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
            "inode": st.st_ino,
            "reasons": item.reasons,
            "plan": plan.id,
            "run_id": item.run_id,
        }
    )
    name = item.path.rsplit("/", 1)[-1]
    try:
        method = _move_at(parent, tdir, name, st)
    except OSError as exc:
        why = _why(exc)
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
    related = _related_roots(db, root)
    with write_transaction(db) as conn:
        write.record_trash(
            conn,
            root_id,
            rel_key,
            prefix_range(rel_key) if is_dir else None,
            size,
            key(trash_rel),
            ts,
            reason,
            policy,
        )
        # the same files in every other root that holds them (roots that nest, or one
        # folder under two names) went too: a fresh index of those roots has no rows for
        # them, whether or not this move was recorded before (a replayed manifest)
        for _, other_id, mapping in related:
            there = mapping(rel)
            if there is None:
                continue
            there_key = key(there)
            write.forget_moved(
                conn, other_id, there_key, prefix_range(there_key) if is_dir else None, ts
            )


def _related_roots(
    db: sqlite_utils.Database, root: str
) -> list[tuple[str, int, Callable[[str], str | None]]]:
    """(root, its id, how a path of ``root`` reads in it) of every other indexed root that
    holds files of ``root``: around it, inside it, or the same folder under another name.
    A path that root does not hold maps to None (a file outside an inner root, or a folder
    that holds the inner root itself, which a fresh index would not find either way)."""
    (roots,) = db.conn.execute("SELECT count(*) FROM roots").fetchone()
    if roots < 2:  # the common index of one root: no real path to resolve per move
        return []
    found = []
    for other, mapping in _Nesting(db).related(root):
        other_id = _root_id(db, other)
        if other_id is not None:
            found.append((other, other_id, mapping))
    return found


def settle_runs(db: sqlite_utils.Database) -> None:
    """Bring the runs (and folders) of every root the trash moved files of in line with
    the disk, as a fresh index would find them: their folders are scanned again and their
    runs detected again (``write.note_runs_stale``).  Recording a move takes its rows out
    (or puts them back) without a scan, so a generic run whose last artifact went, or a
    run whose whole folder went, stayed listed, and a run whose files came back was not
    listed again, until a change of structure elsewhere.  A root that cannot be scanned
    now keeps its note: its next scan does it."""
    from pathlib import Path

    from store.index.db import own_files
    from store.scan import Indexer

    ignore = [Path(os.fsdecode(p)) for p in own_files(db)]
    for root, folders in write.stale_roots(db.conn).items():
        # the moves are done and recorded: a scan that fails leaves the note for the next
        with contextlib.suppress(OSError, sqlite3.Error):
            Indexer(db, os.fsdecode(root), ignore_paths=ignore).scan_folders(folders)


def _runs_of(db: sqlite_utils.Database, root: str, root_id: int) -> Callable[[bytes], int | None]:
    """The run id a scan of ``root`` gives a file (by its key), from the runs the index
    holds for that root."""
    if db.conn.execute("SELECT 1 FROM runs WHERE root_id = ? LIMIT 1", (root_id,)).fetchone():
        from pathlib import Path

        from store.runs import RunSync

        sync = RunSync(db, Path(root), root_id)
        sync.prepare({}, structural=False)  # the index's runs, as they stand
        return sync.run_for
    return lambda _key: None


Files = dict[str, tuple[os.stat_result, str | None]]
"""Root-relative path -> (lstat, link target or None), read by fd."""


def _files_at(parent: int, name: str, rel: str) -> Files:
    """What is now at ``parent/name`` (a file, link or folder), for the index."""
    st = fsops.lstat_at(parent, name)
    if not stat.S_ISDIR(st.st_mode):
        link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else None
        return {rel: (st, link)}
    files: Files = {}
    with fsops.opened_dir(parent, [name]) as folder:
        for sub, fst in fsops.walk_at(folder, rel).items():
            link = None
            if stat.S_ISLNK(fst.st_mode):
                inner = sub[len(rel) + 1 :].split("/")
                with contextlib.suppress(OSError), fsops.opened_dir(folder, inner[:-1]) as d:
                    link = os.readlink(inner[-1], dir_fd=d)
            files[sub] = (fst, link)
    return files


def _record_restore(
    db: sqlite_utils.Database, root: str, entry: TrashEntry, ts: float, files: Files
) -> None:
    """Put the restored files back in the index (kinds by name; the hasher refills hashes)."""
    root_id = _root_id(db, root)
    if root_id is None:
        return
    rows = [_restored_row(rel, fst, link) for rel, (fst, link) in files.items()]
    related = _related_roots(db, root)
    with write_transaction(db) as conn:
        recorded = write.record_restore(
            conn,
            root_id,
            key(entry.path),
            entry.size,
            key(entry.trash_path),
            ts,
            entry.run_id,
            rows,
        )
        if not recorded:
            return  # recorded before, with the roots that hold the same files
        # the same files are back in every other root that holds them, in its own runs
        for other, other_id, mapping in related:
            there = {}
            for rel, (fst, link) in files.items():
                mapped = mapping(rel)
                if mapped is not None:
                    there[mapped] = (fst, link)
            if not there:
                continue
            run_of = _runs_of(db, other, other_id)
            write.came_back(
                conn,
                other_id,
                [
                    (run_of(row[0]), *row)
                    for row in (_restored_row(p, fst, link) for p, (fst, link) in there.items())
                ],
                ts,
            )
            top = mapping(entry.path)
            write.note_runs_stale(conn, other_id, parent_key(key(top)) if top else b"")


def _restored_row(
    rel: str, fst: os.stat_result, link: str | None
) -> tuple[bytes, bytes, str, str, str, str | None, int, int, int, int]:
    """The index row of a file back from the trash at ``rel`` (root-relative)."""
    return (
        key(rel),
        key(rel.rsplit("/", 1)[0] if "/" in rel else ""),
        _display(rel.rsplit("/", 1)[-1]),
        classify(rel),
        "symlink" if stat.S_ISLNK(fst.st_mode) else "file",
        _display(link) if link is not None else None,
        fst.st_size,
        fst.st_mtime_ns,
        fst.st_ino,
        fst.st_dev,
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
    if not read_manifest_checked(real)[0]:
        return []
    with _manifest(real) as manifest:
        return _recover_open(manifest, db, root_arg)


def _trash_parent(
    manifest: Manifest, entry: TrashEntry, *, create: bool = False
) -> contextlib.AbstractContextManager[int]:
    """The folder fd, inside the entry's batch folder, that holds its trashed item."""
    parts = [entry.batch, *entry.path.split("/")[:-1]]
    return _folder(manifest.trash_fd, parts, create, _TRASH_FOLDER)


def _present(dir_fd: int | None, name: str) -> bool:
    return dir_fd is not None and fsops.exists_at(dir_fd, name)


@contextlib.contextmanager
def _maybe(context: Any) -> Iterator[int | None]:
    """An fd from ``context``, or None when the folder is not there (or unsafe)."""
    try:
        fd = context.__enter__()
    except Skip:
        yield None
        return
    try:
        yield fd
    finally:
        context.__exit__(None, None, None)


def _recover_open(
    manifest: Manifest, db: sqlite_utils.Database | None, root_arg: str
) -> list[TrashEntry]:
    """Settle interrupted entries.  Only validated entries are looked at, every file
    operation is by fd below the root, and an original is removed only when its trash copy
    is byte-identical and it is the very file the intent named."""
    settled: list[TrashEntry] = []
    for entry in manifest.entries().values():
        if entry.state not in ("pending", "restoring", "purging"):
            continue
        parts = entry.path.split("/")
        name = parts[-1]
        now = time.time()
        with (
            _maybe(_parent_of(manifest.root_fd, parts)) as home,
            _maybe(_trash_parent(manifest, entry)) as tdir,
        ):
            if entry.state == "pending":
                _settle_pending(manifest, db, root_arg, entry, home, tdir, name, now)
            elif entry.state == "restoring":
                if home is not None:
                    with contextlib.suppress(OSError):
                        fsops.remove_at(home, name + PARTIAL_SUFFIX)
                if home is not None and _present(home, name) and not _present(tdir, name):
                    manifest.append({"op": "restored", "id": entry.id, "ts": now})
                    entry.state = "restored"
                    if db is not None:
                        with contextlib.suppress(OSError):
                            files = _files_at(home, name, entry.path)
                            _record_restore(db, root_arg, entry, now, files)
                else:
                    manifest.append({"op": "restore-dropped", "id": entry.id, "ts": now})
                    entry.state = "trashed"
            else:
                if tdir is not None:
                    try:
                        fsops.remove_at(tdir, name)
                    except OSError as exc:
                        manifest.warnings.append(
                            f"{entry.path}: purge not finished ({_why(exc)}); still purging"
                        )
                        continue
                manifest.append({"op": "purged", "id": entry.id, "ts": now})
                entry.state = "purged"
        settled.append(entry)
    return settled


def _settle_pending(
    manifest: Manifest,
    db: sqlite_utils.Database | None,
    root_arg: str,
    entry: TrashEntry,
    home: int | None,
    tdir: int | None,
    name: str,
    now: float,
) -> None:
    if tdir is not None:
        with contextlib.suppress(OSError):
            fsops.remove_at(tdir, name + PARTIAL_SUFFIX)
    in_place, in_trash = _present(home, name), _present(tdir, name)
    if in_trash and in_place:
        assert home is not None and tdir is not None
        # Only a copy fallback leaves both: finish removing the original when it is the
        # file the intent named and the trash holds the same bytes; else leave both.
        try:
            st = fsops.lstat_at(home, name)
            same_file = entry.inode is None or st.st_ino == entry.inode
            same_bytes = fsops.digest_at(home, name) == fsops.digest_at(tdir, name)
        except OSError:
            same_file = same_bytes = False
        if not (same_file and same_bytes):
            why = "both in place and in the trash and they differ; left both"
            manifest.append({"op": "dropped", "id": entry.id, "ts": now, "why": why})
            entry.state = "dropped"
            return
        try:
            fsops.remove_at(home, name)
        except OSError as exc:
            manifest.warnings.append(f"{entry.path}: cannot finish the move ({_why(exc)})")
            return
    if in_trash:
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
        why = "interrupted before the move"
        manifest.append({"op": "dropped", "id": entry.id, "ts": now, "why": why})
        entry.state = "dropped"
    else:
        why = "neither in place nor in the trash after a crash"
        manifest.append({"op": "missing", "id": entry.id, "ts": now, "why": why})
        entry.state = "missing"


def list_trash(root: str | os.PathLike[str], *, include_gone: bool = False) -> list[TrashEntry]:
    """What the trash of ``root`` holds (with restored/purged/dropped ones if asked)."""
    real = _real_path(os.fspath(root))
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
        report.warnings += manifest.warnings
        wanted = (
            [e for e in entries.values() if e.state == "trashed"]
            if ids == "all"
            else [entries[i] for i in ids if i in entries]
        )
        for count, entry in enumerate(wanted, 1):
            result = _restore_one(manifest, root_arg, entry, db)
            (report.done if result.outcome == "restored" else report.skipped).append(result)
            if progress:
                progress(count, len(wanted), entry.path)
        if wanted:
            audit.append(manifest.trash_fd, "restore", report)
    if db is not None:
        settle_runs(db)
    return report


def _restore_one(
    manifest: Manifest,
    root_arg: str,
    entry: TrashEntry,
    db: sqlite_utils.Database | None,
) -> ItemResult:
    def skip(reason: str) -> ItemResult:
        return ItemResult(root_arg, entry.path, "skipped", reason, entry.size, entry.id)

    if entry.state != "trashed":
        return skip(f"not in the trash (it is {entry.state})")
    parts = entry.path.split("/")
    name = parts[-1]
    try:
        with _trash_parent(manifest, entry) as tdir:
            try:
                moving = fsops.lstat_at(tdir, name)
            except FileNotFoundError:
                return skip("its trash copy is gone")
            if (
                entry.method == "rename"
                and entry.inode is not None
                and moving.st_ino != entry.inode
            ):
                return skip("its trash copy is not the file that was trashed; left alone")
            with _parent_of(manifest.root_fd, parts, create=True) as home:
                if fsops.exists_at(home, name):
                    return skip("something now occupies the original path")
                manifest.append({"op": "restore-intent", "id": entry.id, "ts": time.time()})
                try:
                    _move_at(tdir, home, name, moving)
                except OSError as exc:
                    manifest.append({"op": "restore-dropped", "id": entry.id, "ts": time.time()})
                    return skip(_why(exc))
                now = time.time()
                if db is not None:
                    with contextlib.suppress(OSError):
                        _record_restore(db, root_arg, entry, now, _files_at(home, name, entry.path))
    except Skip as exc:
        return skip(str(exc))
    manifest.append({"op": "restored", "id": entry.id, "ts": now})
    return ItemResult(root_arg, entry.path, "restored", "restored", entry.size, entry.id)


def _purged(
    report: Report,
    db: sqlite_utils.Database | None,
    root_id: int | None,
    root_arg: str,
    entry: TrashEntry,
    why: str,
    said: str = "purged",
) -> None:
    """Report ``entry`` purged (saying ``said``), and record it in the index, with ``why``,
    when this process writes it."""
    report.done.append(ItemResult(root_arg, entry.path, "purged", said, entry.size, entry.id))
    if db is not None and root_id is not None:
        with write_transaction(db) as conn:
            write.record_purge(
                conn, root_id, key(entry.path), entry.size, key(entry.trash_path), time.time(), why
            )


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
    _precheck(root_arg, owners_only=True)
    if not read_manifest_checked(real)[0]:
        return report
    with _manifest(real) as manifest:
        settled = _recover_open(manifest, db, root_arg)
        # An earlier purge that did not finish (killed, or a file it could not delete) is
        # finished now whatever its age: part of the item may be gone already.
        due = [
            e
            for e in manifest.entries().values()
            if e.state == "purging" or (e.state == "trashed" and e.trashed_at <= now - older_than)
        ]
        report.warnings += manifest.warnings
        root_id = _root_id(db, root_arg) if db is not None else None
        for entry in settled:
            if entry.state == "purged":  # recovery finished an earlier purge
                finished = "an earlier purge finished"
                _purged(report, db, root_id, root_arg, entry, finished, finished)
        for count, entry in enumerate(due, 1):
            try:
                _purge_one(manifest, entry)
            except Skip as exc:
                report.skipped.append(
                    ItemResult(root_arg, entry.path, "skipped", str(exc), entry.size, entry.id)
                )
                continue
            _purged(
                report, db, root_id, root_arg, entry, f"in the trash longer than {older_than:g}s"
            )
            if progress:
                progress(count, len(due), entry.path)
        _prune_empty_batches(manifest.trash_fd)
        if due:
            audit.append(manifest.trash_fd, "purge", report)
    if db is not None and settled:
        settle_runs(db)
    return report


def _purge_one(manifest: Manifest, entry: TrashEntry) -> None:
    name = entry.path.rsplit("/", 1)[-1]
    try:
        with _trash_parent(manifest, entry) as tdir:
            manifest.append({"op": "purge-intent", "id": entry.id, "ts": time.time()})
            try:
                fsops.remove_at(tdir, name)
            except OSError as exc:
                raise Skip(_why(exc)) from None
    except Skip as exc:
        if str(exc) != "its trash copy is gone":
            raise
    manifest.append({"op": "purged", "id": entry.id, "ts": time.time()})


def _prune_empty_batches(trash_fd: int) -> None:
    """Remove batch folders that purge emptied (bottom-up, by fd, never following links)."""
    with os.scandir(trash_fd) as it:
        batches = [
            e.name for e in it if BATCH_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        ]
    for batch in batches:
        with contextlib.suppress(OSError):
            with fsops.opened_dir(trash_fd, [batch]) as fd:
                fsops.rmdir_empty_below(fd)
            os.rmdir(batch, dir_fd=trash_fd)


def audit_log(root: str | os.PathLike[str]) -> tuple[list[audit.AuditRecord], list[str]]:
    """The audit log of a root's trash (validated records, and one line per line skipped).

    Display only: nothing in it ever drives a file operation.
    """
    real = os.path.realpath(os.fspath(root))
    try:
        root_fd = fsops.open_root(real)
    except OSError:
        return [], []
    try:
        trash_fd = open_trash(root_fd, real, create=False)
        if trash_fd is None:
            return [], []
        try:
            return audit.read_audit(trash_fd)
        finally:
            os.close(trash_fd)
    finally:
        os.close(root_fd)
