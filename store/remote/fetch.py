"""Bytes of a remote host's files, read over its transport (``artlens cat --range``)."""

from __future__ import annotations

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
