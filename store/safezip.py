"""The one way artlens opens a zip archive: its central directory bounded first.

``zipfile.ZipFile`` reads the whole central directory at the size its end record claims
and builds an object per entry before a caller can look at anything: a small sparse file
claiming a directory of gigabytes, or a real directory of millions of tiny entries, costs
gigabytes of memory and minutes before any budget of ours applies.  ``open_zip`` reads
the end record the way ``zipfile`` does (bounded: it lies in the last 65,557 bytes, the
ZIP64 records just before it) and refuses an archive over the caps unread.
"""

from __future__ import annotations

import struct
import zipfile
from typing import Protocol

MAX_DIRECTORY_BYTES = 64 << 20
"""Central directory bytes ``zipfile`` may read; a torch checkpoint's is kilobytes."""
MAX_ENTRIES = 100_000
"""Entries an archive may hold (a checkpoint holds one per tensor storage)."""

_CENTRAL_HEADER = 46
_CENTRAL_MAGIC = b"PK\x01\x02"
_ZIP64_RECORDS = 56 + 20
"""The ZIP64 end record and its locator, which sit between the directory and the end record."""


class Archive(Protocol):
    """What ``zipfile`` reads an archive through: a seekable binary stream."""

    def read(self, n: int = -1, /) -> bytes: ...

    def seek(self, cookie: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class ZipTooLargeError(zipfile.BadZipFile):
    """The archive's directory is over a cap, so it was not read: nothing in it is known.
    A ``BadZipFile``, so every reader that handles unreadable archives handles this."""


def check_directory(stream: Archive) -> None:
    """Raise ``ZipTooLargeError`` when the archive in ``stream`` has a central directory
    over ``MAX_DIRECTORY_BYTES`` or more than ``MAX_ENTRIES`` entries (claimed or walked).
    An archive whose end record ``zipfile`` cannot read passes through: it fails there unread."""
    end_record = getattr(zipfile, "_EndRecData", None)  # the very record ZipFile reads
    if end_record is None:
        raise ZipTooLargeError("this Python's zipfile cannot be bounded; archive not read")
    try:
        endrec = end_record(stream)
    except (OSError, ValueError, struct.error):
        return  # ZipFile fails on the same record, before reading a directory
    if not endrec:
        return
    size = int(endrec[getattr(zipfile, "_ECD_SIZE", 5)])
    claimed = int(endrec[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)])
    start = int(endrec[getattr(zipfile, "_ECD_LOCATION", 9)]) - size
    if endrec[0] == getattr(zipfile, "stringEndArchive64", b"PK\x06\x06"):
        start -= _ZIP64_RECORDS
    if size > MAX_DIRECTORY_BYTES:
        raise ZipTooLargeError(
            f"zip central directory of {size} bytes is over the {MAX_DIRECTORY_BYTES} "
            "byte limit; archive not read"
        )
    if claimed > MAX_ENTRIES:
        raise ZipTooLargeError(
            f"zip claims {claimed} entries, over the {MAX_ENTRIES} entry limit; archive not read"
        )
    if start >= 0 and size > _CENTRAL_HEADER * MAX_ENTRIES:  # room for more than claimed
        stream.seek(start)
        _count_entries(stream.read(size))


def _count_entries(directory: bytes) -> None:
    """Walk the directory as ``zipfile`` will, header to header, up to the cap."""
    position = count = 0
    while position + _CENTRAL_HEADER <= len(directory):
        if directory[position : position + 4] != _CENTRAL_MAGIC:
            return  # ZipFile stops here too ("Bad magic number for central directory")
        count += 1
        if count > MAX_ENTRIES:
            raise ZipTooLargeError(
                f"zip holds more than {MAX_ENTRIES} entries, over the limit; archive not read"
            )
        names, extra, comment = struct.unpack_from("<HHH", directory, position + 28)
        position += _CENTRAL_HEADER + names + extra + comment


def open_zip(stream: Archive) -> zipfile.ZipFile:
    """``zipfile.ZipFile(stream)`` for reading, once ``check_directory`` passes."""
    check_directory(stream)
    return zipfile.ZipFile(stream)


__all__ = ["MAX_DIRECTORY_BYTES", "MAX_ENTRIES", "ZipTooLargeError", "check_directory", "open_zip"]
