"""Bounded, counted reads from regular files only.

Opening a FIFO blocks, a device can be endless and a sparse file can claim terabytes, so
every inspector goes through ``BoundedFile``: it refuses anything ``fstat`` does not show
to be a regular file, never follows a final symlink, and counts every byte it reads.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from store.inspect.errors import InspectError
from store.root import Reader
from store.root.local import LocalReader
from store.safefile import NotRegularFileError, open_regular


class BoundedFile(io.RawIOBase):
    """A read-only regular file that counts bytes read; usable by ``zipfile``.

    Reads go through a file-layer ``Reader`` (``store.root``), so the inspector reads an
    object in a bucket as it reads a local file, and a file changed during the inspection
    raises ``ChangedError`` instead of mixing old and new bytes.  A path is opened locally
    (its final component never followed); a ``Reader`` is taken over and closed with this.
    """

    def __init__(self, source: str | os.PathLike[str] | Reader, name: str | None = None) -> None:
        super().__init__()
        self._reader: Reader | None = None  # close() runs from __del__ when the open fails
        if isinstance(source, (str, os.PathLike)):
            try:
                fd, st = open_regular(source)
            except NotRegularFileError:
                raise InspectError("not a regular file") from None
            except OSError as exc:
                raise InspectError(f"cannot open: {exc.strerror or exc}") from None
            self._reader = LocalReader(fd, st, os.fspath(source))
            self.name = os.fspath(Path(source))
        else:
            self._reader = source
            self.name = name if name is not None else ""
        self.size = self._reader.size
        self.bytes_read = 0
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
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read_at(self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer at end of file)."""
        if offset < 0 or size <= 0 or offset >= self.size or self._reader is None:
            return b""
        chunks: list[bytes] = []
        want = min(size, self.size - offset)
        while want > 0:
            data = self._reader.read_at(offset, min(want, 1 << 24))
            if not data:
                break
            chunks.append(data)
            offset += len(data)
            want -= len(data)
            self.bytes_read += len(data)
        return b"".join(chunks)

    def close(self) -> None:
        if not self.closed and self._reader is not None:
            self._reader.close()
        super().close()

    def reader(self, offset: int = 0, buffer_size: int = 1 << 16) -> io.BufferedReader:
        """A buffered stream from ``offset`` that shares this file's counting but does not
        close it when it is dropped (several readers may take turns on one file)."""
        return io.BufferedReader(_Window(self, offset), buffer_size=buffer_size)


class _Window(io.RawIOBase):
    """A forward reader over a ``BoundedFile`` from an offset; closing it leaves the file."""

    def __init__(self, source: BoundedFile, offset: int) -> None:
        super().__init__()
        self._source = source
        self._pos = offset

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self._source.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._source.read_at(self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)
