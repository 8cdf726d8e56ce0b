"""The file layer every reader goes through: one ``Root`` per indexed folder or bucket prefix.

Local folders and object stores differ in what identifies a file (inode and mtime against
ETag and version), in what a listing costs (a ``scandir`` against a paged request) and in
what a read costs (a ``pread`` against a ranged GET).  Readers above this layer see only
root-relative POSIX paths, ``Entry`` rows and bounded ``Reader`` objects, so a framework
parser, the inspector or a diff never learns where the bytes live.

Paths are ``/``-separated and relative to the root; ``""`` is the root itself.  A path
with an empty, ``.`` or ``..`` part is refused (``UnsafeRelPath``) before any I/O, so no
caller can step out of a root by a name it was handed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from store.errors import ArtlensError

EntryKind = Literal["file", "dir", "symlink", "other"]


class RootError(ArtlensError, OSError):
    """A root could not be listed or read; the message is one line naming the path."""


class UnsafeRelPath(RootError, ValueError):
    """A root-relative path with an empty, ``.`` or ``..`` part, or a NUL byte."""


class NotFound(RootError, FileNotFoundError):
    """Nothing at the path (or a folder on the way is missing): callers that treat a missing
    optional file as normal catch this one, not a message."""


class NotAFile(RootError):
    """The path is a folder, a symlink, a FIFO, a device or anything but a regular file."""


class ChangedError(RootError):
    """The file changed under a reader pinned to what it was when opened (size, mtime or
    ETag differ): the caller gets no mix of old and new bytes."""


class TooManyEntries(RootError):
    """A listing went past the caller's bound on entries."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One name in a folder listing, or the result of ``stat``.

    ``identity`` is what says "the same bytes as before" without reading them: for a local
    file ``dev:ino:size:mtime_ns``, for an object ``etag`` (plus ``:version`` where the
    bucket is versioned).  ``mtime_ns`` is shown, but on object stores not trusted for
    identity.  ``disk_bytes`` is what the file occupies (``st_blocks * 512`` locally; a
    sparse file is small), ``None`` where the store does not say.
    """

    name: str
    kind: EntryKind
    size: int
    mtime_ns: int
    identity: str
    disk_bytes: int | None = None


@runtime_checkable
class Reader(Protocol):
    """A bounded random-access view of one regular file, pinned to the identity it had when
    opened: a read after the file changed raises ``ChangedError``."""

    @property
    def size(self) -> int: ...

    @property
    def identity(self) -> str: ...

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes from ``offset``; short only at end of file."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Reader: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Root(Protocol):
    """One indexed folder or bucket prefix, read through bounded calls only."""

    @property
    def url(self) -> str:
        """What the user typed, normalised: ``/abs/path`` or ``s3://bucket/prefix``."""
        ...

    @property
    def scheme(self) -> str:
        """``file``, ``s3``, ``gs`` or ``az``."""
        ...

    def list_dir(self, rel: str = "", *, limit: int = 1_000_000) -> list[Entry]:
        """The entries of one folder (symlinks reported as ``symlink``, never followed);
        ``TooManyEntries`` past ``limit``."""
        ...

    def stat(self, rel: str) -> Entry:
        """One entry, without following a final symlink."""
        ...

    def open(self, rel: str) -> Reader:
        """A pinned reader on a regular file that lies inside the root; ``NotAFile`` for
        anything else (FIFOs, devices, symlinks out of the root, folders)."""
        ...

    def read_capped(self, rel: str, cap: int) -> tuple[bytes, bool]:
        """At most ``cap`` bytes from the start of a regular file, and whether it holds more."""
        ...

    def walk(self, rel: str = "", *, limit: int = 10_000_000) -> Iterator[tuple[str, list[Entry]]]:
        """Every folder below ``rel`` (itself first) with its entries, one folder at a time,
        never following symlinks; ``TooManyEntries`` past ``limit`` entries in all."""
        ...


def check_rel(rel: str) -> list[str]:
    """The parts of a root-relative path, refusing any that could step out of the root."""
    if not rel:
        return []
    if "\x00" in rel:
        raise UnsafeRelPath(f"NUL byte in path {rel!r}")
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafeRelPath(f"unsafe path {rel!r}: empty, '.' or '..' part")
    return parts


def join(rel: str, *names: str) -> str:
    """Join root-relative parts (``""`` is the root)."""
    return "/".join(p for p in (rel, *names) if p)
