"""Content hashes: xxh3-128, read in bounded chunks, never through a symlink or a FIFO.

xxh3-128 runs at about the speed of a plain read (24 GiB/s measured on a 1 GiB file in
page cache, against 1.6 GiB/s for sha256): enough to tell files apart and find copies,
which is all the index needs.  Results are cached by (dev, inode, size, mtime_ns) in the
index, as DVC's state db does, so nothing is hashed twice.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

import xxhash

from store.root import ChangedError, Reader, Root, RootError
from store.root.local import LocalReader
from store.safefile import NotRegularFileError, open_regular, users_own

ALGORITHM = "xxh3-128"
CHUNK = 1 << 20
HEAD_BYTES = 4096
"""How much of the first chunk is kept for sniffing the kind by magic bytes."""


@dataclass(frozen=True)
class Identity:
    """What says a file is unchanged without reading it."""

    dev: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class HashResult:
    digest: str | None
    """Hex digest, or None when the file could not be hashed (see ``error``)."""
    head: bytes
    identity: Identity | None
    error: str | None = None
    skipped: bool = False
    """Deliberately not hashed (size cap, too sparse): ``error`` says why."""
    version: str | None = None
    """The file layer's identity of what was hashed (``Reader.identity``)."""


class ChangedWhileHashing(Exception):
    """The file changed under the hasher; its hash would describe no real version."""


MAX_HOLE_BYTES = 16 << 30
"""Holes of a sparse file are hashed as the zeros they read as, up to this much; a file
with more is marked skipped (hashing 1 TiB of zeros would take minutes and tell little)."""
MAX_SEGMENTS = 100_000
"""A sparse file split into more data segments than this is skipped."""
_ZEROS = bytes(CHUNK)


@dataclass(frozen=True)
class Skipped:
    """Why a file was deliberately not hashed (the index marks it ``skipped``)."""

    reason: str


def hash_file(
    path: str | bytes,
    *,
    expect: Identity | None = None,
    max_bytes: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_hole_bytes: int = MAX_HOLE_BYTES,
) -> HashResult:
    """Hash a regular file without following a final symlink and without blocking on FIFOs.

    Always ends: at most the size the file had when it was opened is read, so a file that
    keeps growing is not chased (it comes back ``changed`` and is hashed again once it
    rests).  Holes of a sparse file are found with SEEK_DATA/SEEK_HOLE and fed as zeros
    without reading them, up to ``max_hole_bytes``.  A file over ``max_bytes`` or with
    more holes is ``skipped`` (``HashResult.skipped``) with the reason in ``error``.

    When ``expect`` is given and the file is not that version any more (before or after
    reading), the result carries ``error='changed'`` and no digest.
    """
    try:
        fd, st = open_regular(path)
    except NotRegularFileError as exc:
        return HashResult(None, b"", None, _not_regular(exc.mode))
    except OSError as exc:
        reason = "symlink" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        return HashResult(None, b"", None, reason)
    identity = Identity.of(st)
    with LocalReader(fd, st, os.fsdecode(path)) as reader:
        if expect is not None and identity != expect:
            return HashResult(None, b"", identity, "changed")
        return _hash(reader, identity, max_bytes, should_stop, max_hole_bytes)


def hash_at(
    root: Root,
    rel: str,
    *,
    max_bytes: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> HashResult:
    """``hash_file`` for a file of any file-layer root; ``HashResult.version`` is the
    reader's identity (an object's ETag), since a dev/inode ``Identity`` may not exist."""
    try:
        reader = root.open(rel)
    except RootError as exc:
        return HashResult(None, b"", None, str(exc))
    with reader:
        return _hash(reader, None, max_bytes, should_stop, MAX_HOLE_BYTES)


def _hash(
    reader: Reader,
    identity: Identity | None,
    max_bytes: int | None,
    should_stop: Callable[[], bool] | None,
    max_hole_bytes: int,
) -> HashResult:
    """The hash of what a pinned reader reads; holes found by fd where the reader is local."""
    fileno = getattr(reader, "fileno", None)
    fd: int | None = fileno() if callable(fileno) else None
    version = reader.identity

    def read_at(offset: int, n: int) -> bytes:
        """A local file is read by ``pread`` and checked once at the end (a check per
        chunk would cost a third more on small files); other readers check each read."""
        if fd is None:
            return reader.read_at(offset, n)
        data = os.pread(fd, n, offset)
        if len(data) < n:
            raise ChangedError("shrank under the hasher")
        return data

    def changed() -> HashResult:
        after = Identity.of(os.fstat(fd)) if fd is not None else None
        return HashResult(None, head, after, "changed", version=version)

    head = b""
    try:
        size = reader.size
        head = read_at(0, min(HEAD_BYTES, size)) if size else b""
        if max_bytes is not None and size > max_bytes:
            why = f"larger than the hash size cap ({max_bytes} bytes)"
            return HashResult(None, head, identity, why, skipped=True, version=version)
        on_disk = os.fstat(fd).st_blocks * 512 if fd is not None else size
        segments = data_segments(fd, size) if fd is not None and on_disk < size else [(0, size)]
        if isinstance(segments, Skipped):
            return HashResult(None, head, identity, segments.reason, skipped=True, version=version)
        holes = size - sum(end - start for start, end in segments)
        if holes > max_hole_bytes:
            why = (
                f"sparse: {holes} bytes of holes, over the {max_hole_bytes} hashed as zeros; "
                f"{on_disk} bytes on disk"
            )
            return HashResult(None, head, identity, why, skipped=True, version=version)
        hasher = xxhash.xxh3_128()
        pos = 0
        for start, end in [*segments, (size, size)]:
            while pos < start:  # a hole reads as zeros: feed them without reading
                if should_stop is not None and should_stop():
                    return HashResult(None, head, identity, "stopped", version=version)
                step = min(CHUNK, start - pos)
                hasher.update(_ZEROS if step == CHUNK else _ZEROS[:step])
                pos += step
            while pos < end:
                if should_stop is not None and should_stop():
                    return HashResult(None, head, identity, "stopped", version=version)
                chunk = read_at(pos, min(CHUNK, end - pos))
                hasher.update(chunk)
                pos += len(chunk)
        reader.read_at(0, 0)  # the file is still what was opened (dev, ino, size, mtime, ctime)
        return HashResult(hasher.hexdigest(), head, identity, version=version)
    except ChangedError:
        return changed()
    except OSError as exc:
        return HashResult(None, b"", None, exc.strerror or str(exc))


def data_segments(fd: int, size: int) -> list[tuple[int, int]] | Skipped:
    """The (start, end) ranges of a file that hold data, by SEEK_DATA/SEEK_HOLE; the whole
    file when the filesystem cannot tell."""
    segments: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break  # only a hole from here on
                raise
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            if end <= start:
                return [(0, size)]
            segments.append((start, end))
            if len(segments) > MAX_SEGMENTS:
                return Skipped(f"sparse file in more than {MAX_SEGMENTS} pieces")
            pos = end
    except (OSError, AttributeError):
        return [(0, size)]
    return segments


def _not_regular(mode: int) -> str:
    return "symlink" if stat.S_ISLNK(mode) else "not a regular file"


def read_head(path: str | bytes, size: int = HEAD_BYTES) -> bytes:
    """The first bytes of a regular file, or b'' for anything else."""
    try:
        fd, _ = open_regular(path)
    except OSError:
        return b""
    try:
        return os.pread(fd, size, 0)
    except OSError:
        return b""
    finally:
        os.close(fd)


def configured_max_bytes(config: str | os.PathLike[str] | None = None) -> int | None:
    """The hash size cap of the user config (``[index] hash_max_size = "200G"``), or None.

    Raises ``ValueError`` (one line) when the value is not a size.
    """
    import platformdirs

    from store.retention.policy import parse_size
    from store.safeparse import load_toml

    path = users_own(config or os.path.join(platformdirs.user_config_dir("artlens"), "config.toml"))
    try:
        fd, _ = open_regular(path)
    except OSError:
        return None
    try:
        data = os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)
    try:
        table = load_toml(data.decode("utf-8")).get("index", {})
    except ValueError:  # not UTF-8, not TOML, nested too deeply: its own readers report it
        return None
    value = table.get("hash_max_size") if isinstance(table, dict) else None
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: [index] hash_max_size: {exc}") from None
