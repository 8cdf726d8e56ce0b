"""One static reader for torch zip checkpoints (``torch.save``, Lightning ``.ckpt``).

``store.diff.torch_zip`` maps their tensors for diffs and ``store.frameworks._torchmeta``
reads their plain values (epoch, args, best loss) for run params; both read the archive
here, with one set of budgets and one check of each entry: its local header must agree
with the central directory, since loaders that read one or the other would see different
files.  ``<archive>/data.pkl`` is walked by the scanner's symbolic walker
(``store.inspect.pickle_scan``): nothing is unpickled.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from store.inspect.pickle_scan import SCAN_LIMIT, PickleScan, scan_bytes
from store.root.stream import Ranged, ReaderStream
from store.safezip import open_zip

MAX_PICKLE_BYTES = SCAN_LIMIT
"""``data.pkl`` beyond this is refused (weights live in ``data/``, not in the pickle)."""
ZIP_MAGIC = b"PK\x03\x04"


class TorchZipError(Exception):
    """The archive cannot be read exactly; the message is one line."""


Pread = Callable[[int, int], bytes]
"""``(offset, size) -> bytes``: a descriptor's ``pread`` or a file-layer reader's ``read_at``."""


def _fd_pread(fd: int) -> Pread:
    return lambda offset, size: os.pread(fd, size, offset) if size > 0 else b""


def _reader_pread(reader: Ranged) -> Pread:
    return lambda offset, size: reader.read_at(offset, size) if size > 0 else b""


def entry_span(fd: int | Pread, file_size: int, info: zipfile.ZipInfo) -> tuple[int, int]:
    """(absolute offset, length) of a STORED entry's bytes, checked against its local header."""
    pread = _fd_pread(fd) if isinstance(fd, int) else fd
    if info.compress_type != zipfile.ZIP_STORED:
        raise TorchZipError(
            f"{info.filename} is compressed; torch writes storages uncompressed, so this "
            "file was re-zipped and its tensors cannot be mapped"
        )
    if info.flag_bits & 0x1:
        raise TorchZipError(f"{info.filename} is encrypted")
    if info.compress_size != info.file_size:
        raise TorchZipError(f"{info.filename}: stored sizes disagree")
    local = pread(info.header_offset, 30)
    if len(local) < 30 or not local.startswith(ZIP_MAGIC):
        raise TorchZipError(f"{info.filename}: local header missing")
    name_len, extra_len = struct.unpack_from("<HH", local, 26)
    name = pread(info.header_offset + 30, name_len)
    if name != info.orig_filename.encode("utf-8", "surrogateescape") and name != (
        info.orig_filename.encode("cp437", "replace")
    ):
        raise TorchZipError(f"{info.filename}: local and central names differ")
    start = info.header_offset + 30 + name_len + extra_len
    if start + info.file_size > file_size:
        raise TorchZipError(f"{info.filename} runs past the end of the file (truncated)")
    return start, info.file_size


@dataclass
class TorchZip:
    """``data.pkl`` of a torch zip, read statically, and the archive's storage entries."""

    pread: Pread
    size: int
    prefix: str
    """The archive folder (``archive/``) that holds ``data.pkl``, ``data/`` and ``byteorder``."""
    scan: PickleScan
    entries: dict[str, zipfile.ZipInfo]
    big_endian: bool

    def storage_keys(self) -> list[str]:
        """The keys of ``<prefix>data/<key>`` entries, in archive order."""
        start = self.prefix + "data/"
        return [name[len(start) :] for name in self.entries if name.startswith(start)]

    def storage_span(self, key: str) -> tuple[int, int]:
        """(absolute offset, length) of storage ``key``; ``TorchZipError`` when it is not a
        checked STORED entry (missing, compressed, or its headers disagree)."""
        info = self.entries.get(f"{self.prefix}data/{key}")
        if info is None:
            raise TorchZipError(f"storage data/{key} is missing")
        return entry_span(self.pread, self.size, info)

    def read_storage(self, key: str, end: int) -> bytes | None:
        """The first ``end`` bytes of storage ``key``, or None when they cannot be read exactly."""
        try:
            start, length = self.storage_span(key)
        except TorchZipError:
            return None
        if end > length:
            return None
        data = self.pread(start, end)
        return data if len(data) == end else None


def read_torch_zip(fd: int) -> TorchZip:
    """Read the torch zip open on ``fd`` (a regular file): its one ``<archive>/data.pkl``
    scanned, its entries listed.  ``TorchZipError`` when the archive is not one torch
    checkpoint that every loader reads alike (duplicate names, no or several ``data.pkl``)."""
    return _read(_fd_pread(fd), os.fstat(fd).st_size, lambda: os.fdopen(os.dup(fd), "rb"))


def read_torch_zip_at(reader: Ranged, *, pickle_limit: int = MAX_PICKLE_BYTES) -> TorchZip:
    """``read_torch_zip`` through a file-layer reader (any root: no descriptor needed); the
    archive reads through ``reader``, which the caller keeps open while it uses the result.
    A ``data.pkl`` over ``pickle_limit`` bytes (its size in the zip directory) is refused
    unread: a caller with less time to spend than a scan's passes a lower one."""
    return _read(
        _reader_pread(reader),
        reader.size,
        lambda: io.BufferedReader(ReaderStream(reader, owns=False), buffer_size=1 << 16),
        min(pickle_limit, MAX_PICKLE_BYTES),
    )


def _read(
    pread: Pread,
    size: int,
    stream_of: Callable[[], io.BufferedIOBase],
    pickle_limit: int = MAX_PICKLE_BYTES,
) -> TorchZip:
    try:
        with stream_of() as stream, open_zip(stream) as archive:
            infos = archive.infolist()
            entries: dict[str, zipfile.ZipInfo] = {}
            for info in infos:
                if info.filename in entries:
                    raise TorchZipError(
                        f"zip entry {info.filename!r} appears twice (which one loads is unclear)"
                    )
                entries[info.filename] = info
            pickles = [n for n in entries if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pickles) != 1 or pickles[0].count("/") > 1:
                raise TorchZipError(f"expected one <archive>/data.pkl, found {len(pickles)}")
            prefix = pickles[0][: -len("data.pkl")]
            if entries[pickles[0]].file_size > pickle_limit:
                raise TorchZipError(f"data.pkl is larger than {pickle_limit} bytes")
            with archive.open(pickles[0]) as member:
                data = member.read(pickle_limit + 1)
            if len(data) > pickle_limit:
                raise TorchZipError(f"data.pkl is larger than {pickle_limit} bytes")
    except TorchZipError:
        raise
    except Exception as exc:  # zipfile and zlib raise many types on hostile archives
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise TorchZipError(f"unreadable zip ({message})") from None
    big_endian = False
    order = entries.get(prefix + "byteorder")
    if order is not None:
        start, length = entry_span(pread, size, order)
        big_endian = pread(start, min(length, 16)).strip() not in (b"little", b"")
    scan = scan_bytes(data, max_pickles=1)
    return TorchZip(pread, size, prefix, scan, entries, big_endian)


__all__ = [
    "MAX_PICKLE_BYTES",
    "TorchZip",
    "TorchZipError",
    "entry_span",
    "read_torch_zip",
    "read_torch_zip_at",
]
