"""What a run's files are on disk now, against what the index recorded about them.

A run diff answers from hashes the index took when it last looked: a config edited, a
model saved again or a file added since would compare as the old file, and a diff that
says "equal" when a config changed is the worst answer it can give.  Each indexed file is
checked against its recorded (size, mtime_ns, inode) with the ``lstat`` the listing of the
run's folders makes anyway; a file that moved on is hashed again from disk within a
budget, and files the index never saw are found by that same listing.  Nothing here reads
the index: the caller hands over its rows.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from store import paths

MAX_LISTED = 250_000
"""Entries listed in one run's folders; past it, files not listed may be new (unknown)."""
MAX_REHASH_BYTES = 1 << 30
"""Bytes of changed files hashed again in one diff (both runs); past it, by size only."""
REHASH_SECONDS = 5.0
"""Time the hashing again may take in one diff; past it, the rest compare by size only."""

Drift = Literal["modified", "new", "vanished", "unreadable"]


class Indexed(NamedTuple):
    """One of a run's files as the index recorded it."""

    key: bytes
    """Relative to the root."""
    size: int
    mtime_ns: int
    inode: int
    ftype: str
    """``file`` or ``symlink``."""
    target: str | None
    """A symlink's printable target."""
    digest: str | None
    """The content hash when the index settled one, else None."""


@dataclass(frozen=True)
class Moved:
    """A file whose disk state is not what the index holds."""

    key: bytes
    change: Drift
    indexed_size: int | None
    disk_size: int | None
    unhashed: str | None
    """Why the disk version was not hashed (it then compares by size only); None when it was
    hashed, or there is nothing to hash (vanished)."""


@dataclass
class Rehash:
    """The budget for hashing changed files again, shared by both runs of a diff."""

    max_file_bytes: int | None = None
    """The user's hash size cap (``[index] hash_max_size``), if any."""
    max_total_bytes: int = MAX_REHASH_BYTES
    seconds: float = REHASH_SECONDS
    spent: int = 0
    started: float = field(default_factory=time.monotonic)

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.seconds


@dataclass
class DiskState:
    """A run's files as the diff should compare them: the index's where the disk agrees,
    the disk's where it moved on."""

    files: dict[bytes, tuple[int, str | None]]
    """Key -> (size, hash or ``symlink:<target>``; None when unknown)."""
    moved: list[Moved]
    incomplete: list[str]
    """Why the listing of the run's folders is not whole (files it missed are unknown)."""


def disk_state(
    root: bytes,
    folders: Sequence[bytes],
    indexed: Sequence[Indexed],
    *,
    skip_folders: Collection[bytes] = (),
    skip_paths: Collection[bytes] = (),
    skip_dir_names: Collection[bytes] = (),
    elsewhere: Callable[[list[bytes]], set[bytes]] = lambda keys: set(),
    budget: Rehash | None = None,
    max_listed: int = MAX_LISTED,
) -> DiskState:
    """Compare a run's indexed files with the disk under ``root``.

    ``folders`` are the run's folders (keys; a key naming a file is that one file),
    listed without following symlinks; ``skip_folders`` are other runs' folders inside
    them, ``skip_paths`` absolute paths never indexed (the index's own files) and
    ``skip_dir_names`` folder names the scan never enters.  ``elsewhere(keys)`` says which
    of the unindexed files found belong to another run after all.
    """
    budget = budget if budget is not None else Rehash()
    listed: dict[bytes, os.stat_result] = {}
    walked: set[bytes] = set()
    incomplete: list[str] = []
    for folder in folders:
        if not _inside(folder):
            continue
        whole = _list(
            root,
            folder,
            listed,
            walked,
            incomplete,
            skip_folders,
            skip_paths,
            skip_dir_names,
            max_listed,
        )
        if not whole:
            incomplete.append(f"more than {max_listed} files on disk; the rest not listed")
            break
    files: dict[bytes, tuple[int, str | None]] = {}
    moved: list[Moved] = []
    for row in indexed:
        st = listed.pop(row.key, None)
        if st is None and paths.parent_key(row.key) in walked:
            moved.append(Moved(row.key, "vanished", row.size, None, None))
            continue
        if st is None:  # outside the folders listed: looked up on its own
            try:
                st = _lstat_inside(root, row.key)
            except (FileNotFoundError, NotADirectoryError):
                moved.append(Moved(row.key, "vanished", row.size, None, None))
                continue
            except OSError as exc:
                files[row.key] = (row.size, None)
                reason = exc.strerror or type(exc).__name__
                moved.append(Moved(row.key, "unreadable", row.size, None, reason))
                continue
        if not _is_file(st):
            moved.append(Moved(row.key, "vanished", row.size, None, None))
            continue
        same_type = stat.S_ISLNK(st.st_mode) == (row.ftype == "symlink")
        if same_type and (st.st_size, st.st_mtime_ns, st.st_ino) == (
            row.size,
            row.mtime_ns,
            row.inode,
        ):
            digest = f"symlink:{row.target or ''}" if row.ftype == "symlink" else row.digest
            files[row.key] = (row.size, digest)
            continue
        digest, why = _version(root, row.key, st, budget)
        files[row.key] = (st.st_size, digest)
        moved.append(Moved(row.key, "modified", row.size, st.st_size, why))
    fresh = sorted(listed)
    owned = elsewhere(fresh) if fresh else set()
    for key in fresh:
        if key in owned:
            continue
        st = listed[key]
        digest, why = _version(root, key, st, budget)
        files[key] = (st.st_size, digest)
        moved.append(Moved(key, "new", None, st.st_size, why))
    return DiskState(files, moved, incomplete)


def _abs(root: bytes, key: bytes) -> bytes:
    return root + b"/" + key if key else root


def _inside(key: bytes) -> bool:
    """A key as the scan writes them: relative, normalised (the index may be tampered with)."""
    if not key:
        return True
    return not key.startswith(b"/") and all(
        part not in (b"", b".", b"..") for part in key.split(b"/")
    )


def _lstat_inside(root: bytes, key: bytes) -> os.stat_result:
    """``lstat`` of a file the listing did not reach, when no folder on its way is a
    symlink (the scan never follows one: a file seen through one is not there)."""
    if not key or not _inside(key) or not _no_link_above(root, key):
        raise FileNotFoundError(key)
    return os.lstat(_abs(root, key))


def _no_link_above(root: bytes, key: bytes) -> bool:
    """No folder between the root and ``key`` is a symlink (or missing)."""
    parent = paths.parent_key(key)
    return not parent or os.path.realpath(_abs(root, parent)) == (
        os.path.realpath(root) + b"/" + parent
    )


def _is_file(st: os.stat_result) -> bool:
    """What the scan indexes: regular files and symlinks (FIFOs, devices are skipped)."""
    return stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def _list(
    root: bytes,
    folder: bytes,
    listed: dict[bytes, os.stat_result],
    walked: set[bytes],
    incomplete: list[str],
    skip_folders: Collection[bytes],
    skip_paths: Collection[bytes],
    skip_dir_names: Collection[bytes],
    limit: int,
) -> bool:
    """Every file below ``folder`` into ``listed``, as the scan walks: no symlink followed
    (but the root's own), no folder entered twice; each folder listed whole goes into
    ``walked``.  False when it stopped at ``limit``."""
    start = _abs(root, folder)
    try:
        if folder and not _no_link_above(root, folder):
            raise FileNotFoundError(start)
        st = os.stat(start) if not folder else os.lstat(start)
    except OSError:
        return True  # the run's folder is gone: its indexed files come back vanished
    if _is_file(st):
        listed[folder] = st
        return True
    if not stat.S_ISDIR(st.st_mode):
        return True
    seen = {(st.st_dev, st.st_ino)}
    stack = [folder]
    while stack:
        rel = stack.pop()
        prefix = rel + b"/" if rel else b""
        try:
            with os.scandir(_abs(root, rel)) as scanner:
                entries = list(scanner)
        except FileNotFoundError:
            continue
        except OSError as exc:
            shown = paths.display(rel) or "."
            incomplete.append(f"{shown}: {exc.strerror or type(exc).__name__}")
            continue
        walked.add(rel)
        for entry in entries:
            if entry.path in skip_paths:
                continue
            try:
                est = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone since listed: the same as not there
            child = prefix + entry.name
            if stat.S_ISDIR(est.st_mode):
                ident = (est.st_dev, est.st_ino)
                if entry.name in skip_dir_names or child in skip_folders or ident in seen:
                    continue
                seen.add(ident)
                stack.append(child)
            elif _is_file(est):
                listed[child] = est
        if len(listed) > limit:
            return False
    return True


def _version(
    root: bytes, key: bytes, st: os.stat_result, budget: Rehash
) -> tuple[str | None, str | None]:
    """The disk version's hash (``symlink:<target>`` for a link), or None and why not."""
    path = _abs(root, key)
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"symlink:{paths.display(os.readlink(path))}", None
        except OSError as exc:
            return None, exc.strerror or type(exc).__name__
    from store.hashing import Identity, hash_file

    if budget.max_file_bytes is not None and st.st_size > budget.max_file_bytes:
        return None, f"larger than the hash size cap ({budget.max_file_bytes} bytes)"
    cost = min(st.st_size, st.st_blocks * 512)
    if budget.spent + cost > budget.max_total_bytes:
        return None, f"over the {budget.max_total_bytes} bytes hashed again in one diff"
    if budget.out_of_time():
        return None, f"out of the {budget.seconds:g} s a diff spends hashing again"
    budget.spent += cost
    result = hash_file(
        path,
        expect=Identity.of(st),
        max_bytes=budget.max_file_bytes,
        should_stop=budget.out_of_time,
    )
    if result.digest is not None:
        return result.digest, None
    if result.error == "changed":
        return None, "changing while read"
    if result.error == "stopped":
        return None, f"out of the {budget.seconds:g} s a diff spends hashing again"
    return None, result.error or "not hashed"
