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

import errno
import os
import stat
import sys
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

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
"""The root itself may be a link (``~/outputs -> /data/outputs``); nothing below it is."""
_BELOW_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_REPLACED = "replaced while listed (a link or another folder now)"


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
    unlisted: dict[bytes, str] = field(default_factory=dict)
    """Folders that could not be listed and entries that could not be examined (keys), and
    why: files there are unknown, neither gone nor absent."""


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
    links: dict[bytes, _Link] = {}
    walked: set[bytes] = set()
    incomplete: list[str] = []
    unlisted: dict[bytes, str] = {}
    kept = [folder for folder in folders if _inside(folder)]
    for index, folder in enumerate(kept):
        left = _list(
            root,
            folder,
            listed,
            links,
            walked,
            incomplete,
            unlisted,
            skip_folders,
            skip_paths,
            skip_dir_names,
            max_listed,
        )
        if left is not None:
            incomplete.append(f"more than {max_listed} files on disk; the rest not listed")
            for rest in [*left, *kept[index + 1 :]]:
                unlisted.setdefault(rest, f"not listed: past the {max_listed} files listed")
            break
    files: dict[bytes, tuple[int, str | None]] = {}
    moved: list[Moved] = []
    for row in indexed:
        st = listed.pop(row.key, None)
        if st is None and row.key in unlisted:  # an entry its listing could not examine
            files[row.key] = (row.size, None)
            moved.append(Moved(row.key, "unreadable", row.size, None, unlisted[row.key]))
            continue
        if st is None and paths.parent_key(row.key) in walked:
            moved.append(Moved(row.key, "vanished", row.size, None, None))
            continue
        if st is None:  # outside the folders listed: looked up on its own
            try:
                st = _lstat_inside(root, row.key, links)
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
        digest, why = _version(root, row.key, st, budget, links)
        files[row.key] = (st.st_size, digest)
        moved.append(Moved(row.key, "modified", row.size, st.st_size, why))
    fresh = sorted(listed)
    owned = elsewhere(fresh) if fresh else set()
    for key in fresh:
        if key in owned:
            continue
        st = listed[key]
        digest, why = _version(root, key, st, budget, links)
        files[key] = (st.st_size, digest)
        moved.append(Moved(key, "new", None, st.st_size, why))
    return DiskState(files, moved, incomplete, unlisted)


def _abs(root: bytes, key: bytes) -> bytes:
    return root + b"/" + key if key else root


def _inside(key: bytes) -> bool:
    """A key as the scan writes them: relative, normalised (the index may be tampered with)."""
    if not key:
        return True
    return not key.startswith(b"/") and all(
        part not in (b"", b".", b"..") for part in key.split(b"/")
    )


_Link = tuple[str | None, str | None]
"""A symlink's ``symlink:<target>`` version, or None and why its target could not be read:
read in the folder its ``lstat`` was made in, as that ``lstat`` was."""


def _read_link(name: bytes, dir_fd: int) -> _Link:
    try:
        return f"symlink:{paths.display(os.readlink(name, dir_fd=dir_fd))}", None
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__


def _open_folder(root: bytes, key: bytes) -> int:
    """A descriptor on the folder ``key`` (a key ``_inside`` accepts), opened from the root
    down one name at a time without following a link (the root's own excepted): a folder
    on the way swapped for a link cannot lead out.  Raises ``OSError`` (ELOOP or ENOTDIR
    for a link or a file on the way); the caller closes it."""
    fd = os.open(root, _DIR_FLAGS)
    for part in key.split(b"/") if key else ():
        try:
            inner = os.open(part, _BELOW_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = inner
    return fd


def _lstat_inside(root: bytes, key: bytes, links: dict[bytes, _Link]) -> os.stat_result:
    """``lstat`` of a file the listing did not reach, when no folder on its way is a
    symlink (the scan never follows one: a file seen through one is not there); made in
    its folder opened from the root down, so a folder swapped since cannot lead out."""
    if not key or not _inside(key):
        raise FileNotFoundError(key)
    try:
        fd = _open_folder(root, paths.parent_key(key))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise FileNotFoundError(key) from None
        raise
    try:
        name = paths.name_of(key)
        st = os.lstat(name, dir_fd=fd)
        if stat.S_ISLNK(st.st_mode):
            links[key] = _read_link(name, fd)
        return st
    finally:
        os.close(fd)


def _is_file(st: os.stat_result) -> bool:
    """What the scan indexes: regular files and symlinks (FIFOs, devices are skipped)."""
    return stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def _list(
    root: bytes,
    folder: bytes,
    listed: dict[bytes, os.stat_result],
    links: dict[bytes, _Link],
    walked: set[bytes],
    incomplete: list[str],
    unlisted: dict[bytes, str],
    skip_folders: Collection[bytes],
    skip_paths: Collection[bytes],
    skip_dir_names: Collection[bytes],
    limit: int,
) -> list[bytes] | None:
    """Every file below ``folder`` into ``listed`` (and each link's target into
    ``links``), as the scan walks: no symlink followed (but the root's own), no folder
    entered twice; each folder listed whole goes into ``walked``.  Each folder is listed
    through a descriptor opened without following a link and checked to be the folder its
    parent's listing saw (one open at a time), and its entries are looked at relative to
    it: a folder swapped for a link (or one above it) mid-walk is not listed through it.
    A folder that cannot be listed, or an entry that cannot be examined (permissions, I/O),
    goes into ``unlisted``.  Returns the folders not listed when it stopped at ``limit``,
    else None."""
    try:
        st = _lstat_inside(root, folder, links) if folder else os.stat(root)
    except (FileNotFoundError, NotADirectoryError):
        return None  # the run's folder is gone: its indexed files come back vanished
    except OSError as exc:  # a folder above it cannot be entered: not gone, unknown
        unlisted[folder] = f"not listed: {exc.strerror or type(exc).__name__}"
        return None
    if _is_file(st):
        listed[folder] = st
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    seen = {(st.st_dev, st.st_ino)}
    stack = [(folder, (st.st_dev, st.st_ino))]
    while stack:
        rel, ident = stack.pop()
        prefix = rel + b"/" if rel else b""
        shown = paths.display(rel) or "."
        try:
            fd = os.open(_abs(root, rel), _BELOW_FLAGS if rel else _DIR_FLAGS)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                incomplete.append(f"{shown}: {_REPLACED}")
            else:
                unlisted[rel] = f"not listed: {exc.strerror or type(exc).__name__}"
            continue
        try:
            here = os.fstat(fd)
            if (here.st_dev, here.st_ino) != ident:
                # it, or a folder above it, was swapped since its parent's listing
                incomplete.append(f"{shown}: {_REPLACED}")
                continue
            try:
                with os.scandir(fd) as scanner:
                    entries = list(scanner)
            except OSError as exc:
                unlisted[rel] = f"not listed: {exc.strerror or type(exc).__name__}"
                continue
            walked.add(rel)
            for entry in entries:
                # listed through a descriptor, names come as str: as a path would give them
                name = entry.name.encode(_FS_ENCODING, _FS_ERRORS)
                child = prefix + name
                if skip_paths and _abs(root, child) in skip_paths:
                    continue
                try:
                    est = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone since listed: the same as not there
                except OSError as exc:  # a folder its reader may list but not enter
                    unlisted[child] = f"not examined: {exc.strerror or type(exc).__name__}"
                    continue
                if stat.S_ISDIR(est.st_mode):
                    dident = (est.st_dev, est.st_ino)
                    if name in skip_dir_names or child in skip_folders or dident in seen:
                        continue
                    seen.add(dident)
                    stack.append((child, dident))
                elif _is_file(est):
                    listed[child] = est
                    if stat.S_ISLNK(est.st_mode):
                        links[child] = _read_link(name, fd)
        finally:
            os.close(fd)
        if len(listed) > limit:
            return [rel for rel, _ in stack]
    return None


def _version(
    root: bytes, key: bytes, st: os.stat_result, budget: Rehash, links: dict[bytes, _Link]
) -> tuple[str | None, str | None]:
    """The disk version's hash (``symlink:<target>`` for a link, as read in the folder it
    was listed in), or None and why not.  A file is hashed only when it is still the
    version ``st`` (its listing) saw, whatever path leads to it now."""
    path = _abs(root, key)
    if stat.S_ISLNK(st.st_mode):
        return links.get(key, (None, "target not read"))
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
