"""safetensors diffs: which tensors were added, removed, reshaped, and how far values moved.

Tensor data is read in bounded chunks from both files at once, and chunks whose bytes are
equal are never decoded, so two 1 GB checkpoints that differ in a few tensors cost a
byte comparison plus arithmetic on the changed tensors only.  numpy is used when it is
importable; otherwise ``struct`` decodes the floats and ints, slower but exact.
"""

from __future__ import annotations

import math
import operator
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from store.diff._io import DiffError, RegularFile
from store.diff.structured import Change, diff_structured

try:
    import numpy as _np
except ImportError:  # numpy is optional
    _np = None

TensorStatus = Literal[
    "added", "removed", "dtype_changed", "shape_changed", "values_changed", "unchanged"
]
CHUNK_NUMPY = 16 << 20
CHUNK_PURE = 1 << 20

_STRUCT_CODES = {
    "F64": "d",
    "F32": "f",
    "F16": "e",
    "I64": "q",
    "U64": "Q",
    "I32": "i",
    "U32": "I",
    "I16": "h",
    "U16": "H",
    "I8": "b",
    "U8": "B",
    "BOOL": "?",
}
_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U64": 8, "I32": 4, "U32": 4,
    "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
_NUMPY_TYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "U64": "<u8", "I32": "<i4",
    "U32": "<u4", "I16": "<i2", "U16": "<u2", "I8": "i1", "U8": "u1", "BOOL": "u1",
}  # fmt: skip


@dataclass(frozen=True)
class TensorChange:
    name: str
    status: TensorStatus
    dtype_old: str | None
    dtype_new: str | None
    shape_old: tuple[int, ...] | None
    shape_new: tuple[int, ...] | None
    max_abs_diff: float | None = None
    rel_l2: float | None = None
    """||a - b|| / ||a|| (inf when ``a`` is all zeros and ``b`` is not)."""
    changed_elements: int | None = None


@dataclass
class TensorDiff:
    tensors: list[TensorChange]
    metadata: list[Change]
    equal: bool
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for change in self.tensors:
            result[change.status] = result.get(change.status, 0) + 1
        return result

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Stats:
    max_abs: float = 0.0
    diff_sq: float = 0.0
    norm_sq: float = 0.0
    changed: int = 0


def _bf16_to_f32(data: bytes) -> bytes:
    wide = bytearray(len(data) * 2)
    wide[2::4] = data[0::2]
    wide[3::4] = data[1::2]
    return bytes(wide)


def _decode_pure(data: bytes, dtype: str) -> Sequence[float]:
    if dtype == "BF16":
        data, dtype = _bf16_to_f32(data), "F32"
    code = _STRUCT_CODES[dtype]
    count = len(data) // _ITEMSIZE[dtype]
    return struct.unpack(f"<{count}{code}", data)


def _accumulate_pure(stats: _Stats, a_bytes: bytes, b_bytes: bytes, dtype: str) -> None:
    a = _decode_pure(a_bytes, dtype)
    stats.norm_sq += math.fsum(map(operator.mul, a, a))
    if a_bytes == b_bytes:
        return
    b = _decode_pure(b_bytes, dtype)
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True) if x != y]
    if diffs:
        stats.max_abs = max(stats.max_abs, max(diffs))
        stats.diff_sq += math.fsum(d * d for d in diffs)
        stats.changed += len(diffs)


def _accumulate_numpy(stats: _Stats, a_bytes: bytes, b_bytes: bytes, dtype: str) -> None:
    assert _np is not None
    if dtype == "BF16":
        a = (_np.frombuffer(a_bytes, "<u2").astype("<u4") << 16).view("<f4")
        b = (_np.frombuffer(b_bytes, "<u2").astype("<u4") << 16).view("<f4")
    else:
        a = _np.frombuffer(a_bytes, _NUMPY_TYPES[dtype])
        b = _np.frombuffer(b_bytes, _NUMPY_TYPES[dtype])
    a64 = a.astype(_np.float64)
    stats.norm_sq += float(_np.dot(a64, a64))
    if a_bytes == b_bytes:
        return
    diff = _np.abs(a64 - b.astype(_np.float64))
    stats.diff_sq += float(_np.dot(diff, diff))
    stats.max_abs = max(stats.max_abs, float(diff.max()) if diff.size else 0.0)
    stats.changed += int(_np.count_nonzero(diff))


def _ranges(start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    offset = start
    while offset < end:
        yield offset, min(end, offset + size)
        offset += size


def _compare_values(
    old: RegularFile,
    new: RegularFile,
    where_old: int,
    where_new: int,
    nbytes: int,
    dtype: str,
) -> TensorChange | _Stats | None:
    """None when the bytes are equal, else value statistics (or bare 'changed')."""
    itemsize = _ITEMSIZE.get(dtype)
    use_numpy = _np is not None and itemsize is not None
    chunk = CHUNK_NUMPY if use_numpy else CHUNK_PURE
    if itemsize:
        chunk -= chunk % itemsize
    first_diff = None
    for lo, hi in _ranges(0, nbytes, chunk):
        if old.read_at(where_old + lo, hi - lo) != new.read_at(where_new + lo, hi - lo):
            first_diff = lo
            break
    if first_diff is None:
        return None
    stats = _Stats()
    if itemsize is None:
        return stats
    accumulate = _accumulate_numpy if use_numpy else _accumulate_pure
    for lo, hi in _ranges(0, nbytes, chunk):
        a_bytes = old.read_at(where_old + lo, hi - lo)
        b_bytes = a_bytes if lo < first_diff else new.read_at(where_new + lo, hi - lo)
        if len(a_bytes) != hi - lo or len(b_bytes) != hi - lo:
            raise DiffError("a file shrank while it was being compared")
        accumulate(stats, a_bytes, b_bytes, dtype)
    return stats


def _header(path: str | os.PathLike[str]) -> Any:
    from store.inspect.errors import InspectError
    from store.inspect.safetensors import read_header

    try:
        return read_header(path)
    except InspectError as exc:
        raise DiffError(f"{os.fsdecode(os.path.basename(path))}: {exc}") from None


def diff_safetensors(path_a: str | os.PathLike[str], path_b: str | os.PathLike[str]) -> TensorDiff:
    """Per-tensor diff of two safetensors files; raises ``DiffError`` if one is invalid."""
    head_a, head_b = _header(path_a), _header(path_b)
    changes: list[TensorChange] = []
    notes: list[str] = []
    with RegularFile(path_a) as old, RegularFile(path_b) as new:
        if old.size != head_a.file_size or new.size != head_b.file_size:
            raise DiffError("a file changed size while it was being compared")
        names = list(head_a.tensors) + [n for n in head_b.tensors if n not in head_a.tensors]
        for name in sorted(names):
            info_a = head_a.tensors.get(name)
            info_b = head_b.tensors.get(name)
            if info_b is None:
                changes.append(
                    TensorChange(name, "removed", info_a.dtype, None, info_a.shape, None)
                )
                continue
            if info_a is None:
                changes.append(TensorChange(name, "added", None, info_b.dtype, None, info_b.shape))
                continue
            base = (name, info_a.dtype, info_b.dtype, info_a.shape, info_b.shape)
            if info_a.dtype != info_b.dtype:
                changes.append(TensorChange(base[0], "dtype_changed", *base[1:]))
                continue
            if info_a.shape != info_b.shape:
                changes.append(TensorChange(base[0], "shape_changed", *base[1:]))
                continue
            result = _compare_values(
                old,
                new,
                head_a.data_offset + info_a.start,
                head_b.data_offset + info_b.start,
                info_a.end - info_a.start,
                info_a.dtype,
            )
            if result is None:
                changes.append(TensorChange(base[0], "unchanged", *base[1:]))
                continue
            assert isinstance(result, _Stats)
            if info_a.dtype not in _ITEMSIZE:
                notes.append(f"{info_a.dtype} values compared by bytes only")
                changes.append(TensorChange(base[0], "values_changed", *base[1:]))
                continue
            norm = math.sqrt(result.norm_sq)
            diff = math.sqrt(result.diff_sq)
            rel = diff / norm if norm else (math.inf if diff else 0.0)
            changes.append(
                TensorChange(
                    name,
                    "values_changed",
                    info_a.dtype,
                    info_b.dtype,
                    info_a.shape,
                    info_b.shape,
                    max_abs_diff=result.max_abs,
                    rel_l2=rel,
                    changed_elements=result.changed,
                )
            )
    metadata = diff_structured(head_a.metadata, head_b.metadata)
    equal = not metadata and all(change.status == "unchanged" for change in changes)
    return TensorDiff(changes, metadata, equal, sorted(set(notes)))


__all__ = ["TensorChange", "TensorDiff", "diff_safetensors"]
