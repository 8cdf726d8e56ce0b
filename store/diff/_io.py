"""Bounded reads from regular files only.

Artifacts are untrusted: a FIFO blocks ``open()``, a device never ends and a sparse file
can claim terabytes.  Every diff engine reads through these helpers, which check the path
with ``os.lstat`` first, refuse to follow a final symlink and cap every read.  Reads go
through a file-layer ``Reader`` (``store.root``), so a diff can be handed a file of any root:
every engine takes a ``FileRef``, a local path (its fast path: ``preadv`` on the fd) or a
``(Root, rel)`` pair.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeAlias

from store.errors import ArtlensError
from store.root import ChangedError, NotAFile, Reader, Root
from store.root.local import LocalReader
from store.safefile import NotRegularFileError, open_regular


class DiffError(ArtlensError):
    """A file could not be diffed; the message is one line fit to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class DiffCancelled(DiffError):
    """The caller gave up on the diff (a closed diff pane): nothing to fall back to."""


COMPARE_MAX_BYTES = 8 << 30
"""Bytes of each file one comparison reads (byte or tensor) before it stops: two 20 GB
files equal so far are then `not known equal`, never equal."""
COMPARE_MAX_SECONDS = 60.0
"""Seconds one comparison reads for before it stops, as for ``COMPARE_MAX_BYTES``."""
_cancelled: ContextVar[Callable[[], bool] | None] = ContextVar("diff_cancelled", default=None)


@contextmanager
def cancel_when(cancelled: Callable[[], bool] | None) -> Iterator[None]:
    """Make every comparison started inside the block (in this thread) stop with
    ``DiffCancelled`` once ``cancelled()`` is true, between two chunks."""
    token = _cancelled.set(cancelled)
    try:
        yield
    finally:
        _cancelled.reset(token)


class CompareBudget:
    """The bytes and seconds one comparison of two files may spend reading them, per
    ``COMPARE_MAX_BYTES`` and ``COMPARE_MAX_SECONDS`` when it starts."""

    def __init__(self) -> None:
        self.max_bytes = COMPARE_MAX_BYTES
        self.seconds = COMPARE_MAX_SECONDS
        self.spent = 0
        self._deadline = time.monotonic() + self.seconds
        self._cancelled = _cancelled.get()

    def spend(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more of each file may be read (counted if so);
        ``DiffCancelled`` once the caller gave up."""
        if self._cancelled is not None and self._cancelled():
            raise DiffCancelled("the diff was cancelled")
        if self.spent + nbytes > self.max_bytes or time.monotonic() > self._deadline:
            return False
        self.spent += nbytes
        return True

    def bound(self) -> str:
        """The bound that stopped a comparison, said for a note."""
        return f"a comparison reads at most {self.max_bytes} bytes of each file, {self.seconds:g} s"


FileRef: TypeAlias = "str | os.PathLike[str] | tuple[Root, str]"
"""A file to diff: a local path, or ``(root, rel)`` on any file-layer root."""


def ref_name(ref: FileRef) -> str:
    """The name a file is shown by and its kind guessed from (the rel on a root)."""
    return ref[1] if isinstance(ref, tuple) else os.fsdecode(ref)


def ref_basename(ref: FileRef) -> str:
    """The last part of the name (root rels use ``/`` whatever the platform)."""
    return os.path.basename(ref_name(ref)) if not isinstance(ref, tuple) else ref[1].rsplit("/")[-1]


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def regular_size(path: str | os.PathLike[str]) -> int:
    """The size of ``path`` if ``os.lstat`` shows a regular file; else ``DiffError``."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise DiffError(f"cannot stat {os.fsdecode(path)!r}: {_reason(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DiffError(f"{os.fsdecode(path)!r} is not a regular file")
    return st.st_size


class RegularFile:
    """A pinned reader on a regular file: a path that ``lstat`` showed to be one (opened
    locally), or a file-layer ``Reader`` from any root.  A file that changes while it is
    being compared is a ``DiffError``, never a diff of mixed bytes."""

    def __init__(self, source: FileRef | Reader, name: str | None = None) -> None:
        if isinstance(source, tuple):
            root, rel = source
            label = name or rel
            try:
                self._reader: Reader = root.open(rel)
            except NotAFile:
                raise DiffError(f"{label!r} is not a regular file") from None
            except OSError as exc:  # RootError and whatever a root's transport raises
                reason = exc.strerror or str(exc)
                reason = reason.removeprefix(f"{rel}: ")  # a root's errors name the file
                raise DiffError(f"cannot open {label!r}: {reason}") from None
        elif isinstance(source, (str, os.PathLike)):
            label = os.fsdecode(source)
            try:
                fd, st = open_regular(source)
            except NotRegularFileError:
                raise DiffError(f"{label!r} is not a regular file") from None
            except OSError as exc:
                raise DiffError(f"cannot open {label!r}: {_reason(exc)}") from None
            self._reader = LocalReader(fd, st, label)
        else:
            label = name or ""
            self._reader = source
        self.name = label
        self.size = self._reader.size
        fileno = getattr(self._reader, "fileno", None)
        self.fd: int = fileno() if callable(fileno) else -1
        """The descriptor of a local file (for ``preadv`` into reused buffers), else -1."""

    @property
    def reader(self) -> Reader:
        """The file-layer reader underneath (for readers that take one, like a zip's)."""
        return self._reader

    def check(self) -> None:
        """``DiffError`` if the file changed since it was opened (after reads by ``fd``)."""
        try:
            self._reader.read_at(0, 0)
        except ChangedError:
            raise DiffError(f"{self.name!r} changed while it was being compared") from None
        except OSError as exc:
            raise DiffError(f"read failed: {_reason(exc)}") from None

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; fewer only at end of file."""
        want = max(0, min(size, self.size - offset))
        if want == 0:
            return b""
        try:
            return self._reader.read_at(offset, want)
        except ChangedError:
            raise DiffError(f"{self.name!r} changed while it was being compared") from None
        except OSError as exc:
            raise DiffError(f"read failed: {_reason(exc)}") from None

    def chunks(self, start: int, end: int, size: int) -> Iterator[bytes]:
        """Consecutive reads of at most ``size`` bytes covering ``[start, end)``."""
        offset = start
        while offset < end:
            data = self.read_at(offset, min(size, end - offset))
            if not data:
                return
            yield data
            offset += len(data)

    def close(self) -> None:
        self._reader.close()
        self.fd = -1

    def __enter__(self) -> RegularFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_capped(path: FileRef, max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of a regular file, and whether the file was longer."""
    with RegularFile(path) as handle:
        data = handle.read_at(0, max_bytes)
        return data, handle.size > max_bytes
