"""The ``Root`` contract on the local filesystem, walked by directory fds.

A path string is resolved by the kernel when it is used, so a check then an open is a race
(a folder swapped for a symlink in between).  Here every folder on the way is opened from
the one before it with ``O_DIRECTORY | O_NOFOLLOW``, and a symlink met on the way is
resolved by this module, not the kernel: its target is spliced into the remaining parts
and must stay below the root (``..`` past the root, or an absolute target elsewhere, is
``NotAFile``).  That keeps today's behaviour (a link inside the root, as in the Hugging
Face cache, reads as its target) without ever stepping out.  Files are opened with
``O_NOFOLLOW | O_NONBLOCK`` and checked again by ``fstat``, so a FIFO never blocks and a
file swapped for a link between the look and the open is refused.

Names are ``str`` as ``os`` gives them: an invalid UTF-8 byte is a surrogate escape, which
round-trips back into a path; showing it is the caller's job (``display_name``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from typing import TypeVar

from store.root.base import (
    ChangedError,
    Entry,
    EntryKind,
    NotAFile,
    NotFound,
    RootError,
    TooManyEntries,
    check_rel,
    join,
)
from store.safefile import read_fd

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_HOPS = 40
"""Symlinks followed while resolving one path (the kernel's own limit): a loop stops here."""
MAX_DEPTH = 256
"""Folders nested deeper than this are not walked."""
MAX_CLIMB = 4096
"""Folders reopened for the ``..`` parts of links while resolving one path: a link that
climbs and descends again thousands of times is refused like a loop."""
CHUNK = 1 << 20
_T = TypeVar("_T")


def _kind(mode: int) -> EntryKind:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _kind_of(item: os.DirEntry[str]) -> EntryKind:
    """The kind as the folder itself records it (no ``stat`` where the filesystem says)."""
    if item.is_symlink():
        return "symlink"
    if item.is_dir(follow_symlinks=False):
        return "dir"
    return "file" if item.is_file(follow_symlinks=False) else "other"


def identity_of(st: os.stat_result) -> str:
    """``dev:ino:size:mtime_ns``: the same string means the same bytes, without reading them."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def entry_of(name: str, st: os.stat_result) -> Entry:
    blocks = getattr(st, "st_blocks", None)
    return Entry(
        name=name,
        kind=_kind(st.st_mode),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        identity=identity_of(st),
        disk_bytes=blocks * 512 if blocks is not None else None,
    )


def _error(rel: str, exc: OSError) -> RootError:
    """One-line error naming the path; a missing file is ``NotFound``."""
    if isinstance(exc, RootError):
        return exc
    text = exc.strerror or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{rel}: {text}")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return NotAFile(f"{rel}: changed while being opened (a symlink or not a folder)")
    return RootError(f"{rel}: {text}")


class LocalReader:
    """A ``Reader`` on an open fd, pinned to ``(dev, ino, size, mtime_ns, ctime_ns)`` at open: every
    read checks the file again afterwards, so bytes from a file changed under it never
    reach the caller (``ChangedError``)."""

    def __init__(self, fd: int, st: os.stat_result, rel: str) -> None:
        self._fd = fd
        self._rel = rel
        # ctime too: a rewrite that keeps the size and puts the mtime back still moves it
        self._pin = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        self._identity = identity_of(st)

    @property
    def size(self) -> int:
        return self._pin[2]

    @property
    def identity(self) -> str:
        return self._identity

    def fileno(self) -> int:
        """The descriptor, for local-only callers that mmap or hash by fd."""
        if self._fd < 0:
            raise RootError(f"{self._rel}: reader is closed")
        return self._fd

    def check(self) -> None:
        """``ChangedError`` unless the file is still what it was at open."""
        st = os.fstat(self.fileno())
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != self._pin:
            raise ChangedError(f"{self._rel}: changed while being read")

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0:
            raise ValueError("offset and n must not be negative")
        fd = self.fileno()
        want = max(0, min(n, self.size - offset))
        chunks: list[bytes] = []
        got = 0
        try:
            step = want if want <= 1 << 30 else CHUNK  # one call for what one pread gives
            while got < want:
                chunk = os.pread(fd, min(want - got, step), offset + got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            self.check()
        except RootError:
            raise
        except OSError as exc:
            raise _error(self._rel, exc) from None
        if got < want:  # shorter than at open, yet the same size now: changed all the same
            raise ChangedError(f"{self._rel}: changed while being read")
        return b"".join(chunks)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> LocalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.close()


class LocalRoot:
    """One local folder.  Holds no descriptor between calls (a root object is cheap to make
    and needs no closing); each call opens the root folder afresh."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Only remembers the path: its real path is taken when needed (an absolute link,
        ``real_path``), so a root folder retargeted since is followed."""
        self._path = os.path.abspath(os.fspath(path))

    @property
    def url(self) -> str:
        return self._path

    @property
    def scheme(self) -> str:
        return "file"

    @property
    def path(self) -> str:
        """The folder as given, absolute."""
        return self._path

    def __repr__(self) -> str:
        return f"LocalRoot({self._path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalRoot) and other._path == self._path

    def __hash__(self) -> int:
        return hash(("file", self._path))

    # -- resolution -------------------------------------------------------------------

    def _open_root(self, rel: str) -> int:
        try:
            return os.open(self._path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:  # the root as given: nothing changed, it is no folder
                raise NotAFile(f"{self._path}: the root is not a folder") from None
            raise _error(rel or ".", exc) from None

    def _target_parts(self, rel: str, target: str) -> list[str] | None:
        """An absolute link target as parts below the root, None if it lies elsewhere."""
        for base in (os.path.realpath(self._path), self._path):
            base = base.rstrip("/")
            if target == base:
                return []
            if target.startswith(base + "/"):
                return target[len(base) + 1 :].split("/")
        return None

    def _locate(
        self, rel: str, *, follow_final: bool
    ) -> tuple[int, str | None, list[str], os.stat_result | None]:
        """(an fd on the folder holding the final name, that name, the folder's parts below
        the root, the name's ``lstat``) with every symlink on the way resolved below the
        root; name ``None`` means the root itself.  The caller closes the fd.  A final
        symlink is resolved only with ``follow_final``.  A folder on the way is opened
        first and looked at only when that fails (one call per folder, not two)."""
        pending = check_rel(rel)[::-1]
        done: list[str] = []
        hops = climbed = 0
        fd = self._open_root(rel)
        try:
            while pending:
                part = pending.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    if not done:
                        raise NotAFile(f"{rel}: symlink leads out of the root")
                    done.pop()
                    climbed += len(done) + 1
                    if climbed > MAX_CLIMB:
                        raise NotAFile(f"{rel}: too many steps up and down through links")
                    os.close(fd)
                    fd = -1
                    fd = self._open_root(rel)
                    for name in done:
                        nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                        os.close(fd)
                        fd = nxt
                    continue
                final = not pending
                if not final:
                    if len(done) >= MAX_DEPTH:
                        raise NotAFile(f"{rel}: folders nested too deep")
                    try:
                        nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    except NotADirectoryError:  # a symlink (O_NOFOLLOW) or no folder
                        st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                        if not stat.S_ISLNK(st.st_mode):
                            raise NotAFile(
                                f"{rel}: {'/'.join([*done, part])} is not a folder"
                            ) from None
                    else:
                        os.close(fd)
                        fd = nxt
                        done.append(part)
                        continue
                else:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                    if not (stat.S_ISLNK(st.st_mode) and follow_final):
                        return fd, part, done, st
                hops += 1
                if hops > MAX_HOPS:
                    raise NotAFile(f"{rel}: too many levels of symlinks (a loop?)")
                try:
                    target = os.readlink(part, dir_fd=fd)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    raise NotAFile(f"{rel}: changed while being opened") from None
                if target.startswith("/"):
                    parts = self._target_parts(rel, target)
                    if parts is None:
                        raise NotAFile(f"{rel}: symlink leads out of the root")
                    done = []
                    os.close(fd)
                    fd = -1
                    fd = self._open_root(rel)
                else:
                    parts = target.split("/")
                pending.extend(reversed(parts))
            return fd, None, done, None
        except BaseException as exc:
            if fd >= 0:
                os.close(fd)
            if isinstance(exc, OSError):
                raise _error(rel, exc) from None
            raise

    def _open_dir(self, rel: str, *, follow_final: bool = True) -> int:
        fd, name, _, _ = self._locate(rel, follow_final=follow_final)
        if name is None:
            return fd
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise NotAFile(f"{rel}: not a folder") from None
            raise _error(rel, exc) from None
        finally:
            os.close(fd)

    # -- the contract ----------------------------------------------------------------

    def stat(self, rel: str) -> Entry:
        fd, name, _, st = self._locate(rel, follow_final=False)
        try:
            if name is None or st is None:
                return entry_of("", os.fstat(fd))
            return entry_of(name, st)
        except OSError as exc:
            raise _error(rel, exc) from None
        finally:
            os.close(fd)

    def open(self, rel: str) -> LocalReader:
        fd, name, _, before = self._locate(rel, follow_final=True)
        try:
            if name is None or before is None:
                raise NotAFile(f"{rel or '.'}: not a regular file")
            if not stat.S_ISREG(before.st_mode):
                raise NotAFile(f"{rel}: not a regular file")
            file_fd = os.open(name, _FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise _error(rel, exc) from None
        finally:
            os.close(fd)
        try:
            st = os.fstat(file_fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
                before.st_dev,
                before.st_ino,
            ):
                raise NotAFile(f"{rel}: changed while being opened")
        except BaseException as exc:
            os.close(file_fd)
            if isinstance(exc, OSError):
                raise _error(rel, exc) from None
            raise
        return LocalReader(file_fd, st, rel)

    def read_capped(self, rel: str, cap: int) -> tuple[bytes, bool]:
        """At most ``cap`` bytes from the start and whether the file holds more.  Read to
        the end as it is now, not pinned: a log growing under the read gives its start (the
        caller cuts back to whole lines), never an error."""
        with self.open(rel) as reader:
            try:
                return read_fd(reader.fileno(), cap, block=CHUNK)
            except OSError as exc:
                raise _error(rel, exc) from None

    def real_path(self, rel: str) -> str:
        """The real absolute path of a regular file below the root, every link on the way
        resolved as ``open`` does.  Local only, for libraries that insist on a path
        (SQLite, a TensorBoard reader): the caller opens it later, by name."""
        fd, name, parts, st = self._locate(rel, follow_final=True)
        os.close(fd)
        if name is None or st is None or not stat.S_ISREG(st.st_mode):
            raise NotAFile(f"{rel or '.'}: not a regular file")
        return os.path.join(os.path.realpath(self._path), *parts, name)

    def list_dir(self, rel: str = "", *, limit: int = 1_000_000) -> list[Entry]:
        """The folder's entries sorted by name; an entry that vanishes mid-listing is left
        out."""
        return self._entries(rel, limit, follow_final=True)

    def _entries(self, rel: str, limit: int, *, follow_final: bool) -> list[Entry]:
        out = self._scan(
            rel,
            limit,
            lambda item: entry_of(item.name, item.stat(follow_symlinks=False)),
            follow_final=follow_final,
        )
        out.sort(key=lambda e: e.name)
        return out

    def list_kinds(self, rel: str = "", *, limit: int = 1_000_000) -> list[tuple[str, EntryKind]]:
        """(name, kind) of a folder's entries, sorted: ``list_dir`` without a ``stat`` per
        entry (the kind comes from the directory itself), for callers that only need to
        tell folders from files; about ten times faster on a big folder."""
        out = self._scan(rel, limit, lambda item: (item.name, _kind_of(item)))
        out.sort()
        return out

    def _scan(
        self,
        rel: str,
        limit: int,
        row: Callable[[os.DirEntry[str]], _T],
        *,
        follow_final: bool = True,
    ) -> list[_T]:
        """``row`` of each entry of a folder; one that vanishes or fails is left out."""
        fd = self._open_dir(rel, follow_final=follow_final)
        out: list[_T] = []
        try:
            with os.scandir(fd) as it:
                for item in it:
                    try:
                        out.append(row(item))
                    except OSError:
                        continue
                    if len(out) > limit:
                        raise TooManyEntries(f"{rel or '.'}: more than {limit} entries")
        except OSError as exc:
            raise _error(rel or ".", exc) from None
        finally:
            os.close(fd)
        return out

    def walk(self, rel: str = "", *, limit: int = 10_000_000) -> Iterator[tuple[str, list[Entry]]]:
        """Depth first, each folder before its sub-folders, in name order.  A sub-folder
        that vanishes mid-walk, or is swapped for a link or a file since its parent was
        listed, is skipped; symlinked folders are listed, never entered."""
        stack = [(rel, 0)]
        seen = 0
        first = True
        while stack:
            folder, depth = stack.pop()
            try:
                # below ``rel`` a final link is never followed: a folder listed as a folder
                # and swapped for a link since would otherwise be entered
                entries = self._entries(folder, limit - seen, follow_final=first)
            except (NotFound, NotAFile):
                if first:
                    raise
                continue
            first = False
            seen += len(entries)
            yield folder, entries
            if depth >= MAX_DEPTH:
                continue
            stack.extend(
                (join(folder, e.name), depth + 1) for e in reversed(entries) if e.kind == "dir"
            )
