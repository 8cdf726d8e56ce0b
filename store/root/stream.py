"""A ``Reader`` as a seekable binary stream, for libraries that want a file object
(``zipfile``, ``json.load``) rather than ranged reads."""

from __future__ import annotations

import io
from typing import Protocol

from store.root.base import Reader


class Ranged(Protocol):
    """What a stream needs of a ``Reader``: its size, ranged reads and closing."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, n: int) -> bytes: ...

    def close(self) -> None: ...


class ReaderStream(io.RawIOBase):
    """Reads through ``read_at`` from a position of its own; closing it closes the reader
    unless ``owns`` is false.  Reads stop at the size the reader was pinned to."""

    def __init__(self, reader: Ranged, *, owns: bool = True) -> None:
        super().__init__()
        self._reader = reader
        self._owns = owns
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._reader.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``, leaving the position alone."""
        return self._reader.read_at(offset, n)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read_at(self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        reader = getattr(self, "_reader", None)  # None when a subclass failed to open
        if reader is not None and self._owns and not self.closed:  # nothing else is set then
            reader.close()
        super().close()


def buffered(reader: Reader, *, owns: bool = True, size: int = 1 << 16) -> io.BufferedReader:
    """A buffered stream over ``reader`` (``zipfile`` reads headers a few bytes at a time)."""
    return io.BufferedReader(ReaderStream(reader, owns=owns), buffer_size=size)
