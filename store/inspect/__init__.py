"""Say what a model file holds, and whether loading it would run code, without loading it.

``inspect_file`` picks the format from magic bytes (extension second), reads only bounded
headers and pickle streams, never tensor data, and never unpickles: pickles are judged by
the globals they import (see ``policy``).  Verdicts: "safe" (parsed fully, nothing that
runs code), "unknown" (not fully vetted, or could not be read), "dangerous" (imports
something that runs code or touches the system), "corrupt" (does not parse), "n/a" (not a
model format, or not a regular file).  A container is as bad as its worst member, and a
member not fully read or parsed is at least unknown (see ``worst_verdict``).
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import os
import pickletools
import re
import struct
import tarfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import IO, Union

from store.inspect import gguf as _gguf
from store.inspect import numpy_format as _npy
from store.inspect import pt2 as _pt2
from store.inspect import safetensors as _st
from store.inspect._io import BoundedFile
from store.inspect.errors import InspectError, MissingError, NotRegularError, OverBudgetError
from store.inspect.pickle_ops import OPCODE_BYTES
from store.inspect.pickle_scan import SCAN_LIMIT, PickleScan, scan_bytes, scan_stream
from store.inspect.pickle_scan import Global as _Global
from store.root import NotAFile, NotFound, Reader, Root, RootError
from store.root.local import LocalReader
from store.safezip import ZipTooLargeError, open_zip

__all__ = [
    "FORMATS",
    "VERDICTS",
    "InspectError",
    "Inspection",
    "hdf5_superblock_at",
    "inspect_file",
    "is_model_candidate",
    "looks_like_model",
    "worst_verdict",
]

FORMATS = (
    "pickle", "torch-zip", "torch-legacy", "joblib", "npy", "npz", "safetensors", "gguf",
    "hdf5", "onnx", "tensorflow", "zip", "tflite", "pt2", "mar", "unknown",
)  # fmt: skip
VERDICTS = ("safe", "unknown", "dangerous", "corrupt", "n/a")
SHOWN_TENSORS = 20
GGUF_WINDOW = 16 * 1024 * 1024
DECOMPRESS_LIMIT = 256 * 1024 * 1024

_ZIP_ERRORS = (
    zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, ValueError,
    struct.error,
)  # fmt: skip
_HDF5 = b"\x89HDF\r\n\x1a\n"
_TORCH_MAGIC_NUMBER = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
"""LONG1 0x1950a86a20f9469cfc6c: the first pickle of torch's pre-zip format."""
SAFETENSORS_HEADER_BUDGET = 4 * 1024 * 1024
"""Header bytes parsed (JSON costs ~15x its size in memory); real headers are far smaller."""
SNIFF_LIMIT = 1 << 20
"""Bytes read when checking whether a file of another format is also a pickle."""
FILE_BYTES_LIMIT = 256 * 1024 * 1024
"""Bytes (decompressed) read from one file over all its entries; past it: unknown."""
FILE_TIME_LIMIT = 3.0
"""Seconds spent on one file's entries; past it: unknown."""
_PICKLE_EXT = {".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib", ".sav", ".dill",
               ".p", ".pk", ".model", ".tar"}  # fmt: skip
_MODEL_EXT = _PICKLE_EXT | {".npy", ".npz", ".safetensors", ".gguf", ".h5", ".hdf5", ".keras",
                            ".onnx", ".tflite", ".ggml", ".mar", ".pb", ".pt2"}  # fmt: skip
_ONLY_MODELS = {".ckpt", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".safetensors", ".npy",
                ".npz", ".gguf", ".h5", ".hdf5", ".keras", ".onnx", ".tflite", ".pt2"}  # fmt: skip
"""Extensions that name nothing but a model or checkpoint: empty, such a file is broken
(``.bin``, ``.model``, ``.tar`` and the like also name other things, and stay n/a)."""
_COMPRESSED_EXT = {".gz", ".z", ".bz2", ".xz", ".lzma", ".lz4", ".zlib"}
NESTING_LIMIT = 3
"""Archives inside archives followed this deep; deeper ones are unknown."""
NESTED_IN_MEMORY = 64 * 1024 * 1024
"""Bytes of a compressed archive member read into memory to inspect what it holds; a
bigger one is unknown (a stored member is read in place, whatever its size)."""
_NESTING: ContextVar[int] = ContextVar("artlens_inspect_nesting", default=0)
"""How deep inside archives the current inspection is (per thread)."""

_SEVERITY = {"n/a": 0, "safe": 1, "unknown": 2, "corrupt": 3, "dangerous": 4}
"""How bad a verdict is when several are folded into one: "corrupt" ranks above "unknown"
(both fail a strict gate), anything unrecognised counts as "unknown"."""


def worst_verdict(*verdicts: str) -> str:
    """The worst of ``verdicts`` (n/a < safe < unknown < corrupt < dangerous); a verdict
    this module does not know folds as "unknown", never as something milder."""
    known = [v if v in _SEVERITY else "unknown" for v in verdicts]
    return max(known, key=_SEVERITY.__getitem__, default="n/a")


@dataclass(frozen=True)
class Inspection:
    """What a file holds and whether loading it would run code."""

    format: str
    verdict: str
    reasons: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    summary: dict[str, object] = field(default_factory=dict)
    integrity: str | None = None
    bytes_read: int = 0


def _suffixes(name: str) -> list[str]:
    return [s.lower() for s in PurePath(name).suffixes[-2:]]


def is_model_candidate(name: str) -> bool:
    """True when a file name looks like something ``inspect_file`` can say something about."""
    suffixes = _suffixes(name)
    if not suffixes:
        return False
    if suffixes[-1] in _MODEL_EXT:
        return True
    return len(suffixes) == 2 and suffixes[-1] in _COMPRESSED_EXT and suffixes[0] in _PICKLE_EXT


def inspect_file(path: str | os.PathLike[str]) -> Inspection:
    """Inspect the file at ``path``; never raises for bad or hostile input."""
    name = os.fspath(path)
    try:
        handle = BoundedFile(path)
    except NotRegularError as exc:
        # a FIFO or device holds no model file; a symlink may point at one, unread
        return Inspection("unknown", "unknown" if exc.symlink else "n/a", (str(exc),))
    except MissingError as exc:
        return Inspection("unknown", "n/a", (str(exc),))
    except InspectError as exc:  # there but unreadable: whatever it holds went unread
        return Inspection("unknown", "unknown", (str(exc),))
    return _inspect(handle, name)


def inspect_fd(fd: int, st: os.stat_result, name: str) -> Inspection:
    """Inspect the regular file open at ``fd`` (``st``, its ``fstat``, pins what is read:
    a file changed under the reading is not vetted), dispatching on ``name``; never raises
    for bad or hostile input.  Takes the descriptor over and closes it."""
    return _inspect(BoundedFile(LocalReader(fd, st, name), name), name)


def inspect_reader(reader: Reader, name: str) -> Inspection:
    """Inspect what an open file-layer ``reader`` holds (pinned to the version it opened:
    a caller that checked its identity vets exactly those bytes), dispatching on ``name``;
    never raises for bad or hostile input.  Takes the reader over and closes it."""
    return _inspect(BoundedFile(reader, name), name)


def inspect_at(root: Root, rel: str) -> Inspection:
    """Inspect the file ``rel`` of any file-layer root (a local folder, a bucket prefix);
    never raises for bad or hostile input."""
    try:
        reader = root.open(rel)
    except (NotAFile, NotFound) as exc:
        return Inspection("unknown", "n/a", (str(exc),))
    except RootError as exc:  # cannot open: whatever it holds went unread
        return Inspection("unknown", "unknown", (str(exc),))
    return _inspect(BoundedFile(reader, rel), rel)


def _inspect(handle: BoundedFile, name: str) -> Inspection:
    with handle:
        try:
            result = _dispatch(handle, name)
        except InspectError as exc:
            result = Inspection("unknown", "corrupt", (str(exc),))
        except Exception as exc:
            message = " ".join(str(exc).split())[:200]
            reason = f"inspection failed: {type(exc).__name__}: {message}"
            result = Inspection("unknown", "unknown", (reason,))
        return replace(result, bytes_read=handle.bytes_read)


def _dispatch(handle: BoundedFile, name: str) -> Inspection:
    """Read the file as the format its magic says, then, unless that already read it as a
    pickle, also as a pickle from byte 0: a polyglot cannot steer the verdict away from what
    ``pickle.load`` would run."""
    head = handle.read_at(0, 512)
    hdf5_at = _hdf5_superblock(handle, head)
    result = _by_format(handle, name, head, hdf5_at)
    if result.format in _BEFORE_TAR and handle.size >= 512 and _is_tar(handle.read_at(0, 512)):
        result = _also_a_tar(handle, result)
    if hdf5_at is not None and result.format != "hdf5":
        result = _also_hdf5(result, hdf5_at)
    suffix = "".join(_suffixes(name)[-1:])
    if result.format not in _ZIP_FORMATS and suffix in _ZIP_BY_END:
        result = _also_a_zip(handle, result)
    # a tar (read member by member) whose first member's name is a pickle is the one
    # reading here that did not read the file from byte 0 as a pickle
    read_as_pickle = result.format != "torch-legacy" or not _is_tar(handle.read_at(0, 512))
    if result.format in _PICKLE_FORMATS and result.format != "zip" and read_as_pickle:
        return result
    sniffed = _sniff_pickle(handle)
    if sniffed is None:
        return result
    # a pickle that calls what it imports and then breaks has run that call: unknown
    sniffed_verdict = "unknown" if sniffed.verdict == "corrupt" else sniffed.verdict
    if sniffed_verdict == "dangerous" and result.verdict != "dangerous":
        worse = "dangerous"
    elif sniffed_verdict == "unknown" and result.verdict in ("safe", "n/a"):
        worse = "unknown"
    else:
        return result  # the pickle reading says nothing worse than the format's
    reasons = (
        *result.reasons,
        f"{worse}: the file is also a pickle (as {result.format} it reads differently)",
        *sniffed.counted_reasons(),
    )
    return replace(result, verdict=worse, reasons=reasons, imports=tuple(sniffed.imports))


_PICKLE_FORMATS = {"pickle", "torch-legacy", "joblib", "torch-zip", "zip", "npz", "npy"}
_BEFORE_TAR = frozenset({"npy", "gguf", "hdf5"})
"""Formats ``_by_format`` recognises by magic before it looks for a tar header."""


def _also_a_tar(handle: BoundedFile, result: Inspection) -> Inspection:
    """``result`` no better than the file read as a tar: ``torch.load`` opens every file
    that is not a zip with ``tarfile`` first, and a tar header only needs its checksum to
    hold, so an ``.npy`` or GGUF header can be a tar header too, whose members torch
    unpickles (``storages``, ``tensors``, ``pickle``)."""
    return _also_read_as(result, _tar(handle), "a tar archive, which torch.load reads")


def _also_read_as(result: Inspection, other: Inspection, as_what: str) -> Inspection:
    """``result`` with a second reading of the same bytes (``other``, as ``as_what``): the
    worse verdict wins, one the second reading cannot settle is unknown (that loader may
    fail on it), and the reasons and imports of both are kept."""
    verdict = worst_verdict(result.verdict, other.verdict)
    if other.verdict == "n/a" or verdict == worst_verdict(result.verdict):
        return result
    if other.verdict == "corrupt":
        verdict = worst_verdict(result.verdict, "unknown")  # the other reading may fail
    reasons = (
        *result.reasons,
        f"{verdict}: the file is also {as_what} (as {result.format} it reads differently)",
        *other.reasons,
    )
    imports = tuple(dict.fromkeys((*result.imports, *other.imports)))
    return replace(result, verdict=verdict, reasons=reasons, imports=imports)


def _hdf5_superblock(handle: BoundedFile, head: bytes) -> int | None:
    """Where h5py finds the superblock of the file ``handle`` reads (see
    ``hdf5_superblock_at``); ``head`` is the file's first bytes."""
    return hdf5_superblock_at(handle.read_at, handle.size, head)


def hdf5_superblock_at(
    read_at: Callable[[int, int], bytes], size: int, head: bytes = b""
) -> int | None:
    """Where the HDF5 library (so h5py, and Keras's ``load_model``) finds the superblock
    of a file of ``size`` bytes that ``read_at(offset, count)`` reads: its signature at
    byte 0 or at any power of two from 512 below the end of the file, after a user block
    of any content (``H5FD_locate_signature``); None where it finds none.  Every such
    offset is looked at, whatever the file's name: ``tf.keras`` opens any file
    ``h5py.is_hdf5`` accepts, and a user block can be any size.  That is at most one
    8-byte positioned read per power of two of the size (~40 for a terabyte; on a bucket
    those below 64 KiB lie in the block the first read fetched); ``head``, the file's
    first bytes when already read, answers for byte 0."""
    if head.startswith(_HDF5):
        return 0
    offset = 512
    while offset + len(_HDF5) <= size:
        if read_at(offset, len(_HDF5)) == _HDF5:
            return offset
        offset *= 2
    return None


def _also_hdf5(result: Inspection, offset: int) -> Inspection:
    """``result`` no better than unknown: the file is also an HDF5 file (``offset``: where
    its superblock is), which h5py and Keras open whatever else the bytes before it are."""
    verdict = worst_verdict(result.verdict, "unknown")
    why = (
        f"{verdict}: the file is also an HDF5 file (superblock at byte {offset}), which h5py "
        f"and Keras open: Keras Lambda layers can hold code (as {result.format} it reads "
        "differently)"
    )
    return replace(result, verdict=verdict, reasons=(*result.reasons, why))


_ZIP_FORMATS = frozenset({"zip", "torch-zip", "npz", "mar", "pt2"})
"""Formats ``_by_format`` read as a zip archive."""
_ZIP_BY_END = frozenset({".keras", ".zip", ".mar", ".pt2"})
"""Suffixes whose loaders open the file with Python's ``zipfile``, which finds an archive
by its end record wherever it starts (Keras 3's ``load_model`` takes any ``.keras`` file
``zipfile.is_zipfile`` accepts): data in front of it, even a whole pickle, hides nothing."""


def _also_a_zip(handle: BoundedFile, result: Inspection) -> Inspection:
    """``result`` no better than the file read as the zip archive ``zipfile`` finds in it
    by its end record, when there is one."""
    handle.seek(0)
    try:
        found = zipfile.is_zipfile(handle)
    except (OSError, ValueError):
        found = False
    if not found:
        return result
    as_what = "a zip archive (found by its end record), which zipfile-based loaders such as "
    return _also_read_as(result, _zip(handle), as_what + "Keras's open")


def _sniff_pickle(handle: BoundedFile) -> PickleScan | None:
    """The scan of the file read as a pickle from byte 0, when that reads like one (it
    names a global or completes a pickle); None for files no unpickler would get far in."""
    first = scan_bytes(handle.read_at(0, 1024), max_pickles=1)
    if first.error is not None and not first.truncated and not first.imports:
        return None  # not a pickle at all: the unpickler stops where we did
    if handle.size <= 1024:
        scan = first
    else:
        scan = scan_stream(handle.reader(0, 1 << 12), limit=SNIFF_LIMIT, max_pickles=1)
    if scan.capped:
        return scan  # still a pickle where the budget stopped: what follows went unread
    if scan.imports or scan.pickles or any(r.startswith("dangerous") for r in scan.reasons):
        if scan.error is not None and not scan.dangerous and not _calls_import(scan):
            return None
        return scan
    return None


def looks_like_model(head: bytes, size: int | None = None) -> bool:
    """True when the first bytes of a file (``SNIFF_HEAD`` of them) say it may be a model
    file whatever its name: an archive, a compressed stream, an ``.npy`` array, or a pickle
    of any protocol (one that completes, names something dangerous, or still parses where
    the bytes end; a text file fails within a few opcodes).  ``size``, the file's size
    when known, rules out a first string longer than the file."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", _npy.MAGIC, _HDF5, _gguf.MAGIC)):
        return True
    if head[512:520] == _HDF5:
        return True  # an HDF5 file after a 512-byte user block
    if _compression(head) or _is_tar(head[:512]):
        return True
    if not head or head[0] not in OPCODE_BYTES:
        return False  # the unpickler stops at the first byte (the indexer's fast path)
    scan = scan_bytes(head, limit=len(head) + 1, max_pickles=1)
    if scan.pickles or scan.verdict == "dangerous" or _calls_import(scan):
        return True  # it completes, is dangerous, or calls what it imports before it breaks
    if not scan.truncated or len(head) < SNIFF_HEAD:
        return False
    # a protocol 2+ pickle opens with PROTO, and may then push a string longer than the
    # head (its imports come after it); text never starts with byte 0x80
    if scan.opcodes >= 4 or (head[0] == 0x80 and scan.protocol is not None):
        return True
    # protocols 0 and 1 have no PROTO: a pickle may open with a string (or a number, or a
    # dotted name) that runs past the head, and put its imports after it
    return _runs_past_head(head, scan.cut_at, size)


SNIFF_HEAD = 1024
"""Bytes of a file ``looks_like_model`` needs to judge it (fewer: the whole file)."""

_OPCODE_NAMES = {ord(op.code): op.name for op in pickletools.opcodes}
_LENGTH_WIDTH = {"BINSTRING": 4, "BINUNICODE": 4, "BINBYTES": 4, "LONG4": 4, "BINUNICODE8": 8,
                 "BINBYTES8": 8, "BYTEARRAY8": 8, "SHORT_BINSTRING": 1, "SHORT_BINBYTES": 1,
                 "SHORT_BINUNICODE": 1, "LONG1": 1}  # fmt: skip
"""Opcodes whose argument is a byte count (of this many bytes) and that many bytes."""
_NUMBER_PREFIX = re.compile(rb"[\s+\-]*(?:0[xXoObB])?[0-9a-fA-F_.eE+\-]*")
"""What the start of an INT, LONG, FLOAT, GET or PUT argument a loader reads looks like."""
_NAME_PREFIX = re.compile(rb"[A-Za-z0-9_.\x80-\xff]*\n?[A-Za-z0-9_.\x80-\xff]*")
"""The start of a GLOBAL or INST argument: a module path and a (dotted) name."""


def _runs_past_head(head: bytes, start: int, size: int | None) -> bool:
    """Whether ``head`` (a file's first ``SNIFF_HEAD`` bytes, which parse as pickle opcodes
    up to the end) stops inside the opcode at ``start`` in a way the rest of the file may
    well finish: a counted argument that fits in the file, or a line argument whose start
    a loader reads (text lines rarely do: a quoted string, digits, a dotted name; ``V``
    takes any line)."""
    if not 0 <= start < len(head):
        return False
    name = _OPCODE_NAMES.get(head[start], "")
    rest = head[start + 1 :]
    width = _LENGTH_WIDTH.get(name)
    if width is not None:
        if len(rest) < width:
            return True  # the count itself runs past the head
        signed = name in ("BINSTRING", "LONG4")
        count = int.from_bytes(rest[:width], "little", signed=signed)
        # the loader refuses a negative count, and fails where the argument runs past the
        # end of the file; a pickle also needs at least a STOP after it
        return count >= 0 and (size is None or start + 1 + width + count < size)
    if name == "STRING":
        return rest[:1] in (b"'", b'"')
    if name == "UNICODE":
        return True
    if name in ("INT", "LONG", "FLOAT", "GET", "PUT"):
        number = rest.split(b"\x00", 1)[0]  # _pickle reads these as C strings
        return len(number) < len(rest) or _NUMBER_PREFIX.fullmatch(number) is not None
    if name in ("GLOBAL", "INST"):
        return _NAME_PREFIX.fullmatch(rest) is not None
    # PERSID needs a persistent_load no plain loader has; any other opcode has a short
    # argument, cut only where earlier opcodes that parsed filled the head
    return name != "PERSID"


def _by_format(handle: BoundedFile, name: str, head: bytes, hdf5_at: int | None) -> Inspection:
    suffixes = _suffixes(name)
    ext = suffixes[-1] if suffixes else ""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip(handle)
    if head.startswith(_npy.MAGIC):
        return _npy_file(handle)
    if head.startswith(_gguf.MAGIC):
        return _gguf_file(handle)
    if hdf5_at is not None:
        where = f" (superblock at byte {hdf5_at})" if hdf5_at else ""
        return _recognised("hdf5", f"HDF5/Keras file{where}: Keras Lambda layers can hold code")
    if _is_tar(head):
        return _tar(handle)
    if head[4:8] == b"TFL3":
        return _recognised("tflite", "TFLite flatbuffer")
    if len(head) >= 2 and head[0] == 0x80 and head[2:].startswith(_TORCH_MAGIC_NUMBER):
        return _pickle_file(handle, "torch-legacy", max_pickles=5)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return _pickle_file(handle, "pickle")
    compression = _compression(head)
    if compression:
        return _compressed(handle, compression, named=is_model_candidate(name))
    if _looks_like_safetensors(head, handle.size):
        return _safetensors(handle)
    if ext in _PROTOBUF_MODELS and _plausible_protobuf(head):
        return _recognised(*_PROTOBUF_MODELS[ext])
    if head:
        guessed = _pickle_file(handle, "pickle", guessed=True)
        if ext == ".safetensors" and guessed.verdict == "n/a":
            # the name promises a header: zeros or junk are a broken file, not "no model"
            return _safetensors(handle)
        if ext in _PROTOBUF_MODELS and guessed.verdict == "n/a":
            # protobuf has no magic and its fields come in any order: a file named as one
            # is parsed by its loader whatever its first byte
            return _recognised(*_PROTOBUF_MODELS[ext])
        return guessed
    if ext in _ONLY_MODELS:
        return Inspection("unknown", "corrupt", ("empty file",), integrity="empty file")
    return Inspection("unknown", "n/a", ("empty file",))


def _is_tar(block: bytes) -> bool:
    """Whether ``block`` (a file's first 512 bytes) is a tar header ``tarfile.open`` reads:
    torch.load opens every file that is not a zip with tarfile first, and tarfile takes
    any header whose checksum holds (a V7 header has no "ustar" magic)."""
    if len(block) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(block[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except (tarfile.TarError, ValueError, OverflowError):
        return False
    return True


def _recognised(fmt: str, what: str) -> Inspection:
    return Inspection(fmt, "unknown", (f"{what}: recognised, contents not inspected",))


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= _st.MAX_HEADER and head[8:9] == b"{"


_PROTOBUF_MODELS = {
    ".onnx": ("onnx", "ONNX protobuf"),
    ".pb": (
        "tensorflow",
        "TensorFlow protobuf (a SavedModel's saved_model.pb or keras_metadata.pb, a frozen "
        "graph): Keras Lambda layers hold code and graph ops read and write files",
    ),
}
"""Model formats that are bare protobuf messages, by extension: (format, what it is)."""


def _plausible_protobuf(head: bytes) -> bool:
    if not head:
        return False
    field_number, wire_type = head[0] >> 3, head[0] & 7
    return 1 <= field_number <= 20 and wire_type in (0, 2)


def _compression(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00"):
        return "lzma"  # joblib's .lzma prefix: lc/lp/pb 0x5d, then a 4 KiB+ dictionary size
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if head.startswith(b"ZF"):
        return "joblib-zlib-legacy"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _verdict_inspection(
    fmt: str,
    scan: PickleScan,
    summary: dict[str, object],
    extra_reasons: tuple[str, ...] = (),
    integrity: str | None = None,
    members: str = "n/a",
) -> Inspection:
    """The inspection of ``scan``, no better than ``members`` (the worst verdict of a
    container's members) nor than what ``extra_reasons`` start with: a container trick
    (dangerous), a budget that left entries unread or TorchScript code (unknown)."""
    reasons = list(extra_reasons) + scan.counted_reasons()
    if scan.error is not None:
        reasons.append(f"corrupt: {scan.error}")
        if scan.truncated and integrity is None:
            integrity = f"truncated: {scan.error}"
    flagged = [r.split(":", 1)[0] for r in extra_reasons if r.startswith(("dangerous", "unknown"))]
    verdict = worst_verdict(scan.verdict, members, *flagged)
    if integrity is not None and verdict == "safe":
        verdict = "corrupt"
    return Inspection(
        fmt, verdict, tuple(reasons), tuple(scan.imports), summary, integrity=integrity
    )


def _scan_summary(scan: PickleScan) -> dict[str, object]:
    summary: dict[str, object] = {
        "pickle_protocol": scan.protocol,
        "pickles": scan.pickles,
        "opcodes": scan.opcodes,
        "calls": dict(scan.calls),
        "bytes_scanned": scan.bytes_scanned,
    }
    if scan.top_keys:
        summary["top_keys"] = list(scan.top_keys)
    if scan.capped:
        summary["capped"] = True
    if scan.nested:
        summary["nested_pickles"] = scan.nested
    if scan.tensors:
        _tensor_summary(summary, scan.tensors)
    if scan.arrays:
        summary["array_count"] = len(scan.arrays)
        summary["arrays"] = [[d, list(s)] for d, s in scan.arrays[:SHOWN_TENSORS]]
    return summary


def _tensor_summary(
    summary: dict[str, object], tensors: dict[str, tuple[str, tuple[int, ...]]]
) -> None:
    summary["tensor_count"] = len(tensors)
    summary["parameter_count"] = sum(math.prod(shape) for _, shape in tensors.values())
    summary["dtypes"] = dict(Counter(dtype for dtype, _ in tensors.values()))
    summary["tensors"] = {
        name: [dtype, list(shape)] for name, (dtype, shape) in list(tensors.items())[:SHOWN_TENSORS]
    }


def _pickle_file(
    handle: BoundedFile, fmt: str, *, max_pickles: int | None = None, guessed: bool = False
) -> Inspection:
    stream = handle.reader(0)
    main_index = 3 if fmt == "torch-legacy" else 0
    scan = scan_stream(stream, max_pickles=max_pickles, main_index=main_index)
    named = any(s in _PICKLE_EXT for s in _suffixes(handle.name))
    if (
        guessed
        and not scan.pickles
        and scan.verdict != "dangerous"
        and not _calls_import(scan)
        and not (named and scan.imports)
    ):  # by content alone, a pickle completes, is dangerous, or calls what it imports
        return Inspection("unknown", "n/a", ("not a recognised model format",))
    if fmt == "pickle" and any(i.startswith("joblib.") for i in scan.imports):
        fmt = "joblib"
    integrity = _legacy_integrity(handle, scan) if fmt == "torch-legacy" else None
    return _verdict_inspection(fmt, scan, _scan_summary(scan), integrity=integrity)


_ELEMENT_SIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                 "I8": 1, "U8": 1, "BOOL": 1, "C64": 8, "C128": 16}  # fmt: skip


def _legacy_integrity(handle: BoundedFile, scan: PickleScan) -> str | None:
    """Check a legacy torch file holds all storages its pickles promise.

    After the five pickles each storage is an int64 element count and its raw bytes.
    """
    if scan.error is not None or scan.capped:
        return None
    if scan.pickles < 5:
        return f"truncated: legacy torch file ends after {scan.pickles} of 5 pickles"
    expected = scan.end_offset
    for dtype, numel in scan.storage_sizes.values():
        size = _ELEMENT_SIZE.get(dtype)
        if size is None:
            return None
        expected += 8 + numel * size
    if handle.size < expected:
        return f"truncated: storages need {expected} bytes, file has {handle.size}"
    return None


_Engine = Union["zlib._Decompress", bz2.BZ2Decompressor, lzma.LZMADecompressor]


class _Decompressed(io.RawIOBase):
    """A forward-only decompressing reader that stops after ``DECOMPRESS_LIMIT`` bytes.

    Like ``gzip``, ``bz2`` and ``lzma`` readers, it reads every member of a multi-member
    stream to the end: what a second member holds is loaded too.
    """

    def __init__(self, source: BoundedFile, kind: str) -> None:
        super().__init__()
        self._source = source
        # joblib < 0.10 wrote "ZF", the length in hex padded to 19 bytes, then zlib.
        self._offset = 21 if kind == "joblib-zlib-legacy" else 0
        self._kind = "zlib" if kind == "joblib-zlib-legacy" else kind
        self._engine = self._new()
        self._leftover = b""
        self.produced = 0
        self.members = 1
        self.capped = False
        self.ended_early = False
        self.trailing_garbage = False
        self.timed_out = False
        self._started = time.monotonic()

    def _new(self) -> _Engine:
        if self._kind in ("zlib", "gzip"):
            return zlib.decompressobj(15 if self._kind == "zlib" else 31)
        if self._kind == "bz2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def readable(self) -> bool:
        return True

    def _input(self) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        data = self._source.read_at(self._offset, 1 << 16)
        self._offset += len(data)
        return data

    def _next_member(self) -> bool:
        """Start the next member after one ended; False at the end of the input."""
        engine = self._engine
        rest = engine.unused_data
        if not rest:
            rest = self._input()
        if not rest.strip(b"\x00"):
            return False  # end of input (tar-style zero padding included)
        if not self.members % 1024 and time.monotonic() - self._started > FILE_TIME_LIMIT:
            # millions of empty members cost time but no output: the byte cap never trips
            self.timed_out = self.capped = True
            return False
        self._leftover = rest
        self._engine = self._new()
        self.members += 1
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self.produced >= DECOMPRESS_LIMIT:
            self.capped = True
            return 0
        want = min(len(view), DECOMPRESS_LIMIT - self.produced)
        out = b""
        try:
            while not out:
                engine = self._engine
                if engine.eof:
                    if not self._next_member():
                        return 0
                    continue
                if not isinstance(engine, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
                    data = engine.unconsumed_tail or self._input()
                    if not data:
                        self.ended_early = True
                        return 0
                    out = engine.decompress(data, want)
                else:
                    data = self._input() if engine.needs_input else b""
                    if engine.needs_input and not data:
                        self.ended_early = True
                        return 0
                    out = engine.decompress(data, want)
        except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
            if self.members > 1:
                self.trailing_garbage = True
                return 0
            raise InspectError(f"{self._kind} stream is corrupt: {exc}") from None
        view[: len(out)] = out
        self.produced += len(out)
        return len(out)


def _compressed(handle: BoundedFile, kind: str, *, named: bool = True) -> Inspection:
    if kind not in ("zlib", "gzip", "bz2", "lzma", "joblib-zlib-legacy"):
        why = f"unknown: compressed with {kind}, which artlens cannot decompress; not inspected"
        return Inspection("joblib", "unknown", (why,))
    raw = _Decompressed(handle, kind)
    try:
        scan = scan_stream(io.BufferedReader(raw, buffer_size=1 << 16))
    except InspectError:
        if not named:
            return Inspection("unknown", "n/a", ("not a recognised model format",))
        raise
    if not named and not scan.pickles and not scan.imports and scan.verdict != "dangerous":
        return Inspection("unknown", "n/a", (f"{kind} data that is not a pickle",))
    if raw.capped:  # what follows the cap went unread, even where a pickle ended there
        scan.error, scan.truncated, scan.capped = None, False, True
        if raw.timed_out:
            why = f"stopped after {raw.members} {kind} members ({FILE_TIME_LIMIT:g} s)"
            scan.note(f"unknown: {why}")
        else:
            scan.note(f"unknown: stopped after {DECOMPRESS_LIMIT} decompressed bytes")
    if raw.trailing_garbage:
        scan.note(f"unknown: data after {kind} member {raw.members - 1} does not decompress")
    fmt = "joblib" if any(i.startswith("joblib.") for i in scan.imports) else "pickle"
    summary = _scan_summary(scan)
    summary["compression"] = kind
    summary["decompressed_bytes"] = raw.produced
    if raw.members > 1:
        summary["compressed_members"] = raw.members
    integrity = f"truncated: {kind} stream ends early" if raw.ended_early else None
    return _verdict_inspection(fmt, scan, summary, integrity=integrity)


def _tar(handle: BoundedFile) -> Inspection:
    """A tar archive (torch's oldest format keeps pickles in members ``sys_info``,
    ``pickle``, ``storages``, ``tensors``): every member is read as pickles."""
    handle.seek(0)
    scans: list[tuple[str, PickleScan]] = []
    started = time.monotonic()
    budget = FILE_BYTES_LIMIT
    reasons: list[str] = []
    pickled = False
    try:
        with tarfile.open(fileobj=handle, mode="r:") as archive:
            for member in archive:
                if member.name in _TORCH_TAR_MEMBERS and not member.isfile():
                    reasons.append(
                        f"unknown: tar member {member.name!r} is a link: torch extracts it "
                        "and reads what it points to"
                    )
                if not member.isfile():
                    continue
                if budget <= 0 or time.monotonic() - started > FILE_TIME_LIMIT:
                    reasons.append("unknown: tar members left unread (size or time budget)")
                    break
                stream = archive.extractfile(member)
                if stream is None:
                    continue
                if member.name in _TORCH_TAR_LAYOUT:
                    for scan in _torch_tar_member(stream, member, budget, started):
                        budget -= scan.bytes_scanned + scan.bytes_skipped
                        scans.append((member.name, scan))
                        pickled = True
                    continue
                head = stream.read(512)
                scan = scan_stream(
                    io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16),
                    limit=min(SCAN_LIMIT, budget),
                    skip_limit=budget,
                    started=started,
                )
                nested = None
                if not _is_pickle(scan) and looks_like_model(head):
                    nested = _nested_scan(_tar_window(handle, member), member.name)
                    scan = nested or scan
                pickled = pickled or (nested is None and _is_pickle(scan))
                budget -= scan.bytes_scanned + scan.bytes_skipped
                if nested is not None or _is_pickle(scan) or scan.capped:
                    scans.append((member.name, scan))  # a member cut short is unknown
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        reasons.append(f"unknown: tar archive unreadable: {' '.join(str(exc).split())[:120]}")
    summary: dict[str, object] = {}
    if not scans:
        verdict = "unknown" if reasons else "n/a"
        return Inspection("unknown", verdict, tuple(reasons), (), summary)
    fmt = "torch-legacy" if pickled else "unknown"  # else only nested files were found
    return _merge_scans(fmt, scans, summary, None, tuple(reasons))


_TORCH_TAR_MEMBERS = frozenset({"storages", "tensors", "pickle"})
"""The members of a tar that ``torch.load`` reads (``legacy_load``), by exact name."""
_TORCH_TAR_LAYOUT = frozenset({"storages", "tensors"})
"""Members torch reads as pickles with raw bytes between them (see ``_torch_tar_member``)."""
TAR_ITEMS_LIMIT = 100_000
"""Storages or tensors of a legacy tar member read before the verdict becomes unknown."""
_STORAGE_ELEMENT = {"Float": 4, "Double": 8, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4,
                    "Short": 2, "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8,
                    "ComplexDouble": 16, "QUInt8": 1, "QInt8": 1, "QInt32": 4}  # fmt: skip
"""Bytes per element of ``torch.<Kind>Storage`` (its ``_dtype``), as torch reads them."""


def _storage_element_size(kind: object) -> int | None:
    """The element size of a storage class named in a legacy tar's ``storages`` member
    (``torch.FloatStorage``, ``torch.cuda.FloatStorage``); None for anything else."""
    if not isinstance(kind, _Global) or kind.module not in ("torch", "torch.cuda"):
        return None
    if not kind.name.endswith("Storage"):
        return None
    return _STORAGE_ELEMENT.get(kind.name.removesuffix("Storage"))


def _torch_tar_member(
    stream: IO[bytes], member: tarfile.TarInfo, budget: int, started: float
) -> list[PickleScan]:
    """The pickles of a legacy tar's ``storages`` or ``tensors`` member, found where
    ``torch.serialization.legacy_load`` reads them: a count, then per item a pickle and raw
    bytes (a storage's int64 element count and its elements; a tensor's int32 ndim, 4
    bytes, its sizes, strides and offset), then (``storages`` only) a pickle of views.
    Read as one stream of pickles instead, the raw bytes can hide the pickle torch reads
    next.  Stops where torch would (a value it cannot use, data cut short); a value this
    reader cannot follow is unknown."""
    scans: list[PickleScan] = []

    def one() -> PickleScan | None:
        """The next pickle, or None when torch would not get past it."""
        left = min(SCAN_LIMIT, budget - sum(s.bytes_scanned for s in scans))
        scan = scan_stream(stream, limit=max(left, 0), max_pickles=1, started=started)
        scans.append(scan)
        clean = scan.pickles and scan.error is None and not scan.capped
        return scan if clean and scan.verdict != "dangerous" else None

    def stop(why: str, *, corrupt: bool = False) -> list[PickleScan]:
        end = PickleScan()
        if corrupt:  # torch fails here: nothing after it is read
            end.error, end.truncated = why, True
        else:
            end.note(f"unknown: {why}")
        scans.append(end)
        return scans

    def raw(size: int) -> bool:
        """Skip ``size`` raw bytes as torch reads them; False when the member ends first."""
        here = stream.tell()
        if here + size > member.size:
            return False
        stream.seek(here + size)
        return True

    first = one()
    if first is None:
        # data no unpickler gets into (torch fails at once) is no pickle, as in other members
        return scans if _is_pickle(scans[0]) or scans[0].capped else []
    count = first.objects[0] if first.objects else None
    if not isinstance(count, int):
        return stop(f"{member.name}: the count of items is not a number artlens can read")
    if count > TAR_ITEMS_LIMIT:
        return stop(f"{member.name}: {count} items, over the {TAR_ITEMS_LIMIT} read")
    for _ in range(count):
        if time.monotonic() - started > FILE_TIME_LIMIT:
            return stop(f"{member.name}: items left unread ({FILE_TIME_LIMIT:g} s)")
        item = one()
        if item is None:
            return scans
        args = item.objects[0] if item.objects else None
        if not isinstance(args, tuple) or len(args) != 3:
            return stop(f"{member.name}: an item artlens cannot read ({type(args).__name__})")
        if member.name == "storages":
            element = _storage_element_size(args[2])
            if element is None:
                return stop(f"{member.name}: a storage of a type artlens cannot size")
            numel = stream.read(8)
            count_of = int.from_bytes(numel, "little", signed=True) if len(numel) == 8 else -1
            if count_of < 0 or not raw(count_of * element):
                return stop(f"{member.name}: storage data cut short", corrupt=True)
        else:
            ndim = stream.read(4)
            dims = int.from_bytes(ndim, "little", signed=True) if len(ndim) == 4 else -1
            if dims < 0 or not raw(4 + 16 * dims + 8):
                return stop(f"{member.name}: tensor data cut short", corrupt=True)
    if member.name == "storages":
        one()  # the storage views; torch reads nothing of this member after them
    return scans


def _is_pickle(scan: PickleScan) -> bool:
    """Whether a scan found a pickle: a whole one, a global, or something dangerous."""
    return bool(scan.pickles or scan.imports or scan.verdict == "dangerous")


def _tar_window(handle: BoundedFile, member: tarfile.TarInfo) -> Reader | str:
    """The bytes of a tar member in place, or why they cannot be read that way."""
    end = member.offset_data + member.size
    if member.issparse() or end > handle.size:
        return f"{'sparse' if member.issparse() else 'truncated'} tar member"
    return _Window(handle, member.offset_data, member.size, member.name)


class _MemberReader:
    """A ``Reader`` over one archive member, inspected as a file of its own; closing it
    leaves the archive open."""

    size: int
    identity: str

    def read_at(self, offset: int, n: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> _MemberReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Window(_MemberReader):
    """``size`` bytes of ``parent`` from ``offset``: a member stored uncompressed, read in
    place whatever its size."""

    def __init__(self, parent: BoundedFile, offset: int, size: int, name: str) -> None:
        self._parent = parent
        self._offset = offset
        self.size = size
        self.identity = f"{parent.identity}!{name}"

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        return self._parent.read_at(self._offset + offset, min(n, self.size - offset))


class _InMemory(_MemberReader):
    """Bytes decompressed from a member (within ``NESTED_IN_MEMORY``)."""

    def __init__(self, data: bytes, identity: str) -> None:
        self._data = data
        self.size = len(data)
        self.identity = identity

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0:
            return b""
        return self._data[offset : offset + n]


def _nested_scan(where: Reader | str, name: str) -> PickleScan | None:
    """An archive member that is itself a model file (a zip, tar or compressed stream, as a
    TorchServe ``.mar`` holds a ``model.pt``), inspected as one and told as a scan that
    carries its verdict; None when it is no model file.  ``where`` is its bytes, or why
    they could not be read (then it is unknown)."""
    scan = PickleScan()
    depth = _NESTING.get()
    if isinstance(where, str):
        scan.note(f"unknown: nested file not inspected ({where})")
        return scan
    if depth >= NESTING_LIMIT:
        scan.note(f"unknown: archives nested over {NESTING_LIMIT} deep, not inspected")
        return scan
    token = _NESTING.set(depth + 1)
    try:
        found = _inspect(BoundedFile(where, name), name)
    finally:
        _NESTING.reset(token)
    # the parent's budget pays for the nested reads, and for what was decompressed for them
    scan.bytes_skipped = found.bytes_read + (where.size if isinstance(where, _InMemory) else 0)
    if found.verdict == "n/a":
        return None
    why = next((r for r in found.reasons if r.startswith(found.verdict)), None)
    why = why or (found.reasons[0] if found.reasons else found.integrity or "")
    if found.verdict in ("dangerous", "unknown"):
        scan.note(f"{found.verdict}: nested {found.format}: {why}"[:400])
    elif found.verdict != "safe":  # corrupt: what a loader makes of it is anyone's guess
        scan.note(f"unknown: nested {found.format} is {found.verdict}: {why}"[:400])
    for dotted in found.imports:
        scan.imports.setdefault(dotted, "safe" if found.verdict == "safe" else "unknown")
    return scan


def _safetensors(handle: BoundedFile) -> Inspection:
    length = int.from_bytes(handle.read_at(0, 8), "little")
    # a length past the end of the file (or over the format's limit) is a broken file,
    # whatever the budget: only a header that could be read is "unknown" for its size
    fits = 8 + length <= handle.size and length <= _st.MAX_HEADER
    if fits and length > SAFETENSORS_HEADER_BUDGET:
        why = (
            f"unknown: header of {length} bytes is over the {SAFETENSORS_HEADER_BUDGET}-byte "
            "budget; not parsed"
        )
        return Inspection("safetensors", "unknown", (why,))
    try:
        header = _st.read_header_from(handle)
    except InspectError as exc:
        integrity = f"truncated: {exc}" if exc.truncated else None
        return Inspection("safetensors", "corrupt", (str(exc),), integrity=integrity)
    summary: dict[str, object] = {"metadata_keys": sorted(header.metadata)[:50]}
    tensors = {name: (info.dtype, info.shape) for name, info in header.tensors.items()}
    _tensor_summary(summary, tensors)
    summary["metadata"] = {k: v[:200] for k, v in list(header.metadata.items())[:20]}
    return Inspection("safetensors", "safe", (), (), summary)


def _npy_header(read: IO[bytes] | io.RawIOBase, size: int) -> _npy.NpyHeader:
    prefix = _read_prefix(read, min(size, 12 + _npy.MAX_HEADER))
    return _npy.parse_npy_header(prefix)


def _read_prefix(stream: IO[bytes] | io.RawIOBase, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = stream.read(min(1 << 16, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total >= 12:
            joined = b"".join(chunks)
            need = _npy_needed(joined)
            if need is not None and total >= need:
                return joined
    return b"".join(chunks)


def _npy_needed(prefix: bytes) -> int | None:
    if prefix[6:7] == b"\x01":
        return 10 + int.from_bytes(prefix[8:10], "little")
    if prefix[6:7] in (b"\x02", b"\x03"):
        return 12 + int.from_bytes(prefix[8:12], "little")
    return None


def _npy_summary(header: _npy.NpyHeader) -> dict[str, object]:
    return {
        "dtype": header.descr,
        "shape": list(header.shape),
        "fortran_order": header.fortran_order,
        "npy_version": list(header.version),
    }


def _npy_file(handle: BoundedFile) -> Inspection:
    handle.seek(0)
    try:
        header = _npy_header(handle, handle.size)
    except OverBudgetError as exc:
        return Inspection("npy", "unknown", (f"unknown: {exc}",))
    summary = _npy_summary(header)
    if header.has_object or not header.understood:
        stream = handle.reader(header.data_offset)
        scan = scan_stream(stream, max_pickles=1, base=header.data_offset)
        if not header.has_object and not scan.pickles and not scan.imports:
            why = (f"unknown: unreadable dtype {header.descr[:80]}",)
            return Inspection("npy", "unknown", why, (), summary)
        summary.update(_scan_summary(scan))
        note = ("object array: its data is a pickle, loading needs allow_pickle=True",)
        return _verdict_inspection("npy", scan, summary, note)
    expected = header.data_offset + (header.data_size or 0)
    if header.data_size is None:
        return Inspection("npy", "unknown", (f"unreadable dtype {header.descr}",), (), summary)
    if handle.size < expected:
        have = handle.size - header.data_offset
        integrity = f"truncated: npy data is {have} bytes, shape needs {header.data_size}"
        return Inspection("npy", "corrupt", (integrity,), (), summary, integrity)
    reasons: tuple[str, ...] = ()
    if handle.size > expected:
        reasons = (f"{handle.size - expected} bytes after the array data",)
    return Inspection("npy", "safe", reasons, (), summary)


def _zip_name_problems(handle: BoundedFile, infos: list[zipfile.ZipInfo]) -> list[str]:
    """Entries loaders may read differently: duplicate names (which one is read depends on
    the reader) and local headers whose name differs from the central directory's."""
    problems: list[str] = []
    counts = Counter(info.filename for info in infos)
    for name, count in counts.items():
        if count > 1:
            problems.append(f"dangerous: zip holds {count} entries named {name!r}")
    for info in infos:
        local = handle.read_at(info.header_offset, 30)
        if len(local) < 30 or not local.startswith(b"PK\x03\x04"):
            problems.append(f"dangerous: zip entry {info.filename!r} has no local header")
            continue
        length = int.from_bytes(local[26:28], "little")
        raw = handle.read_at(info.header_offset + 30, length)
        central = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if raw != central:
            shown = raw.decode("utf-8", "backslashreplace")
            problems.append(
                f"dangerous: zip entry {info.filename!r} is named {shown!r} in its local header"
            )
    return problems[:20]


def _moved_directory(handle: BoundedFile, archive: zipfile.ZipFile) -> tuple[str, ...]:
    """Python's ``zipfile`` reads the central directory that ends at the end record and
    shifts every offset by how far it is from where the record says it starts (data put in
    front of the zip); torch's reader (miniz) reads it where the record says.  A zip that
    starts at byte 0 with a local header has nothing in front: when the two differ, each
    reader can see a different directory, so a different ``data.pkl``.  Unknown, not
    dangerous: data put in front of an ordinary zip does the same."""
    end_record = getattr(zipfile, "_EndRecData", None)  # what ZipFile itself just read
    if end_record is None:
        return ()
    try:
        endrec = end_record(handle)
    except (OSError, ValueError, struct.error):
        return ()
    if endrec is None:
        return ()
    declared = endrec[getattr(zipfile, "_ECD_OFFSET", 6)]
    if declared == archive.start_dir:
        return ()
    return (
        f"unknown: the zip's central directory is read at byte {archive.start_dir} but its "
        f"end record puts it at byte {declared}: zip readers (torch's among them) can see "
        "other entries than those inspected",
    )


def _zip(handle: BoundedFile) -> Inspection:
    handle.seek(0)
    try:
        archive = open_zip(handle)
    except ZipTooLargeError as exc:  # not read, so not known to be broken either
        return _broken_zip(handle, exc, integrity=None)
    except (
        zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
        NotImplementedError, struct.error,
    ) as exc:  # fmt: skip
        return _broken_zip(handle, exc)
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        integrity = None
        for info in infos:
            end = info.header_offset + 30 + len(info.orig_filename) + info.compress_size
            if end > handle.size:
                integrity = f"truncated: zip entry {info.filename!r} runs past end of file"
                break
        problems = tuple(_zip_name_problems(handle, infos)) + _moved_directory(handle, archive)
        if _pt2.is_pt2(names):
            return _export_archive(handle, archive, infos, integrity, problems)
        is_torch = any(re.search(r"(^|/)(data|constants)\.pkl$", n) for n in names)
        problems += _python_code(names, torchscript=is_torch)
        if is_torch:
            return _torch_zip(handle, archive, infos, integrity, problems)
        if names and all(n.endswith(".npy") for n in names if not n.endswith("/")):
            return _npz(handle, archive, infos, integrity, problems)
        fmt = "mar" if any(_MAR_MANIFEST.search(n) for n in names) else "zip"
        summary: dict[str, object] = {"entries": len(names), "names": names[:SHOWN_TENSORS]}
        scans, headers, extra = _scan_entries(handle, archive, infos)
        if headers:
            shown = list(headers.items())[:SHOWN_TENSORS]
            summary["arrays"] = {name: _npy_summary(header) for name, header in shown}
        notes = problems + extra
        # keras.saving.load_model builds the model from config.json before it looks for
        # the weights, which may be model.weights.h5 or model.weights.npz
        weights = any(n.endswith((".weights.h5", ".weights.npz")) for n in names)
        if "config.json" in names and (weights or handle.name.lower().endswith(".keras")):
            notes += ("unknown: Keras archive: config may name Lambda-layer code",)
        if scans:
            return _merge_scans(fmt, scans, summary, integrity, notes)
        if notes:
            verdict = worst_verdict(*(r.split(":", 1)[0] for r in notes))
            return Inspection(fmt, verdict, notes, (), summary, integrity)
        verdict = "corrupt" if integrity else "n/a"
        return Inspection(fmt, verdict, (), (), summary, integrity)


_MAR_MANIFEST = re.compile(r"(^|/)MAR-INF/MANIFEST\.json$")
_PYTHON_CODE = (".py", ".pyc", ".pyo")
_TORCHSCRIPT_CODE = re.compile(r"(^|/)code/")


def _python_code(names: list[str], *, torchscript: bool = False) -> tuple[str, ...]:
    """Why an archive holding Python is at least unknown: TorchServe runs a ``.mar``'s
    handler, ``torch.package`` imports its modules (``torchscript``: a torch zip's
    ``code/`` folder is TorchScript, which ``_torch_zip`` reports as such)."""
    notes: list[str] = []
    if any(_MAR_MANIFEST.search(n) for n in names):
        notes.append("unknown: TorchServe archive (MAR-INF/MANIFEST.json): TorchServe runs its "
                     "handler, Python code")  # fmt: skip
    code = [n for n in names if n.lower().endswith(_PYTHON_CODE)]
    if torchscript:
        code = [n for n in code if not _TORCHSCRIPT_CODE.search(n)]
    if code:
        shown = PurePath(code[0]).name
        notes.append(f"unknown: holds Python code that the loader runs ({len(code)} file(s), "
                     f"e.g. {shown})")  # fmt: skip
    return tuple(notes)


def _export_archive(
    handle: BoundedFile,
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    integrity: str | None,
    problems: tuple[str, ...],
) -> Inspection:
    """A PyTorch 2 export (see ``store.inspect.pt2``): every entry an unpickler gets past is
    scanned (sample inputs, pickled weights and constants, raw pickles), the graph is
    searched for escapes, and the verdict is never better than unknown."""
    names = [info.filename for info in infos]
    first = tuple(n for n in names if _pt2.SAMPLE_INPUTS.search(n))
    scans, _, budget_notes = _scan_entries(handle, archive, infos, first)
    graphs = _pt2.graph_members(infos)
    notes = [
        "unknown: PyTorch 2 export: torch.export.load evaluates its graph's sympy expressions "
        "and ExportedProgram.module() runs its guards code (not vetted)"
    ]
    if any(_pt2.AOTI.search(n) for n in names):
        notes.append("unknown: holds AOTInductor compiled code (data/aotinductor/) the loader runs")
    for info in graphs[: _pt2.GRAPHS_READ]:
        notes += _pt2.graph_notes(archive, info)
    if len(graphs) > _pt2.GRAPHS_READ:
        notes.append(f"unknown: {len(graphs) - _pt2.GRAPHS_READ} more graphs not read for escapes")
    summary: dict[str, object] = {
        "entries": len(names),
        "graphs": [i.filename for i in graphs][:SHOWN_TENSORS],
    }
    extra = (*notes, *_python_code(names), *problems, *budget_notes)
    return _merge_scans("pt2", scans, summary, integrity, extra)


def _scan_entries(
    handle: BoundedFile,
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    first: tuple[str, ...] = (),
) -> tuple[list[tuple[str, PickleScan]], dict[str, _npy.NpyHeader], tuple[str, ...]]:
    """Scan every entry that is a pickle by name or by content, and every ``.npy`` by its
    magic (an object array's data is a pickle), within one file's byte and time budget;
    an entry that is a model file of another kind (a nested archive) is inspected as one,
    and an entry that looked like a model but whose reading a budget stopped is unknown.
    An entry whose first bytes an unpickler gets past is read to its end: a pickle that
    opens with a long string shows nothing in its first kilobyte.

    Returns the scans, the arrays' headers and reasons (budget hits, unreadable entries).
    """
    scans: list[tuple[str, PickleScan]] = []
    arrays: dict[str, _npy.NpyHeader] = {}
    extra: list[str] = []
    started = time.monotonic()
    budget = FILE_BYTES_LIMIT
    ordered = sorted(infos, key=lambda i: (i.filename not in first, first.index(i.filename)
                                           if i.filename in first else 0))  # fmt: skip
    for index, info in enumerate(ordered):
        if info.is_dir():
            continue
        if budget <= 0 or time.monotonic() - started > FILE_TIME_LIMIT:
            left = len(ordered) - index
            extra.append(f"unknown: {left} zip entries not read (size or time budget)")
            break
        try:
            with archive.open(info) as member:
                head = member.read(SNIFF_HEAD)
                named = info.filename.lower().endswith(".pkl")
                modelish = looks_like_model(head)
                if head.startswith(_npy.MAGIC):
                    found = _npz_member(member, head, info, budget)
                    if isinstance(found, _npy.NpyHeader):
                        arrays[info.filename] = found
                        continue
                    scan = found
                elif named or modelish or _unpickler_gets_past(head):
                    stream = io.BufferedReader(_Prefixed(head, member), buffer_size=1 << 16)
                    scan = scan_stream(
                        stream, limit=min(SCAN_LIMIT, budget), skip_limit=budget, started=started
                    )
                    if scan.bytes_scanned >= SCAN_LIMIT and not scan.capped:
                        scan.capped = True
                    if not named and not modelish and not _loads_something(scan):
                        continue  # text or data the unpickler stops in without running
                    if not named and not _is_pickle(scan):
                        nested = None
                        if modelish:
                            where = _zip_member(handle, archive, info, budget)
                            nested = _nested_scan(where, info.filename)
                        if nested is not None:
                            scan = nested
                        elif not scan.capped:  # a member cut short is unknown
                            continue  # data no loader unpickles
                else:
                    continue
        except zipfile.BadZipFile as exc:
            extra.append(f"dangerous: {' '.join(str(exc).split())[:160]}")
            continue
        except InspectError as exc:
            extra.append(f"unknown: {info.filename}: {exc}")
            continue
        except _ZIP_ERRORS as exc:
            failed = PickleScan()
            failed.error = f"cannot read zip entry: {' '.join(str(exc).split())[:200]}"
            scans.append((info.filename, failed))
            continue
        budget -= scan.bytes_scanned + scan.bytes_skipped
        if scan.capped and not any(r.startswith("unknown") for r in scan.reasons):
            scan.note(f"unknown: entry larger than {SCAN_LIMIT} bytes, scan capped")
        scans.append((info.filename, scan))
    return scans, arrays, tuple(extra)


def _unpickler_gets_past(head: bytes) -> bool:
    """Whether an unpickler reading ``head`` (an entry's first bytes) would not stop in it
    with an error: it completes a pickle, names a global, or is still reading at its end."""
    if not head or head[0] not in OPCODE_BYTES:
        return False
    scan = scan_bytes(head, limit=len(head) + 1, max_pickles=1)
    return scan.truncated or _is_pickle(scan)


def _loads_something(scan: PickleScan) -> bool:
    """Whether an entry the sniff did not take for a model is a pickle after all: it
    completes, is dangerous, calls what it imports, or a budget stopped it (``cat\ndog``
    in a vocabulary file names a global, and the unpickler stops right after)."""
    return bool(scan.pickles or scan.capped or scan.verdict == "dangerous" or _calls_import(scan))


def _calls_import(scan: PickleScan) -> bool:
    """Whether a pickle called (not only BUILT) something it imports: the unpickler runs
    each opcode as it reads it, so that call ran even where the stream breaks after it."""
    called = sum(n for op, n in scan.calls.items() if op != "BUILD")
    return bool(scan.imports and called)


def _zip_member(
    handle: BoundedFile, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int
) -> Reader | str:
    """The bytes of a zip member: in place when stored uncompressed, else decompressed into
    memory within ``NESTED_IN_MEMORY`` and ``budget``; or why they cannot be had."""
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        local = handle.read_at(info.header_offset, 30)
        if len(local) == 30 and local.startswith(b"PK\x03\x04"):
            name_len = int.from_bytes(local[26:28], "little")
            start = info.header_offset + 30 + name_len + int.from_bytes(local[28:30], "little")
            if start + info.compress_size <= handle.size:
                return _Window(handle, start, info.compress_size, info.filename)
    cap = min(NESTED_IN_MEMORY, budget)
    if info.file_size > cap:
        return f"{info.file_size} bytes compressed in the archive, over the {cap}-byte budget"
    with archive.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        return f"over the {cap}-byte budget"
    return _InMemory(data, f"{handle.identity}!{info.filename}")


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: an entry whose first bytes were sniffed."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _npz_member(
    member: IO[bytes], head: bytes, info: zipfile.ZipInfo, budget: int
) -> _npy.NpyHeader | PickleScan:
    """An ``.npy`` entry's header, or the scan of its data when that is a pickle."""
    rest = _read_prefix(_Prefixed(head, member), min(info.file_size, 12 + _npy.MAX_HEADER))
    header = _npy.parse_npy_header(rest)
    if not header.has_object and header.understood:
        return header
    tail = rest[header.data_offset :]
    stream = io.BufferedReader(_Prefixed(tail, member), buffer_size=1 << 16)
    scan = scan_stream(stream, limit=min(SCAN_LIMIT, budget), max_pickles=1, skip_limit=budget)
    if not header.understood and not scan.pickles and not scan.imports:
        scan = PickleScan()
        scan.note(f"unknown: {info.filename}: dtype {header.descr[:80]} not understood")
    else:
        scan.note(f"{info.filename}: object array: its data is a pickle")
    return scan


def _merge_scans(
    fmt: str,
    scans: list[tuple[str, PickleScan]],
    summary: dict[str, object],
    integrity: str | None,
    extra: tuple[str, ...] = (),
) -> Inspection:
    merged = PickleScan()
    for entry, scan in scans:
        for dotted, verdict in scan.imports.items():
            merged.imports.setdefault(dotted, verdict)
        for reason in scan.counted_reasons():
            merged.note(f"{entry}: {reason}" if len(scans) < 50 else reason)
        merged.calls.update(scan.calls)
        merged.capped = merged.capped or scan.capped
        merged.nested += scan.nested
        merged.pickles += scan.pickles
        merged.opcodes += scan.opcodes
        merged.bytes_scanned += scan.bytes_scanned
        merged.protocol = merged.protocol or scan.protocol
        merged.storages += scan.storages
        merged.storage_keys |= scan.storage_keys
        if scan.error is not None and merged.error is None:
            merged.error = f"{entry}: {scan.error}"
            merged.truncated = scan.truncated
        for name, tensor in scan.tensors.items():
            merged.tensors.setdefault(name, tensor)
        if not merged.top_keys:
            merged.top_keys = scan.top_keys
    summary.update(_scan_summary(merged))
    summary["pickle_entries"] = [entry for entry, _ in scans]
    # each member's own verdict, not the merged reasons: those carry the entry's name in
    # front, so an entry's "unknown: ..." no longer reads as one once merged
    members = worst_verdict(*(scan.verdict for _, scan in scans))
    return _verdict_inspection(fmt, merged, summary, extra, integrity, members)


_STORAGE_ENTRY = re.compile(r"(^|/)data/[^/]+$")


def _torch_zip(
    handle: BoundedFile,
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    integrity: str | None,
    problems: tuple[str, ...] = (),
) -> Inspection:
    names = [info.filename for info in infos]
    main = tuple(n for n in names if re.search(r"(^|/)data\.pkl$", n))
    # tensor bytes are never unpickled; but torch names the archive folder after the file
    # (torch.save(obj, "data.pt") writes data/data.pkl) and finds records case-blind, so
    # nothing named like a pickle is ever taken for a storage
    storage: list[zipfile.ZipInfo] = []
    others: list[zipfile.ZipInfo] = []
    for info in infos:  # one pass: a list test per entry was quadratic (20 s at 65,536)
        name = info.filename
        is_storage = _STORAGE_ENTRY.search(name) and not name.lower().endswith(".pkl")
        (storage if is_storage else others).append(info)
    scans, _, budget_notes = _scan_entries(handle, archive, others, main)
    summary: dict[str, object] = {
        "entries": len(names),
        "storage_entries": len(storage),
        "storage_bytes": sum(i.file_size for i in storage),
    }
    extra: list[str] = [*problems, *budget_notes]
    if any(re.search(r"(^|/)code/", n) for n in names):
        extra.append("unknown: TorchScript archive: holds code that torch.jit.load compiles")
    if main and scans and scans[0][0] == main[0]:
        prefix = main[0][: -len("data.pkl")]
        present = {i.filename[len(prefix) + 5 :] for i in storage if i.filename.startswith(prefix)}
        keys = scans[0][1].storage_keys
        missing = sorted(keys - present)
        if missing and integrity is None:
            integrity = (
                f"incomplete: {len(missing)} tensor storages missing (e.g. data/{missing[0]})"
            )
    return _merge_scans("torch-zip", scans, summary, integrity, tuple(extra))


def _broken_zip(
    handle: BoundedFile,
    exc: BaseException,
    integrity: str | None = "truncated: zip central directory missing",
) -> Inspection:
    """A zip without a readable central directory; salvage the first stored pickle entry.
    ``integrity`` None: the directory went unread (over a cap), so the verdict is at least
    unknown rather than corrupt."""
    floor = "corrupt" if integrity else "unknown"
    head = handle.read_at(0, 30)
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return Inspection("zip", floor, (str(exc),), integrity=integrity)
    method = int.from_bytes(head[8:10], "little")
    size = int.from_bytes(head[18:22], "little")
    name_len = int.from_bytes(head[26:28], "little")
    extra_len = int.from_bytes(head[28:30], "little")
    name = handle.read_at(30, name_len).decode("utf-8", "backslashreplace")
    fmt = "torch-zip" if re.search(r"(^|/)(data|constants)\.pkl$", name) else "zip"
    why = " ".join(str(exc).split())[:120]
    reasons = [f"{integrity} ({why})" if integrity else f"unknown: {why}"]
    if name.endswith(".pkl") and method == 0 and size > 0:
        data = handle.read_at(30 + name_len + extra_len, min(size, SCAN_LIMIT))
        scan = scan_bytes(data)
        summary = _scan_summary(scan)
        summary["salvaged_entry"] = name
        result = _verdict_inspection(fmt, scan, summary, tuple(reasons), integrity)
        return replace(result, verdict=worst_verdict(result.verdict, floor))
    return Inspection(fmt, floor, tuple(reasons), integrity=integrity)


def _npz(
    handle: BoundedFile,
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    integrity: str | None,
    problems: tuple[str, ...] = (),
) -> Inspection:
    scans, headers, extra = _scan_entries(handle, archive, infos)
    reasons = problems + extra
    arrays: dict[str, object] = {}
    for name, header in headers.items():
        arrays[name] = _npy_summary(header)
        size = next(i.file_size for i in infos if i.filename == name)
        needed = header.data_offset + (header.data_size or 0)
        if header.data_size is not None and size < needed and integrity is None:
            integrity = f"truncated: {name} is shorter than its shape says"
    summary: dict[str, object] = {
        "entries": len(infos),
        "arrays": dict(list(arrays.items())[:SHOWN_TENSORS]),
    }
    if scans:
        return _merge_scans("npz", scans, summary, integrity, reasons)
    if reasons:
        verdict = worst_verdict(*(r.split(":", 1)[0] for r in reasons))
        return Inspection("npz", verdict, reasons, (), summary, integrity)
    verdict = "corrupt" if integrity else "safe"
    return Inspection("npz", verdict, (), (), summary, integrity)


def _gguf_file(handle: BoundedFile) -> Inspection:
    prefix = handle.read_at(0, GGUF_WINDOW)
    try:
        header = _gguf.parse_gguf(prefix, handle.size)
    except InspectError as exc:
        integrity = f"truncated: {exc}" if exc.truncated else None
        return Inspection("gguf", "corrupt", (str(exc),), integrity=integrity)
    summary: dict[str, object] = {
        "gguf_version": header.version,
        "tensor_count": header.tensor_count,
        "metadata_count": header.kv_count,
        "metadata_keys": list(header.metadata)[:100],
    }
    for key in ("general.architecture", "general.name", "general.file_type"):
        value = header.metadata.get(key)
        if isinstance(value, (str, int, float)):
            summary[key] = value
    if not header.complete:
        reason = f"unknown: header larger than {GGUF_WINDOW} bytes, not fully read"
        return Inspection("gguf", "unknown", (reason,), (), summary)
    summary["parameter_count"] = _gguf.gguf_parameters(header)
    summary["tensors"] = {
        name: [dtype, list(shape)] for name, (dtype, shape) in list(header.tensors.items())[:20]
    }
    reasons = [_template_verdict(key, value) for key, value in header.templates]
    verdict = worst_verdict("safe", *(r.split(":", 1)[0] for r in reasons if r))
    if verdict != "safe":
        return Inspection("gguf", verdict, tuple(r for r in reasons if r), (), summary)
    if header.templates:
        reasons = ["has tokenizer.chat_template (a Jinja template some loaders render)"]
    return Inspection("gguf", "safe", tuple(reasons), (), summary)


def _template_verdict(key: str, value: str | list[str]) -> str:
    """Why the chat template under ``key`` (a string, or an array of strings, which
    llama.cpp turns into one text) is dangerous or unknown; "" when it is neither."""
    text = value if isinstance(value, str) else "\n".join(value)
    probes = sorted({m.group(0) for m in _SSTI.finditer(text)})[:5]
    if probes:
        return f"dangerous: {key} reaches Python internals ({', '.join(probes)})"
    built = sorted({m.group(0) for m in _BUILT_NAMES.finditer(text)})[:5]
    if built:
        return (
            f"unknown: {key} builds names at render time "
            f"({', '.join(repr(b) for b in built)}): what it reaches cannot be read off it"
        )
    if not isinstance(value, str):
        return f"unknown: {key} is an array of {len(value)} strings, which loaders render as text"
    return ""


_SSTI = re.compile(
    r"__(?:class|mro|base|bases|subclasses|globals|builtins|import|init|getattribute|dict)__"
    r"|\b(?:popen|subprocess|os\.system)\b"
)
"""What a Jinja chat template needs to escape its sandbox-less renderer (llama-cpp-python
rendered them unsandboxed); real templates use none of it."""

_BUILT_NAMES = re.compile(
    r"\battr\b"  # the attr filter: an attribute named by any expression
    r"|__"  # a piece of a dunder name, joined up with ~ or + (or in any string)
    r"|(['\"])_+\1"  # a literal of underscores only
    r"|\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{|[0-7]{1,3})"  # escapes
    r"|%c"  # characters from numbers, by |format
    r"|\bdict\s*\([^)]*\b_\w*\s*="  # dict(_x=...) keys as strings
    r"|\|\s*string\s*(?:\|\s*list\s*)?\)\s*\["  # characters picked out of a stringified object
)
"""How a chat template can spell a name the probes above would catch without writing it:
such a template is unknown (a real one builds no names)."""
