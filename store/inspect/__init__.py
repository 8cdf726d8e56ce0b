"""Say what a model file holds, and whether loading it would run code, without loading it.

``inspect_file`` picks the format from magic bytes (extension second), reads only bounded
headers and pickle streams, never tensor data, and never unpickles: pickles are judged by
the globals they import (see ``policy``).  Verdicts: "safe" (parsed fully, nothing that
runs code), "unknown" (not fully vetted), "dangerous" (imports something that runs code or
touches the system), "corrupt" (does not parse), "n/a" (not a model format).
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import os
import re
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import IO

from store.inspect import gguf as _gguf
from store.inspect import numpy_format as _npy
from store.inspect import safetensors as _st
from store.inspect._io import BoundedFile
from store.inspect.errors import InspectError
from store.inspect.pickle_scan import SCAN_LIMIT, PickleScan, scan_bytes, scan_stream

__all__ = [
    "FORMATS",
    "VERDICTS",
    "InspectError",
    "Inspection",
    "inspect_file",
    "is_model_candidate",
]

FORMATS = (
    "pickle", "torch-zip", "torch-legacy", "joblib", "npy", "npz", "safetensors", "gguf",
    "hdf5", "onnx", "zip", "tflite", "unknown",
)  # fmt: skip
VERDICTS = ("safe", "unknown", "dangerous", "corrupt", "n/a")
SHOWN_TENSORS = 20
MAX_ZIP_PICKLES = 32
GGUF_WINDOW = 16 * 1024 * 1024
DECOMPRESS_LIMIT = 256 * 1024 * 1024

_ZIP_ERRORS = (
    zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, ValueError,
    struct.error,
)  # fmt: skip
_HDF5 = b"\x89HDF\r\n\x1a\n"
_TORCH_LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_PICKLE_EXT = {".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib", ".sav", ".dill",
               ".p", ".pk", ".model", ".tar"}  # fmt: skip
_MODEL_EXT = _PICKLE_EXT | {".npy", ".npz", ".safetensors", ".gguf", ".h5", ".hdf5", ".keras",
                            ".onnx", ".tflite", ".ggml", ".mar", ".pb"}  # fmt: skip
_ONLY_MODELS = {".ckpt", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".safetensors", ".npy",
                ".npz", ".gguf", ".h5", ".hdf5", ".keras", ".onnx", ".tflite"}  # fmt: skip
"""Extensions that name nothing but a model or checkpoint: empty, such a file is broken
(``.bin``, ``.model``, ``.tar`` and the like also name other things, and stay n/a)."""
_COMPRESSED_EXT = {".gz", ".z", ".bz2", ".xz", ".lzma", ".lz4", ".zlib"}


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
    except InspectError as exc:
        return Inspection("unknown", "n/a", (str(exc),))
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
    head = handle.read_at(0, 64)
    suffixes = _suffixes(name)
    ext = suffixes[-1] if suffixes else ""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip(handle)
    if head.startswith(_npy.MAGIC):
        return _npy_file(handle)
    if head.startswith(_gguf.MAGIC):
        return _gguf_file(handle)
    if head.startswith(_HDF5) or handle.read_at(512, 8) == _HDF5:
        return _recognised("hdf5", "HDF5/Keras file: Keras Lambda layers can hold code")
    if head[4:8] == b"TFL3":
        return _recognised("tflite", "TFLite flatbuffer")
    if head.startswith(_TORCH_LEGACY):
        return _pickle_file(handle, "torch-legacy", max_pickles=5)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return _pickle_file(handle, "pickle")
    compression = _compression(head)
    if compression and (is_model_candidate(name) or ext in _COMPRESSED_EXT):
        return _compressed(handle, compression)
    if _looks_like_safetensors(head, handle.size):
        return _safetensors(handle)
    if ext == ".onnx" and _plausible_protobuf(head):
        return _recognised("onnx", "ONNX protobuf")
    if ext in _PICKLE_EXT and head:
        return _pickle_file(handle, "pickle", guessed=True)
    if ext in _ONLY_MODELS and not head:
        return Inspection("unknown", "corrupt", ("empty file",), integrity="empty file")
    if ext == ".safetensors":  # the name promises a header; zeros or junk are a broken file
        return _safetensors(handle)
    reason = "empty file" if not head else "not a recognised model format"
    return Inspection("unknown", "n/a", (reason,))


def _recognised(fmt: str, what: str) -> Inspection:
    return Inspection(fmt, "unknown", (f"{what}: recognised, contents not inspected",))


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= _st.MAX_HEADER and head[8:9] == b"{"


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
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        return "lzma"
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
) -> Inspection:
    reasons = list(extra_reasons) + scan.reasons
    if scan.error is not None:
        reasons.append(f"corrupt: {scan.error}")
        if scan.truncated and integrity is None:
            integrity = f"truncated: {scan.error}"
    verdict = scan.verdict
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
    handle.seek(0)
    stream = io.BufferedReader(handle, buffer_size=1 << 16)
    main_index = 3 if fmt == "torch-legacy" else 0
    scan = scan_stream(stream, max_pickles=max_pickles, main_index=main_index)
    if guessed and scan.pickles == 0 and not scan.imports:
        return Inspection("unknown", "n/a", ("extension suggests a pickle, but it is not one",))
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


class _Decompressed(io.RawIOBase):
    """A forward-only decompressing reader that stops after ``DECOMPRESS_LIMIT`` bytes."""

    def __init__(self, source: BoundedFile, kind: str) -> None:
        super().__init__()
        self._source = source
        self._offset = 0
        self._kind = kind
        self._zlib = None
        self._other: bz2.BZ2Decompressor | lzma.LZMADecompressor | None = None
        if kind in ("zlib", "gzip"):
            self._zlib = zlib.decompressobj(15 if kind == "zlib" else 31)
        elif kind == "bz2":
            self._other = bz2.BZ2Decompressor()
        else:
            self._other = lzma.LZMADecompressor()
        self.produced = 0
        self.capped = False
        self.ended_early = False

    def readable(self) -> bool:
        return True

    def _input(self) -> bytes:
        data = self._source.read_at(self._offset, 1 << 16)
        self._offset += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = len(view)
        if self.produced >= DECOMPRESS_LIMIT:
            self.capped = True
            return 0
        want = min(want, DECOMPRESS_LIMIT - self.produced)
        out = b""
        try:
            while not out:
                if self._zlib is not None:
                    if self._zlib.eof:
                        return 0
                    data = self._zlib.unconsumed_tail or self._input()
                    if not data:
                        self.ended_early = True
                        return 0
                    out = self._zlib.decompress(data, want)
                else:
                    assert self._other is not None
                    if self._other.eof:
                        return 0
                    data = self._input() if self._other.needs_input else b""
                    if self._other.needs_input and not data:
                        self.ended_early = True
                        return 0
                    out = self._other.decompress(data, want)
        except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
            raise InspectError(f"{self._kind} stream is corrupt: {exc}") from None
        view[: len(out)] = out
        self.produced += len(out)
        return len(out)


def _compressed(handle: BoundedFile, kind: str) -> Inspection:
    if kind not in ("zlib", "gzip", "bz2", "lzma"):
        return Inspection("joblib", "unknown", (f"unknown: compressed with {kind}, not inspected",))
    raw = _Decompressed(handle, kind)
    scan = scan_stream(io.BufferedReader(raw, buffer_size=1 << 16))
    if raw.capped and scan.error is not None:
        scan.error, scan.truncated, scan.capped = None, False, True
        scan.reasons.append(f"unknown: stopped after {DECOMPRESS_LIMIT} decompressed bytes")
    fmt = "joblib" if any(i.startswith("joblib.") for i in scan.imports) else "pickle"
    summary = _scan_summary(scan)
    summary["compression"] = kind
    summary["decompressed_bytes"] = raw.produced
    integrity = f"truncated: {kind} stream ends early" if raw.ended_early else None
    return _verdict_inspection(fmt, scan, summary, integrity=integrity)


def _safetensors(handle: BoundedFile) -> Inspection:
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


def _npy_header(read: IO[bytes] | BoundedFile, size: int) -> _npy.NpyHeader:
    prefix = _read_prefix(read, min(size, 12 + _npy.MAX_HEADER))
    return _npy.parse_npy_header(prefix)


def _read_prefix(stream: IO[bytes] | BoundedFile, limit: int) -> bytes:
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
    header = _npy_header(handle, handle.size)
    summary = _npy_summary(header)
    if header.has_object:
        handle.seek(header.data_offset)
        stream = io.BufferedReader(handle, buffer_size=1 << 16)
        scan = scan_stream(stream, max_pickles=1, base=header.data_offset)
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


def _zip(handle: BoundedFile) -> Inspection:
    handle.seek(0)
    try:
        archive = zipfile.ZipFile(handle)
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
        pickles = [n for n in names if n.endswith(".pkl")]
        is_torch = any(re.search(r"(^|/)(data|constants)\.pkl$", n) for n in names)
        if is_torch:
            return _torch_zip(archive, infos, integrity)
        if names and all(n.endswith(".npy") for n in names):
            return _npz(archive, infos, integrity)
        summary: dict[str, object] = {"entries": len(names), "names": names[:SHOWN_TENSORS]}
        if pickles:
            scans = [_scan_entry(archive, archive.getinfo(n)) for n in pickles[:MAX_ZIP_PICKLES]]
            return _merge_scans("zip", scans, summary, integrity)
        if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
            return Inspection(
                "zip", "unknown", ("Keras archive: config may name Lambda-layer code",),
                (), summary, integrity,
            )  # fmt: skip
        verdict = "corrupt" if integrity else "n/a"
        return Inspection("zip", verdict, (), (), summary, integrity)


def _scan_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, PickleScan]:
    try:
        with archive.open(info) as member:
            data = member.read(SCAN_LIMIT + 1)
    except _ZIP_ERRORS as exc:
        failed = PickleScan()
        failed.error = f"cannot read zip entry: {' '.join(str(exc).split())[:200]}"
        return info.filename, failed
    scan = scan_bytes(data[:SCAN_LIMIT])
    if len(data) > SCAN_LIMIT:
        scan.capped = True
        scan.reasons.append(f"unknown: entry larger than {SCAN_LIMIT} bytes, scan capped")
    return info.filename, scan


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
        merged.reasons.extend(f"{entry}: {r}" for r in scan.reasons)
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
    return _verdict_inspection(fmt, merged, summary, extra, integrity)


def _torch_zip(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], integrity: str | None
) -> Inspection:
    names = [info.filename for info in infos]
    pickles = [n for n in names if n.endswith(".pkl")]
    main = [n for n in pickles if re.search(r"(^|/)data\.pkl$", n)]
    ordered = main + [n for n in pickles if n not in main]
    scans = [_scan_entry(archive, archive.getinfo(n)) for n in ordered[:MAX_ZIP_PICKLES]]
    storage = [i for i in infos if re.search(r"(^|/)data/[^/]+$", i.filename)]
    summary: dict[str, object] = {
        "entries": len(names),
        "storage_entries": len(storage),
        "storage_bytes": sum(i.file_size for i in storage),
    }
    extra: list[str] = []
    if any(re.search(r"(^|/)code/", n) for n in names):
        extra.append("unknown: TorchScript archive: holds code that torch.jit.load compiles")
    if main:
        prefix = main[0][: -len("data.pkl")]
        present = {i.filename[len(prefix) + 5 :] for i in storage if i.filename.startswith(prefix)}
        keys = scans[0][1].storage_keys
        missing = sorted(keys - present)
        if missing and integrity is None:
            integrity = (
                f"incomplete: {len(missing)} tensor storages missing (e.g. data/{missing[0]})"
            )
    return _merge_scans("torch-zip", scans, summary, integrity, tuple(extra))


def _broken_zip(handle: BoundedFile, exc: BaseException) -> Inspection:
    """A zip without a readable central directory; salvage the first stored pickle entry."""
    integrity = "truncated: zip central directory missing"
    head = handle.read_at(0, 30)
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return Inspection("zip", "corrupt", (str(exc),), integrity=integrity)
    method = int.from_bytes(head[8:10], "little")
    size = int.from_bytes(head[18:22], "little")
    name_len = int.from_bytes(head[26:28], "little")
    extra_len = int.from_bytes(head[28:30], "little")
    name = handle.read_at(30, name_len).decode("utf-8", "backslashreplace")
    fmt = "torch-zip" if re.search(r"(^|/)(data|constants)\.pkl$", name) else "zip"
    reasons = [f"{integrity} ({' '.join(str(exc).split())[:120]})"]
    if name.endswith(".pkl") and method == 0 and size > 0:
        data = handle.read_at(30 + name_len + extra_len, min(size, SCAN_LIMIT))
        scan = scan_bytes(data)
        summary = _scan_summary(scan)
        summary["salvaged_entry"] = name
        result = _verdict_inspection(fmt, scan, summary, tuple(reasons), integrity)
        if result.verdict != "dangerous":
            result = replace(result, verdict="corrupt")
        return result
    return Inspection(fmt, "corrupt", tuple(reasons), integrity=integrity)


def _npz(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], integrity: str | None
) -> Inspection:
    arrays: dict[str, object] = {}
    scans: list[tuple[str, PickleScan]] = []
    reasons: list[str] = []
    for info in infos[:256]:
        try:
            with archive.open(info) as member:
                prefix = _read_prefix(member, min(info.file_size, 12 + _npy.MAX_HEADER))
                header = _npy.parse_npy_header(prefix)
                if header.has_object:
                    rest = prefix[header.data_offset :]
                    rest += member.read(max(0, SCAN_LIMIT - len(rest)))
                    scans.append((info.filename, scan_bytes(rest, max_pickles=1)))
        except InspectError as exc:
            reasons.append(f"{info.filename}: {exc}")
            continue
        except _ZIP_ERRORS as exc:
            reasons.append(f"{info.filename}: cannot read: {' '.join(str(exc).split())[:120]}")
            continue
        arrays[info.filename] = _npy_summary(header)
        needed = header.data_offset + (header.data_size or 0)
        if header.data_size is not None and info.file_size < needed and integrity is None:
            integrity = f"truncated: {info.filename} is shorter than its shape says"
    summary: dict[str, object] = {
        "entries": len(infos),
        "arrays": dict(list(arrays.items())[:SHOWN_TENSORS]),
    }
    if scans:
        return _merge_scans("npz", scans, summary, integrity, tuple(reasons))
    verdict = "corrupt" if reasons or integrity else "safe"
    return Inspection("npz", verdict, tuple(reasons), (), summary, integrity)


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
    reasons: tuple[str, ...] = ()
    if "tokenizer.chat_template" in header.metadata:
        reasons = ("has tokenizer.chat_template (a Jinja template some loaders render)",)
    return Inspection("gguf", "safe", reasons, (), summary)
