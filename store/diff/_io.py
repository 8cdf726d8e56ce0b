"""Bounded reads from regular files only.

Artifacts are untrusted: a FIFO blocks ``open()``, a device never ends and a sparse file
can claim terabytes.  Every diff engine reads through these helpers, which check the path
with ``os.lstat`` first, refuse to follow a final symlink and cap every read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from store.errors import ArtlensError
from store.safefile import NotRegularFileError, open_regular


class DiffError(ArtlensError):
    """A file could not be diffed; the message is one line fit to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


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
    """A read-only file descriptor on a path that ``lstat`` showed to be a regular file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.fd, st = open_regular(path)
        except NotRegularFileError:
            raise DiffError(f"{os.fsdecode(path)!r} is not a regular file") from None
        except OSError as exc:
            raise DiffError(f"cannot open {os.fsdecode(path)!r}: {_reason(exc)}") from None
        self.size = st.st_size

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; fewer at end of file or if it shrank."""
        chunks: list[bytes] = []
        want = max(0, min(size, self.size - offset))
        try:
            if 0 < want <= 1 << 30:
                first = os.pread(self.fd, want, offset)
                if len(first) == want or not first:
                    return first
                chunks.append(first)
                offset += len(first)
                want -= len(first)
            while want > 0:
                data = os.pread(self.fd, min(want, 1 << 24), offset)
                if not data:
                    break
                chunks.append(data)
                offset += len(data)
                want -= len(data)
        except OSError as exc:
            raise DiffError(f"read failed: {_reason(exc)}") from None
        return b"".join(chunks)

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
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RegularFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_capped(path: str | os.PathLike[str], max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of a regular file, and whether the file was longer."""
    with RegularFile(path) as handle:
        data = handle.read_at(0, max_bytes)
        return data, handle.size > max_bytes
