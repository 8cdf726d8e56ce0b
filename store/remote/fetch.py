"""Bytes of a remote host's files, read over its transport (``artlens cat --range``)."""

from __future__ import annotations

import os

from store.diff._io import DiffError
from store.feed import MAX_RANGE
from store.remote.config import Remote
from store.remote.transport import RemoteError, Session
from store.rundiff import Reader

FETCH_TIMEOUT = 120.0


def read_range(remote: Remote, path: str, offset: int, length: int) -> bytes:
    """At most ``length`` bytes of the host's file ``path`` from ``offset``."""
    if length > MAX_RANGE:
        raise RemoteError(f"at most {MAX_RANGE} bytes per fetch")
    args = ["cat", "--range", f"{offset}:{length}", path]
    with Session(remote.argv(args), timeout=FETCH_TIMEOUT) as session:
        data = session.read(length)
        session.finish()
    return data


def reader(remote: Remote) -> Reader:
    """A ``store.rundiff.Reader`` over the host's files (errors become ``DiffError``)."""

    def read(path: str, cap: int) -> tuple[bytes, bool]:
        try:
            data = read_range(remote, path, 0, min(cap + 1, MAX_RANGE))
        except RemoteError as exc:
            raise DiffError(f"{remote.name}: {exc}") from None
        return data[:cap], len(data) > cap

    return read


MAX_FETCH = 256 << 20
"""Bytes of one remote file fetched whole for a file diff (more: diff on the host)."""


def fetch_file(remote: Remote, path: str, size: int, target: str) -> int:
    """Copy the host's file ``path`` (``size`` bytes by the mirror) into the local file
    ``target`` in ranges; returns the bytes copied (``size``).  The host's answer is
    bounded by what was asked for, and at most ``MAX_FETCH`` bytes are fetched.

    A file whose length there is not ``size`` (cut short, or grown: its first ``size``
    bytes are not the file) changed since the last pull: RemoteError, never a copy that
    a diff would take for the whole file."""
    if size > MAX_FETCH:
        raise RemoteError(f"{size} bytes is more than the {MAX_FETCH} a diff fetches")
    copied = 0
    probed = False  # whether a request asked past ``size`` (and got nothing there)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(target, flags, 0o600)
    try:
        while copied < size:
            # one byte more than is left, when a range allows it: a grown file says so
            want = min(MAX_RANGE, size - copied + 1)
            chunk = read_range(remote, path, copied, want)
            if len(chunk) > size - copied:
                raise RemoteError(_grown(size))
            if not chunk:
                break
            os.write(fd, chunk)
            copied += len(chunk)
            probed = want > len(chunk)
    finally:
        os.close(fd)
    if copied < size:
        raise RemoteError(
            f"the file has {copied} bytes there, the mirror says {size}: "
            "it changed since the last pull"
        )
    if not probed and read_range(remote, path, size, 1):
        raise RemoteError(_grown(size))
    return copied


def _grown(size: int) -> str:
    return (
        f"the file has more than the {size} bytes the mirror says: it changed since the last pull"
    )
