"""Opening an artifact for reading, safely: the one way every reader in ``store`` does it.

A FIFO blocks ``open``, a device can be endless, and a symlink can point out of the root,
so a file is opened only when ``lstat`` shows a regular file, without following a final
symlink and without blocking, and ``fstat`` on the open descriptor checks again (the path
may have been swapped in between).  Callers cap what they read themselves.
"""

from __future__ import annotations

import os
import stat

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class NotRegularFileError(OSError):
    """The path is a folder, a symlink, a FIFO, a socket or a device; ``mode`` says which."""

    def __init__(self, path: str | bytes | os.PathLike[str], mode: int) -> None:
        super().__init__(f"not a regular file: {os.fsdecode(path)!r}")
        self.mode = mode


def absent(path: str | bytes | os.PathLike[str]) -> bool:
    """Nothing is at ``path``, not even a link.  A FIFO, a folder or a path that cannot be
    looked at is there: a config reader reads it and fails, naming it, not a silent default."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def users_own(path: str | os.PathLike[str]) -> str:
    """The user's own config file as the user means it: a symlink there (a dotfiles
    manager's) is followed, since only the user writes their config folder.  Files in a
    root, which others may write, are read with ``open_regular`` and never followed."""
    if os.path.islink(path):
        return os.path.realpath(path)
    return os.fspath(path)


def open_regular(path: str | bytes | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """A read-only descriptor on a regular file and its ``fstat``; the caller closes it.

    Raises ``NotRegularFileError`` for anything else, ``OSError`` when it cannot be opened.
    """
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFileError(path, before.st_mode)
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFileError(path, st.st_mode)
    return fd, st


def read_capped(path: str | bytes | os.PathLike[str], cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes from the start of a regular file, and whether it holds more.

    Raises like ``open_regular``.
    """
    fd, _ = open_regular(path)
    try:
        return read_fd(fd, cap)
    finally:
        os.close(fd)


def read_fd(fd: int, cap: int, *, block: int = 1 << 20) -> tuple[bytes, bool]:
    """At most ``cap`` bytes from an open descriptor, ``block`` at a time, and whether it
    holds more (one byte past ``cap`` is read to tell)."""
    chunks: list[bytes] = []
    left = cap + 1
    while left > 0:
        chunk = os.read(fd, min(left, block))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    return (data[:cap], True) if len(data) > cap else (data, False)
