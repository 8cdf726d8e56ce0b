"""Bounded, counted reads from regular files only.

Opening a FIFO blocks, a device can be endless and a sparse file can claim terabytes, so
every inspector goes through ``BoundedFile``: it refuses anything ``fstat`` does not show
to be a regular file, never follows a final symlink, and counts every byte it reads.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from store.inspect.errors import InspectError, MissingError, NotRegularError
from store.root import Reader
from store.root.local import LocalReader
from store.root.stream import ReaderStream
from store.safefile import NotRegularFileError, open_regular


class BoundedFile(ReaderStream):
    """A read-only regular file that counts bytes read; usable by ``zipfile``.

    Reads go through a file-layer ``Reader`` (``store.root``), so the inspector reads an
    object in a bucket as it reads a local file, and a file changed during the inspection
    raises ``ChangedError`` instead of mixing old and new bytes.  A path is opened locally
    (its final component never followed); a ``Reader`` is taken over and closed with this.
    """

    def __init__(self, source: str | os.PathLike[str] | Reader, name: str | None = None) -> None:
        if isinstance(source, (str, os.PathLike)):
            try:
                fd, st = open_regular(source)
            except NotRegularFileError as exc:
                raise NotRegularError(symlink=stat.S_ISLNK(exc.mode)) from None
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise MissingError(f"cannot open: {exc.strerror or exc}") from None
            except OSError as exc:
                raise InspectError(f"cannot open: {exc.strerror or exc}") from None
            reader: Reader = LocalReader(fd, st, os.fspath(source))
            label = os.fspath(Path(source))
        else:
            reader, label = source, name if name is not None else ""
        super().__init__(reader)
        self._source = reader
        self.name = label
        self.size = reader.size
        self.bytes_read = 0

    @property
    def identity(self) -> str:
        return self._source.identity

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer at end of file), counted."""
        if offset < 0 or size <= 0 or offset >= self.size:
            return b""
        chunks: list[bytes] = []
        want = min(size, self.size - offset)
        while want > 0:
            data = self._source.read_at(offset, min(want, 1 << 24))
            if not data:
                break
            chunks.append(data)
            offset += len(data)
            want -= len(data)
            self.bytes_read += len(data)
        return b"".join(chunks)

    def reader(self, offset: int = 0, buffer_size: int = 1 << 16) -> io.BufferedReader:
        """A buffered stream from ``offset`` that shares this file's counting but does not
        close it when it is dropped (several readers may take turns on one file)."""
        window = ReaderStream(self, owns=False)
        window.seek(offset)
        return io.BufferedReader(window, buffer_size=buffer_size)
